"""A health check leaves the DuckDB connection ready for the next query."""

from __future__ import annotations

from nbinfra.connections.duckdb import DuckDBConnectionManager


async def test_query_after_health_check() -> None:
    async with DuckDBConnectionManager() as mgr:
        status = await mgr.health_check()
        assert status.ok, status
        assert (await mgr.execute_query("SELECT 41 + 1")).scalar() == 42
        assert (await mgr.health_check()).ok
        assert mgr.execute_query_sync("SELECT 7").scalar() == 7
