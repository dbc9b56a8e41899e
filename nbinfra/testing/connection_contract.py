"""The connection-manager contract, shipped so that a plugin's tests can reuse it.

A backend's test module subclasses ``ConnectionContract`` and provides a ``manager`` fixture
(a fresh, unconnected manager on a real engine)::

    from nbinfra.testing.connection_contract import ConnectionContract

    class TestDuckDBContract(ConnectionContract):
        @pytest.fixture
        def manager(self, tmp_path): return DuckDBConnectionManager(database=str(tmp_path / "db"))

Optional: ``query`` / ``bad_query`` / ``secret`` class attributes, an ``unreachable``
fixture (a manager pointing at nothing, with short timeouts) and ``sever(manager)`` (kill
the live connection behind the manager's back) for the fault tests; without them those
tests skip with the reason.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from nbinfra.connections import ConnectionRegistry, HealthStatus, QueryResult
from nbinfra.connections.base import ConnectionManager
from nbinfra.errors import ConnectionUnavailableError, ConnError

__all__ = ["ConnectionContract"]


class ConnectionContract:
    """Connect, health, reconnect, close and error behaviour every manager must show."""

    query: ClassVar[Any] = "SELECT 1"  # a cheap query returning at least one row
    bad_query: ClassVar[Any] = "SELEC nonsense FROM"  # refused by the backend; None skips
    secret: ClassVar[str | None] = None  # a credential in the settings that must never show
    unreachable_within: ClassVar[float] = 15.0  # seconds a dead target may take to fail

    @pytest.fixture
    def unreachable(self) -> ConnectionManager:
        pytest.skip("this backend has no unreachable-target fixture")

    async def sever(self, manager: ConnectionManager) -> None:
        """Break the live connection without telling the manager."""
        pytest.skip("this backend cannot sever its connection from the outside")

    # -- lifecycle --------------------------------------------------------------------
    async def test_registered_under_its_kind(self, manager: ConnectionManager) -> None:
        assert manager.kind
        assert ConnectionRegistry.get(manager.kind) is type(manager)

    async def test_connect_query_disconnect(self, manager: ConnectionManager) -> None:
        assert not manager.is_healthy()
        await manager.connect()
        assert manager.connected and manager.is_healthy()
        result = await manager.execute_query(self.query)
        assert isinstance(result, QueryResult)
        assert len(result) >= 1 and result.row_count >= 1
        assert result.elapsed >= 0
        await manager.disconnect()
        assert not manager.connected and not manager.is_healthy()

    async def test_connect_and_disconnect_are_idempotent(self, manager: ConnectionManager) -> None:
        await manager.connect()
        await manager.connect()
        await manager.disconnect()
        await manager.disconnect()
        assert not manager.connected

    async def test_async_context_manager_closes(self, manager: ConnectionManager) -> None:
        async with manager as mgr:
            assert mgr is manager
            assert manager.is_healthy()
        assert not manager.connected

    async def test_query_connects_lazily(self, manager: ConnectionManager) -> None:
        try:
            result = await manager.execute_query(self.query)
            assert len(result) >= 1
            assert manager.is_healthy()
        finally:
            await manager.disconnect()

    async def test_reconnects_after_disconnect(self, manager: ConnectionManager) -> None:
        await manager.connect()
        await manager.disconnect()
        try:
            assert len(await manager.execute_query(self.query)) >= 1
        finally:
            await manager.disconnect()

    async def test_result_converts_to_dataframe(self, manager: ConnectionManager) -> None:
        async with manager:
            result = await manager.execute_query(self.query)
        frame = result.df()
        assert len(frame) == len(result)
        assert list(frame.columns) == list(result.columns)

    # -- health -----------------------------------------------------------------------
    async def test_health_check_ok(self, manager: ConnectionManager) -> None:
        async with manager:
            status = await manager.health_check()
        assert isinstance(status, HealthStatus)
        assert status.ok and bool(status)
        assert status.kind == manager.kind
        assert status.error is None
        assert status.latency is not None and status.latency >= 0
        assert status.target == manager.target
        assert manager.last_status is status

    async def test_health_check_connects_when_needed(self, manager: ConnectionManager) -> None:
        try:
            status = await manager.health_check()
            assert status.ok, status.error
            assert manager.is_healthy()
        finally:
            await manager.disconnect()

    # -- errors and secrets -------------------------------------------------------------
    async def test_bad_query_raises_one_line_conn_error(self, manager: ConnectionManager) -> None:
        if self.bad_query is None:
            pytest.skip("no query this backend refuses")
        async with manager:
            with pytest.raises(ConnError) as info:
                await manager.execute_query(self.bad_query)
            message = str(info.value)
            assert message and "\n" not in message
            if self.secret:
                assert self.secret not in message
            # A refused query does not break the connection.
            assert len(await manager.execute_query(self.query)) >= 1
            assert manager.is_healthy()

    async def test_repr_and_target_hide_secrets(self, manager: ConnectionManager) -> None:
        text = f"{manager!r} {manager.target}"
        assert manager.kind in repr(manager)
        if self.secret:
            assert self.secret not in text
            async with manager:
                status = await manager.health_check()
            assert self.secret not in str(status) and self.secret not in repr(status)

    # -- faults -------------------------------------------------------------------------
    async def test_unreachable_health_is_down_not_raised(
        self, unreachable: ConnectionManager
    ) -> None:
        status = await asyncio.wait_for(unreachable.health_check(), self.unreachable_within)
        assert not status.ok and status.error
        assert "\n" not in status.error
        assert not unreachable.is_healthy()
        if self.secret:
            assert self.secret not in str(status)

    async def test_unreachable_connect_raises_conn_error(
        self, unreachable: ConnectionManager
    ) -> None:
        with pytest.raises(ConnectionUnavailableError) as info:
            await asyncio.wait_for(unreachable.connect(), self.unreachable_within)
        assert "\n" not in str(info.value)
        if self.secret:
            assert self.secret not in str(info.value)

    async def test_query_after_severed_connection_reconnects(
        self, manager: ConnectionManager
    ) -> None:
        async with manager:
            assert len(await manager.execute_query(self.query)) >= 1
            await self.sever(manager)
            result = await manager.execute_query(self.query)
            assert len(result) >= 1
            assert manager.is_healthy()
