"""DuckDB on the real engine (in-process), through the shared contract and natively."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nbinfra.connections.duckdb import DuckDBConnectionManager
from nbinfra.errors import ConnectionUnavailableError, QueryError
from nbinfra.testing.sql_contract import SQLContract

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

HOSTILE = "'; DROP TABLE users; --"


class TestDuckDBContract(SQLContract):
    @pytest.fixture
    def manager(self, tmp_path: Path) -> DuckDBConnectionManager:
        return DuckDBConnectionManager(database=str(tmp_path / "contract.duckdb"))

    @pytest.fixture
    def unreachable(self, tmp_path: Path) -> DuckDBConnectionManager:
        # A file DuckDB cannot open: its parent is a regular file.
        (tmp_path / "not-a-dir").write_text("x")
        return DuckDBConnectionManager(
            database=str(tmp_path / "not-a-dir" / "db.duckdb"), retries=0
        )

    async def sever(self, manager: DuckDBConnectionManager) -> None:  # type: ignore[override]
        manager._con.close()


@pytest.fixture
async def db() -> Any:
    async with DuckDBConnectionManager() as mgr:
        await mgr.execute_query("CREATE TABLE users (id INTEGER, name VARCHAR)")
        yield mgr


async def test_hostile_parameter_is_stored_literally(db: DuckDBConnectionManager) -> None:
    for params, sql in [
        ({"id": 1, "name": HOSTILE}, "INSERT INTO users VALUES (:id, :name)"),
        ({"id": 2, "name": HOSTILE}, "INSERT INTO users VALUES (%(id)s, %(name)s)"),
        ([3, HOSTILE], "INSERT INTO users VALUES (?, ?)"),
    ]:
        await db.execute_query(sql, params)
    result = await db.execute_query("SELECT name FROM users WHERE name = :n", {"n": HOSTILE})
    assert [r[0] for r in result.rows] == [HOSTILE] * 3
    assert (await db.execute_query("SELECT count(*) FROM users")).scalar() == 3


async def test_placeholders_inside_literals_and_casts_are_untouched(
    db: DuckDBConnectionManager,
) -> None:
    result = await db.execute_query(
        "SELECT ':id' AS lit, :id::VARCHAR AS cast_, '50%' AS pct -- :id in a comment",
        {"id": 7},
    )
    assert result.rows == [(":id", "7", "50%")]


async def test_multiple_statements_return_the_last_result(db: DuckDBConnectionManager) -> None:
    result = await db.execute_query(
        "INSERT INTO users VALUES (1, 'a; b'); INSERT INTO users VALUES (2, 'c'); "
        "SELECT name FROM users ORDER BY id"
    )
    assert result.rows == [("a; b",), ("c",)]


async def test_results_as_dataframe_and_arrow(db: DuckDBConnectionManager) -> None:
    result = await db.execute_query(
        "SELECT i AS a, i * 1.5 AS b, 'x' || i AS c FROM range(1000) t(i)"
    )
    frame = result.df()
    assert list(frame.columns) == ["a", "b", "c"] and len(frame) == 1000
    table = result.arrow()
    assert isinstance(table, pa.Table) and table.num_rows == 1000
    assert result.arrow() is table  # converted once
    assert result.rows[2] == (2, 3.0, "x2")
    assert result.dicts()[1] == {"a": 1, "b": 1.5, "c": "x1"}


LARGE = 35_000  # above ARROW_STRINGS_MIN_ROWS: the Arrow path for strings
MIXED = (
    'SELECT i AS a, CASE WHEN i % 7 = 0 THEN NULL ELSE \'x\' || (i % 100) END AS "odd ""name", '
    "i * 1.5 AS b, DATE '2020-01-01' + (i % 1000)::INT AS d, 'é' || i AS e, "
    "[i, i + 1] AS l, i::VARCHAR::JSON AS j FROM range({n}) t(i)"
)


@pytest.mark.parametrize(
    "query",
    [
        MIXED.format(n=LARGE),
        MIXED.format(n=100),  # small: DuckDB's own conversion
        f"SELECT 'v' || i AS only_strings, NULL::VARCHAR AS nothing FROM range({LARGE}) t(i)",
        f"SELECT i AS x, 's' || i AS x FROM range({LARGE}) t(i)",  # duplicate names
        "SELECT 'a' AS s WHERE false",  # no rows
    ],
)
async def test_dataframe_is_exactly_duckdbs_own(db: DuckDBConnectionManager, query: str) -> None:
    """Whatever path df() takes, the frame equals DuckDB's relation.df(): same columns in
    the same order, dtypes, NULLs and index."""
    result = await db.execute_query(query)
    expected = db.connection.sql(query).df()
    pd.testing.assert_frame_equal(result.df(), expected)
    assert result.df() is not result.df()  # a fresh frame each call


class _Recorder:
    """A DuckDB relation that notes which of its methods df() used."""

    def __init__(self, relation: Any) -> None:
        self.relation = relation
        self.used: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.used.append(name)
        return getattr(self.relation, name)


@pytest.mark.parametrize(("rows", "arrow"), [(LARGE, True), (100, False)])
def test_large_string_columns_come_through_arrow(rows: int, arrow: bool) -> None:
    from nbinfra.connections.duckdb_result import _arrow_backed_strings, to_pandas

    if not _arrow_backed_strings(pd):
        pytest.skip("this pandas keeps strings as Python objects")
    import duckdb

    relation = duckdb.connect().sql(MIXED.format(n=rows)).materialize()
    recorder = _Recorder(relation)
    frame = to_pandas(recorder, rows)
    pd.testing.assert_frame_equal(frame, relation.df())
    # Large: strings selected out and sent through Arrow, the rest converted by DuckDB;
    # small: one plain relation.df().
    assert recorder.used.count("select") == (2 if arrow else 0)
    assert ("df" in recorder.used) is not arrow
    assert str(frame["e"].dtype) == "str" and frame["e"].iloc[3] == "é3"


async def test_registered_dataframe_is_queryable_by_name(db: DuckDBConnectionManager) -> None:
    frame = pd.DataFrame({"k": [1, 2, 3], "v": ["a", "b", "c"]})
    db.register("frame", frame)
    result = await db.execute_query("SELECT v FROM frame WHERE k >= :k ORDER BY k", {"k": 2})
    assert result.rows == [("b",), ("c",)]
    assert db.registered() == ["frame"]
    await db.reconnect()  # registrations survive a reconnect
    assert (await db.execute_query("SELECT count(*) FROM frame")).scalar() == 3
    db.unregister("frame")
    with pytest.raises(QueryError, match="frame"):
        await db.execute_query("SELECT * FROM frame")


async def test_bad_registration_name_is_refused(db: DuckDBConnectionManager) -> None:
    with pytest.raises(QueryError, match="identifier"):
        db.register("x; drop", pd.DataFrame())


def test_sync_path_runs_on_caller_thread(tmp_path: Path) -> None:
    mgr = DuckDBConnectionManager(database=str(tmp_path / "sync.duckdb"))
    mgr.execute_query_sync("CREATE TABLE t AS SELECT 42 AS x")
    assert mgr.execute_query_sync("SELECT x FROM t").scalar() == 42
    mgr._close_sync()


async def test_read_only_missing_file_is_unavailable(tmp_path: Path) -> None:
    mgr = DuckDBConnectionManager(database=str(tmp_path / "nope.duckdb"), read_only=True, retries=0)
    with pytest.raises(ConnectionUnavailableError, match=r"nope\.duckdb"):
        await mgr.connect()


async def test_timeout_interrupts_the_query_and_keeps_the_connection() -> None:
    async with DuckDBConnectionManager(timeout=0.2, retries=0) as mgr:
        with pytest.raises(QueryError, match="interrupted"):
            await mgr.execute_query(
                "SELECT count(*) FROM range(100000000000) a(i), range(1000) b(j) WHERE i + j = -1"
            )
        assert (await mgr.execute_query("SELECT 1")).scalar() == 1
        assert mgr.is_healthy()


def test_a_quoted_python_traceback_becomes_its_last_line() -> None:
    from nbinfra.connections.settings import one_line

    quoted = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "ValueError: the real message\n"
    )
    assert one_line(quoted) == "ValueError: the real message"
    assert one_line("Catalog Error: no table t\n\nLINE 1: ...") == "Catalog Error: no table t"


async def test_failure_message_is_the_engine_s_own_line() -> None:
    async with DuckDBConnectionManager(name="duckdb") as mgr:
        with pytest.raises(QueryError) as info:
            await mgr.execute_query("SELECT * FROM no_such_table")
    message = str(info.value)
    assert message.startswith("duckdb 'duckdb' query failed: Catalog Error: Table with name")
    assert "Traceback" not in message and "\n" not in message
