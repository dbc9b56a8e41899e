"""DuckDB reads pandas, Polars and Arrow objects by name for one statement (``frames=``),
on the real engine: the names come from DuckDB's parser, a table of the same name wins,
and nothing is left in the catalog."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from nbinfra.connections.duckdb import DuckDBConnectionManager
from nbinfra.connections.frames import frames_for, is_frame
from nbinfra.connections.sync import SyncConnection
from nbinfra.errors import QueryError

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")
ds = pytest.importorskip("pyarrow.dataset")


@pytest.fixture
async def db() -> AsyncIterator[DuckDBConnectionManager]:
    async with DuckDBConnectionManager() as mgr:
        yield mgr


def _frames() -> dict[str, Any]:
    data = {"k": [1, 2, 3], "v": ["a", "b", "c"]}
    table = pa.table(data)
    return {
        "pandas DataFrame": pd.DataFrame(data),
        "polars DataFrame": pl.DataFrame(data),
        "polars LazyFrame": pl.DataFrame(data).lazy(),
        "pyarrow Table": table,
        "pyarrow RecordBatch": table.to_batches()[0],
        "pyarrow RecordBatchReader": pa.RecordBatchReader.from_batches(
            table.schema, table.to_batches()
        ),
        "pyarrow Dataset": ds.dataset(table),
    }


@pytest.mark.parametrize("kind", list(_frames()))
async def test_every_kind_of_frame_is_read_by_name(db: DuckDBConnectionManager, kind: str) -> None:
    frame = _frames()[kind]
    assert is_frame(frame)
    result = await db.sql("SELECT v FROM f WHERE k >= :k ORDER BY k", {"k": 2}, frames={"f": frame})
    assert result.rows == [("b",), ("c",)]


@pytest.mark.parametrize(
    ("statement", "names"),
    [
        ("SELECT * FROM df", ["df"]),
        ("SELECT * FROM a JOIN b USING (k) WHERE k IN (SELECT k FROM c)", ["a", "b", "c"]),
        ("SELECT * FROM df1 UNION ALL SELECT * FROM df2 WHERE k > :lo", ["df1", "df2"]),
        ("WITH df AS (SELECT 1 AS k) SELECT * FROM df", []),  # a CTE is no table
        ("WITH x AS (SELECT * FROM df) SELECT * FROM x, y", ["df", "y"]),
        ("WITH df AS (SELECT * FROM df) SELECT * FROM df", ["df"]),  # inside: the table
        ("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) FROM r", []),
        ("SELECT 'SELECT * FROM df' AS s -- FROM df2\n/* FROM df3 */", []),
        ("SELECT * FROM main.t, memory.main.u, v", ["v"]),  # qualified: catalog tables
        ('SELECT * FROM "Odd ""name""", DESCRIBE_ME', ["DESCRIBE_ME", 'Odd "name"']),
        ("DESCRIBE df", ["df"]),
        ("SELEC * FROM df", []),  # not SQL: running it reports the error
        # not a query: DuckDB's tokenizer's identifiers (DuckDB still decides what is read)
        ("INSERT INTO t SELECT * FROM df WHERE v = 'lit' -- c", ["df", "t", "v"]),
        ("CREATE TABLE s.t AS SELECT k FROM df", ["df", "k"]),
    ],
)
def test_table_names_come_from_duckdbs_parser(statement: str, names: list[str]) -> None:
    mgr = DuckDBConnectionManager()
    try:
        assert mgr.table_names(statement) == names
    finally:
        mgr._close_sync()


async def test_a_table_of_the_same_name_wins(db: DuckDBConnectionManager) -> None:
    """DuckDB's replacement-scan rule: a frame is only read when no table has its name."""
    await db.sql("CREATE TABLE f AS SELECT 100 AS k")
    frame = pd.DataFrame({"k": [1]})
    assert (await db.sql("SELECT k FROM f", frames={"f": frame})).rows == [(100,)]
    await db.sql("DROP TABLE f")
    assert (await db.sql("SELECT k FROM f", frames={"f": frame})).rows == [(1,)]


async def test_a_cte_shadows_the_frame(db: DuckDBConnectionManager) -> None:
    frame = pd.DataFrame({"k": [1]})
    result = await db.sql("WITH f AS (SELECT 42 AS k) SELECT k FROM f", frames={"f": frame})
    assert result.rows == [(42,)]


async def test_nothing_is_left_in_the_catalog(db: DuckDBConnectionManager) -> None:
    frame = pd.DataFrame({"k": [1, 2]})
    assert (await db.sql("SELECT count(*) FROM f", frames={"f": frame})).scalar() == 2
    views = await db.sql("SELECT count(*) FROM duckdb_views() WHERE view_name = 'f'")
    assert views.scalar() == 0 and "f" not in await db.tables()
    with pytest.raises(QueryError, match="Table with name f does not exist") as info:
        await db.sql("SELECT * FROM f")
    assert "\n" not in str(info.value)


async def test_frames_join_each_other_and_tables_and_fill_tables(
    db: DuckDBConnectionManager,
) -> None:
    await db.sql("CREATE TABLE names AS SELECT * FROM (VALUES (1, 'one'), (2, 'two')) t(k, n)")
    a = pd.DataFrame({"k": [1, 2], "x": [10, 20]})
    b = pl.DataFrame({"k": [1, 2], "y": [0.5, 1.5]})
    result = await db.sql(
        "SELECT n, x, y FROM a JOIN b USING (k) JOIN names USING (k) ORDER BY k",
        frames={"a": a, "b": b},
    )
    assert result.rows == [("one", 10, 0.5), ("two", 20, 1.5)]
    await db.sql("CREATE TABLE copy AS SELECT * FROM a", frames={"a": a})
    assert (await db.sql("SELECT sum(x) FROM copy")).scalar() == 30


async def test_limit_and_scripts_take_frames(db: DuckDBConnectionManager) -> None:
    frame = pd.DataFrame({"k": range(50)})
    limited = await db.sql("SELECT k FROM f ORDER BY k", limit=5, frames={"f": frame})
    assert [r[0] for r in limited.rows] == [0, 1, 2, 3, 4] and limited.truncated
    results = await db.execute_script(
        "CREATE TABLE t AS SELECT * FROM f WHERE k < 10; SELECT count(*) FROM t, f",
        frames={"f": frame},
    )
    assert results[-1].scalar() == 10 * 50


def test_the_facade_passes_frames_on_the_callers_thread() -> None:
    mgr = DuckDBConnectionManager()
    db = SyncConnection(mgr)
    try:
        frame = pd.DataFrame({"k": [1, 2, 3]})
        assert db.sql("SELECT sum(k) FROM df", frames={"df": frame}).scalar() == 6
        frame.loc[0, "k"] = 10  # changed in place: read again on the next statement
        assert db.sql("SELECT sum(k) FROM df", frames={"df": frame}).scalar() == 15
        with pytest.raises(QueryError, match="does not exist"):
            db.sql("SELECT * FROM df")  # Python callers pass frames; nothing is looked up
    finally:
        mgr._close_sync()


def test_concurrent_statements_each_see_their_own_frame() -> None:
    mgr = DuckDBConnectionManager()
    db = SyncConnection(mgr)
    seen: dict[int, list[int]] = {}

    def work(i: int) -> None:
        frame = pd.DataFrame({"k": [i] * 100})
        seen[i] = [db.sql("SELECT max(k) FROM f", frames={"f": frame}).scalar() for _ in range(20)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == {i: [i] * 20 for i in range(4)}
    finally:
        mgr._close_sync()


@pytest.mark.parametrize("value", [[1, 2], {"k": [1]}, "SELECT 1", 3, None])
async def test_a_value_that_is_no_frame_is_refused_in_one_line(
    db: DuckDBConnectionManager, value: Any
) -> None:
    with pytest.raises(QueryError, match=rf"^f is an? {type(value).__name__}, not a DataFrame"):
        await db.sql("SELECT * FROM f", frames={"f": value})


def test_only_dataframe_like_variables_are_frames() -> None:
    np = pytest.importorskip("numpy")
    namespace = {"df": pd.DataFrame({"k": [1]}), "lst": [1], "arr": np.arange(3), "s": "x"}
    found = frames_for(["df", "lst", "arr", "s", "missing"], namespace)
    assert list(found.frames) == ["df"]
    assert found.mistyped == {
        "lst": "lst is a list, not a DataFrame: only pandas/Polars DataFrames and Arrow "
        "tables are queried by name",
        "arr": found.mistyped["arr"],
        "s": found.mistyped["s"],
    }
    assert found.mistyped["arr"].startswith("arr is a numpy.ndarray, not a DataFrame")

    class Sub(pd.DataFrame):  # type: ignore[misc]
        pass

    assert is_frame(Sub({"k": [1]})) and not is_frame(pd.Series([1]))


def test_a_kind_without_frames_by_name_refuses_them() -> None:
    from nbinfra.connections.postgres import PostgresConnectionManager

    pg = SyncConnection(PostgresConnectionManager(url="postgresql://nobody@127.0.0.1:9/none"))
    assert not type(pg.manager).frames_by_name and pg.manager.table_names("SELECT 1") == []
    with pytest.raises(QueryError, match=r"postgres cannot query DataFrames by name \(df\)"):
        pg.sql("SELECT * FROM df", frames={"df": pd.DataFrame()})


def test_a_forked_child_parses_with_its_own_connection() -> None:
    """The parser's private DuckDB connection is not reused (nor closed: that crashes)
    in a forked child."""
    from tests.pyrun import run_python

    code = (
        "import os\n"
        "from nbinfra.connections.duckdb_frames import parsed_table_names as names\n"
        "names('SELECT * FROM a')\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    print('child', names('SELECT * FROM b JOIN c USING (k)'), flush=True)\n"
        "    os._exit(0)\n"
        "print('exit', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)\n"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["child ['b', 'c']", "exit 0"]
