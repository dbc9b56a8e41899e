"""Scripts are all or nothing on every SQL backend (real DuckDB, embedded PostgreSQL).

A script without its own BEGIN/COMMIT runs as one transaction; ``autocommit=True`` opts
out; any failure rolls back and leaves the connection usable.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from nbinfra.connections.duckdb import DuckDBConnectionManager
from nbinfra.connections.pgvector import PgVectorConnectionManager
from nbinfra.connections.postgres import PostgresConnectionManager
from nbinfra.connections.sqltext import controls_transaction, split_statements
from nbinfra.errors import QueryError
from nbinfra.testing import PostgresServer

FAILS_MIDWAY = {
    "duckdb": "INSERT INTO {t} VALUES (1); SELECT error('x'); INSERT INTO {t} VALUES (2)",
    "postgres": "INSERT INTO {t} VALUES (1); SELECT 1/0; INSERT INTO {t} VALUES (2)",
}
OWN_TX_FAILS = {
    "duckdb": "BEGIN; INSERT INTO {t} VALUES (1); SELECT error('x'); COMMIT",
    "postgres": "BEGIN; INSERT INTO {t} VALUES (1); SELECT 1/0; COMMIT",
}


@pytest.fixture(params=["duckdb", "postgres", "pgvector"])
async def sql(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[tuple[Any, str]]:
    """A connected manager and a fresh one-column table ``t`` on it."""
    table = f"m_{uuid.uuid4().hex[:8]}"
    manager: Any
    if request.param == "duckdb":
        manager = DuckDBConnectionManager(database=str(tmp_path / "s.duckdb"))
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        cls = (
            PostgresConnectionManager if request.param == "postgres" else PgVectorConnectionManager
        )
        manager = cls(url=server.url, max_size=2)
    async with manager:
        await manager.execute_script(f"CREATE TABLE {table} (i int)")
        yield manager, table
        await manager.execute_script(f"DROP TABLE {table}")


def _dialect(manager: Any) -> str:
    return "duckdb" if manager.kind == "duckdb" else "postgres"


async def _count(manager: Any, table: str) -> int:
    results = await manager.execute_script(f"SELECT count(*) FROM {table}")
    return int(results[-1].scalar())


async def test_a_failing_script_writes_nothing(sql: tuple[Any, str]) -> None:
    manager, t = sql
    with pytest.raises(QueryError):
        await manager.execute_script(FAILS_MIDWAY[_dialect(manager)].format(t=t))
    assert await _count(manager, t) == 0
    # the connection is usable at once, and a good script commits every statement
    results = await manager.execute_script(
        f"INSERT INTO {t} VALUES (1); INSERT INTO {t} VALUES (2); SELECT count(*) FROM {t}"
    )
    assert results[-1].scalar() == 2
    assert await _count(manager, t) == 2


async def test_autocommit_keeps_the_statements_before_the_failure(sql: tuple[Any, str]) -> None:
    manager, t = sql
    with pytest.raises(QueryError):
        await manager.execute_script(FAILS_MIDWAY[_dialect(manager)].format(t=t), autocommit=True)
    assert await _count(manager, t) == 1


async def test_own_transaction_that_fails_is_rolled_back_and_the_next_query_works(
    sql: tuple[Any, str],
) -> None:
    manager, t = sql
    with pytest.raises(QueryError):
        await manager.execute_script(OWN_TX_FAILS[_dialect(manager)].format(t=t))
    # no "current transaction is aborted": the next query on the same connection works
    assert (await manager.execute_script("SELECT 41 + 1"))[-1].scalar() == 42
    assert await _count(manager, t) == 0
    await manager.execute_script(f"BEGIN; INSERT INTO {t} VALUES (7); COMMIT")
    assert await _count(manager, t) == 1


async def test_the_query_path_runs_a_script_as_one_transaction_too(
    sql: tuple[Any, str],
) -> None:
    manager, t = sql
    # pgvector's execute_query is the vector search of the contract; sql() runs SQL
    run = manager.sql if manager.kind == "pgvector" else manager.execute_query
    with pytest.raises(QueryError):
        await run(FAILS_MIDWAY[_dialect(manager)].format(t=t))
    assert await _count(manager, t) == 0


async def test_postgres_script_left_open_is_rolled_back_with_a_clear_error(
    postgres_server: PostgresServer,
) -> None:
    async with PostgresConnectionManager(url=postgres_server.url, max_size=1) as pg:
        await pg.execute_query("DROP TABLE IF EXISTS open_tx; CREATE TABLE open_tx (i int)")
        with pytest.raises(QueryError, match="BEGIN without COMMIT"):
            await pg.execute_script("BEGIN; INSERT INTO open_tx VALUES (1)")
        assert (await pg.execute_query("SELECT count(*) FROM open_tx")).scalar() == 0
        with pytest.raises(QueryError, match="--autocommit") as info:
            await pg.execute_script("SELECT 1; VACUUM open_tx")
        assert "\n" not in str(info.value)
        results = await pg.execute_script("SELECT 1; VACUUM open_tx", autocommit=True)
        assert results[0].scalar() == 1


def test_duckdb_user_transaction_across_calls_is_kept_until_a_failure(tmp_path: Any) -> None:
    manager = DuckDBConnectionManager(database=str(tmp_path / "u.duckdb"))
    run = manager.execute_query_sync
    run("CREATE TABLE u (i int)")
    run("BEGIN")
    run("INSERT INTO u VALUES (1); INSERT INTO u VALUES (2)")  # inside the user's BEGIN
    run("ROLLBACK")
    assert run("SELECT count(*) FROM u").scalar() == 0
    run("BEGIN")
    run("INSERT INTO u VALUES (1)")
    with pytest.raises(QueryError):
        run("SELECT error('x')")  # DuckDB aborts the transaction on any error
    assert run("SELECT count(*) FROM u").scalar() == 0  # rolled back, connection usable


@pytest.mark.parametrize(
    ("script", "own"),
    [
        ("INSERT INTO t VALUES (1); SELECT 1", False),
        ("BEGIN; INSERT INTO t VALUES (1); COMMIT", True),
        ("start transaction; select 1; end", True),
        ("-- note\n  begin ; select 1", True),
        ("SELECT 'BEGIN'; SELECT 1 /* COMMIT */", False),
        ("DO $$ BEGIN PERFORM 1; END $$; SELECT 1", False),
        ("SELECT 1; ROLLBACK", True),
    ],
)
def test_controls_transaction(script: str, own: bool) -> None:
    assert controls_transaction(split_statements(script)) is own
