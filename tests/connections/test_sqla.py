"""The ``sql`` kind (SQLAlchemy) on real engines: a SQLite file, a private MariaDB through
PyMySQL, and the embedded PostgreSQL through psycopg (checked against the native kind)."""

from __future__ import annotations

import datetime
import decimal
import importlib.util
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from nbinfra.connections.sqla import SQLAlchemyConnectionManager
from nbinfra.testing import MariaDBServer, PostgresServer, free_port
from nbinfra.testing.sql_contract import SQLContract

SECRET = "s3cr3t-sql-pass-71"
SQLITE_SLOW = (
    "CREATE TABLE nb_slow AS WITH RECURSIVE r(i) AS "
    "(SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT i FROM r"
)


def sqlalchemy_pg_url(server: PostgresServer) -> str:
    return server.url.replace("postgresql://", "postgresql+psycopg://", 1)


class TestSQLiteContract(SQLContract):
    slow_statement = SQLITE_SLOW

    @pytest.fixture
    def manager(self, tmp_path: Path) -> SQLAlchemyConnectionManager:
        self.path = tmp_path / "contract.db"
        return SQLAlchemyConnectionManager(url=f"sqlite:///{self.path}")

    @pytest.fixture
    def unreachable(self, tmp_path: Path) -> SQLAlchemyConnectionManager:
        (tmp_path / "not-a-dir").write_text("x")  # its parent is a file: cannot be opened
        return SQLAlchemyConnectionManager(
            url=f"sqlite:///{tmp_path / 'not-a-dir' / 'db.sqlite'}", retries=0
        )

    def running_statements(self, manager: Any) -> list[str]:
        # A second connection cannot take the write lock while the slow CREATE holds it.
        con = sqlite3.connect(self.path, timeout=0)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.rollback()
        except sqlite3.OperationalError:
            return [SQLITE_SLOW]
        finally:
            con.close()
        return []


class TestMariaDBContract(SQLContract):
    secret = SECRET
    slow_statement = "SELECT SLEEP(60) AS nbinfra_slow"

    @pytest.fixture
    def manager(self, mariadb_server: MariaDBServer) -> SQLAlchemyConnectionManager:
        self.server = mariadb_server
        return SQLAlchemyConnectionManager(url=mariadb_server.url, pool_size=2)

    @pytest.fixture
    def unreachable(self) -> SQLAlchemyConnectionManager:
        self.dead = f"mysql+pymysql://app:{SECRET}@127.0.0.1:{free_port()}/db"
        return SQLAlchemyConnectionManager(url=self.dead, connect_timeout=2, retries=1)

    def secret_entry(self) -> dict[str, Any]:
        return {"kind": "sql", "url": self.dead, "connect_timeout": 2, "retries": 0}

    def running_statements(self, manager: Any) -> list[str]:
        return self.server.running_statements()

    async def sever(self, manager: SQLAlchemyConnectionManager) -> None:
        conn = self.server.root()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s",
                    (MariaDBServer.user,),
                )
                for (pid,) in cur.fetchall():
                    cur.execute(f"KILL CONNECTION {int(pid)}")
        finally:
            conn.close()


class TestMariaDBCursorContract(TestMariaDBContract):
    """The same with Arrow off: every statement through PyMySQL's cursor."""

    @pytest.fixture
    def manager(self, mariadb_server: MariaDBServer) -> SQLAlchemyConnectionManager:
        self.server = mariadb_server
        return SQLAlchemyConnectionManager(url=mariadb_server.url, pool_size=2, arrow=False)


class TestSQLAlchemyPostgresContract(SQLContract):
    slow_statement = "SELECT pg_sleep(60) AS nbinfra_slow"

    @pytest.fixture
    def manager(self, postgres_server: PostgresServer) -> SQLAlchemyConnectionManager:
        self.server = postgres_server
        return SQLAlchemyConnectionManager(url=sqlalchemy_pg_url(postgres_server), pool_size=2)

    def running_statements(self, manager: Any) -> list[str]:
        return self.server.running_statements()


# -- MariaDB specifics -------------------------------------------------------------------
@pytest.fixture
async def maria(mariadb_server: MariaDBServer) -> Any:
    async with SQLAlchemyConnectionManager(url=mariadb_server.url) as mgr:
        await mgr.execute_query("DROP TABLE IF EXISTS kinds")
        yield mgr
        await mgr.execute_query("DROP TABLE IF EXISTS kinds")


async def test_mysql_backslash_escapes_and_comments_split_with_the_dialect(
    maria: SQLAlchemyConnectionManager,
) -> None:
    results = await maria.execute_script(
        "CREATE TABLE kinds (id INT PRIMARY KEY, name TEXT); "
        "INSERT INTO kinds VALUES (1, 'it\\'s; :no'), (2, :v); # a hash comment; :no\n"
        "SELECT name FROM kinds ORDER BY id; -- done; SELECT 1",
        {"v": "b\\; 'x'"},
    )
    assert len(results) == 3
    assert [row[0] for row in results[-1].rows] == ["it's; :no", "b\\; 'x'"]


async def test_limit_stops_the_server_after_limit_rows(
    maria: SQLAlchemyConnectionManager, mariadb_server: MariaDBServer
) -> None:
    await maria.execute_query("CREATE TABLE kinds (id INT PRIMARY KEY)")
    await maria.execute_query(
        "INSERT INTO kinds SELECT seq FROM seq_1_to_50000"  # MariaDB's sequence engine
    )
    result = await maria.execute_query("SELECT id FROM kinds ORDER BY id", limit=7)
    assert [r[0] for r in result.rows] == list(range(1, 8)) and result.truncated
    small = await maria.execute_query("SELECT id FROM kinds WHERE id <= 3", limit=7)
    assert len(small) == 3 and not small.truncated
    after = await maria.execute_query("SELECT count(*) FROM kinds")  # the cap was lifted
    assert after.scalar() == 50000
    # Only limit + 1 rows left the server: its own counter for this session says so.
    status = await maria.execute_script(
        "FLUSH STATUS; SELECT id FROM kinds; SHOW SESSION STATUS LIKE 'Rows_sent'", limit=5
    )
    assert int(status[-1].rows[0][1]) <= 10


async def test_stream_yields_batches(maria: SQLAlchemyConnectionManager) -> None:
    sizes = [
        len(batch)
        async for batch in maria.stream(
            "SELECT seq FROM seq_1_to_2500 WHERE seq <= :n", {"n": 2500}, batch_size=1000
        )
    ]
    assert sizes == [1000, 1000, 500]


async def test_reconnects_after_the_server_restarts(
    maria: SQLAlchemyConnectionManager, mariadb_server: MariaDBServer
) -> None:
    assert (await maria.execute_query("SELECT 1")).scalar() == 1
    mariadb_server.restart()
    assert (await maria.execute_query("SELECT 2")).scalar() == 2  # pool_pre_ping
    status = await maria.health_check()
    assert status.ok and status.server_version and "mariadb 10" in status.server_version


async def test_dataframe_dtypes_match_pandas_read_sql(maria: SQLAlchemyConnectionManager) -> None:
    pd = pytest.importorskip("pandas")
    await maria.execute_script(
        "CREATE TABLE kinds (i INT, f DOUBLE, s VARCHAR(20), n INT, d DATE, t DATETIME, "
        "m DECIMAL(10, 2)); INSERT INTO kinds VALUES "
        "(1, 1.5, 'a', NULL, '2024-01-02', '2024-01-02 03:04:05', 1.25), "
        "(2, 2.5, NULL, 7, '2024-02-03', '2024-02-03 04:05:06', 2.50)"
    )
    query = "SELECT * FROM kinds ORDER BY i"
    ours = (await maria.execute_query(query)).df()
    theirs = pd.read_sql(query, maria.engine)
    assert dict(ours.dtypes) == dict(theirs.dtypes)
    pd.testing.assert_frame_equal(ours, theirs)
    row = (await maria.execute_query(query)).rows[0]
    assert row[4] == datetime.date(2024, 1, 2) and row[6] == decimal.Decimal("1.25")


# -- PostgreSQL through `sql` gives the native kind's answers ------------------------------
async def test_postgres_through_sql_answers_as_the_native_kind(
    postgres_server: PostgresServer,
) -> None:
    from nbinfra.connections.postgres import PostgresConnectionManager

    queries = [
        (
            "SELECT 1::int AS i, 2::bigint AS b, 1.5::float8 AS f, 'x'::text AS s, NULL::int AS n",
            None,
        ),
        (
            "SELECT DATE '2024-01-02' AS d, TIMESTAMP '2024-01-02 03:04:05' AS t, "
            "1.25::numeric AS m",
            None,
        ),
        ("SELECT :v::text AS v, ':v' AS lit, $$;:v$$ AS dollar", {"v": "it's; -- :v"}),
        ("SELECT g FROM generate_series(1, 5) g ORDER BY g", None),
    ]
    async with (
        SQLAlchemyConnectionManager(url=sqlalchemy_pg_url(postgres_server)) as ours,
        PostgresConnectionManager(url=postgres_server.url) as native,
    ):
        for query, params in queries:
            a, b = (
                await ours.execute_query(query, params),
                await native.execute_query(query, params),
            )
            assert a.columns == b.columns and a.rows == b.rows, query
            assert [type(v) for v in a.rows[0]] == [type(v) for v in b.rows[0]], query
        limited = await ours.execute_query("SELECT g FROM generate_series(1, 100000) g", limit=3)
        assert limited.rows == [(1,), (2,), (3,)] and limited.truncated


async def test_sqlite_dataframe_dtypes_match_pandas_read_sql(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    url = f"sqlite:///{tmp_path / 'kinds.db'}"
    async with SQLAlchemyConnectionManager(url=url) as db:
        await db.execute_script(
            "CREATE TABLE kinds (i INTEGER, f REAL, s TEXT, n INTEGER, d DATE, m NUMERIC);"
            "INSERT INTO kinds VALUES (1, 1.5, 'a', NULL, '2024-01-02', 1.25),"
            " (2, NULL, NULL, 3, '2024-02-03', 2)"
        )
        query = "SELECT * FROM kinds ORDER BY i"
        ours = (await db.execute_query(query)).df()
        theirs = pd.read_sql(query, db.engine)
    assert dict(ours.dtypes) == dict(theirs.dtypes)
    pd.testing.assert_frame_equal(ours, theirs)


# -- URLs: inline, missing dialects and drivers, masking ------------------------------------
@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("snowflake://user:pw-9f3e@account/db", "pip install snowflake-sqlalchemy"),
        ("mssql+pyodbc://user:pw-9f3e@host/db?driver=x", "pip install pyodbc"),
        ("bigquery://project/dataset", "pip install sqlalchemy-bigquery"),
    ],
)
async def test_a_missing_dialect_or_driver_names_the_pip_install(url: str, hint: str) -> None:
    from nbinfra.errors import MissingDependencyError

    manager = SQLAlchemyConnectionManager(url=url)
    with pytest.raises(MissingDependencyError) as info:
        await manager.execute_query("SELECT 1")
    message = str(info.value)
    assert hint in message and info.value.hint == hint
    assert "\n" not in message and "pw-9f3e" not in message


def test_inline_targets_and_url_overrides_are_separate_connections(
    tmp_path: Path, nbinfra_session: Any
) -> None:
    import nbinfra

    a = nbinfra.conn(f"sql:sqlite:///{tmp_path / 'a.db'}")
    b = nbinfra.conn("sql", url=f"sqlite:///{tmp_path / 'b.db'}")
    a.query("CREATE TABLE only_a (x INTEGER)")
    assert b.query("SELECT count(*) FROM sqlite_master WHERE name = 'only_a'").scalar() == 0
    assert nbinfra.conn(f"sql:sqlite:///{tmp_path / 'a.db'}").manager is a.manager
    assert nbinfra.conn("sql", url=f"sqlite:///{tmp_path / 'b.db'}").manager is b.manager
    assert a.manager.target == f"sqlite:///{tmp_path / 'a.db'}"


def test_a_cell_on_an_inline_url(tmp_path: Path, nbinfra_session: Any) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbinfra")
    try:
        shell.user_ns["v"] = "it's; :v"
        url = f"sql:sqlite:///{tmp_path / 'cell.db'}"
        run = shell.run_cell(
            f"%%conn {url} -o res\n"
            "CREATE TABLE t (s TEXT); INSERT INTO t VALUES (:v); -- :v; a comment\n"
            "SELECT s, ':v;' AS lit FROM t"
        )
        run.raise_error()
        assert run.result.rows == [("it's; :v", ":v;")]
        assert len(shell.user_ns["res"]) == 3
        bad = shell.run_cell("%%conn sql:mysql+pymysql://u:pw-77aa@127.0.0.1:1/db\nSELECT 1")
        assert bad.error_in_exec is not None
        assert "pw-77aa" not in str(bad.error_in_exec) and "refused" in str(bad.error_in_exec)
    finally:
        shell.run_line_magic("unload_ext", "nbinfra")


# -- results through Arrow (ADBC for SQLite, connectorx for MySQL/MariaDB) ------------------
async def test_sqlite_reads_through_adbc_with_read_sql_dtypes(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("adbc_driver_sqlite")
    from nbinfra.connections.sqla_arrow import ArrowResult

    async with SQLAlchemyConnectionManager(url=f"sqlite:///{tmp_path / 'a.db'}") as db:
        await db.execute_script(
            "CREATE TABLE t (i INTEGER, f REAL, s TEXT, n INTEGER);"
            "INSERT INTO t VALUES (1, 1.5, 'a', 4), (2, 2.5, NULL, NULL), (3, NULL, 'c', 6)"
        )
        result = await db.execute_query("SELECT * FROM t ORDER BY i")
        assert isinstance(result, ArrowResult) and len(result) == 3
        assert result.rows == [(1, 1.5, "a", 4), (2, 2.5, None, None), (3, None, "c", 6)]
        pd.testing.assert_frame_equal(
            result.df(), pd.read_sql("SELECT * FROM t ORDER BY i", db.engine)
        )
        assert result.arrow().num_rows == 3
        if importlib.util.find_spec("polars") is not None:
            assert result.pl().rows() == result.rows
        bound = await db.execute_query("SELECT i FROM t WHERE i = :i", {"i": 2})
        assert not isinstance(bound, ArrowResult) and bound.rows == [(2,)]  # binds: the cursor
        empty = await db.execute_query("SELECT * FROM t WHERE i > 10")
        assert not isinstance(empty, ArrowResult) and empty.columns == ["i", "f", "s", "n"]
        off = SQLAlchemyConnectionManager(url=f"sqlite:///{tmp_path / 'a.db'}", arrow=False)
        async with off:
            assert not isinstance(await off.execute_query("SELECT * FROM t"), ArrowResult)


async def test_mariadb_reads_through_connectorx_unless_a_column_would_differ(
    maria: SQLAlchemyConnectionManager,
) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("connectorx")
    from nbinfra.connections.sqla_arrow import ArrowResult

    await maria.execute_script(
        "CREATE TABLE kinds (i BIGINT, f DOUBLE, s VARCHAR(10), d DATE, n INT, m DECIMAL(30, 20));"
        "INSERT INTO kinds VALUES (1, 1.5, 'a', '2024-01-02', NULL, 0.12345678901234567890),"
        " (2, NULL, NULL, '2024-02-03', 5, 2)"
    )
    query = "SELECT i, f, s, d, n FROM kinds ORDER BY i"
    fast = await maria.execute_query(query)
    assert isinstance(fast, ArrowResult)
    pd.testing.assert_frame_equal(fast.df(), pd.read_sql(query, maria.engine))
    assert fast.rows == [
        (1, 1.5, "a", datetime.date(2024, 1, 2), None),
        (2, None, None, datetime.date(2024, 2, 3), 5),
    ]
    # connectorx hands decimals back at scale 10: the cursor gives the exact values.
    exact = await maria.execute_query("SELECT m FROM kinds ORDER BY i")
    assert not isinstance(exact, ArrowResult)
    assert exact.rows[0][0] == decimal.Decimal("0.12345678901234567890")
    assert (
        maria._arrow is not None and "SELECT m FROM kinds ORDER BY i" in maria._arrow._cursor_only
    )


async def test_a_script_s_own_transaction_reaches_the_server(
    maria: SQLAlchemyConnectionManager,
) -> None:
    from nbinfra.errors import QueryError

    await maria.execute_query("CREATE TABLE kinds (id INT PRIMARY KEY)")
    await maria.execute_script("BEGIN; INSERT INTO kinds VALUES (1); ROLLBACK")
    assert (await maria.execute_query("SELECT count(*) FROM kinds")).scalar() == 0
    await maria.execute_script("START TRANSACTION; INSERT INTO kinds VALUES (2); COMMIT")
    with pytest.raises(QueryError, match="left its transaction open"):
        await maria.execute_script("BEGIN; INSERT INTO kinds VALUES (3)")
    with pytest.raises(QueryError):
        await maria.execute_script(
            "BEGIN; INSERT INTO kinds VALUES (4); INSERT INTO kinds VALUES (4)"
        )
    await maria.execute_script(
        "INSERT INTO kinds VALUES (5); INSERT INTO kinds VALUES (6)", autocommit=True
    )
    rows = await maria.execute_query("SELECT id FROM kinds ORDER BY id")
    assert [r[0] for r in rows.rows] == [2, 5, 6]


async def test_a_statement_over_its_time_limit_is_cancelled_on_the_server(
    mariadb_server: MariaDBServer,
) -> None:
    import time

    from nbinfra.errors import QueryError

    slow = "SELECT SLEEP(30) AS nbinfra_timeout"
    for arrow in (True, False):
        manager = SQLAlchemyConnectionManager(url=mariadb_server.url, timeout=1, arrow=arrow)
        async with manager:
            started = time.monotonic()
            with pytest.raises(QueryError, match="cancelled on the server after 1"):
                await manager.execute_query(slow)
            assert time.monotonic() - started < 8
            assert not [s for s in mariadb_server.running_statements() if slow in s]
            assert (await manager.execute_query("SELECT 1")).scalar() == 1
