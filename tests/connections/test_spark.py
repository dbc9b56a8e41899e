"""Spark on a real local session (one JVM for the run, see conftest.py) and through a real
Spark Connect server in that JVM: the SQL contract, then what only Spark has."""

from __future__ import annotations

import _thread
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import nbinfra
from nbinfra.testing import free_port
from nbinfra.testing.sql_contract import SQLContract

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("pyspark")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

from nbinfra.connections.spark import SparkConnectionManager  # noqa: E402
from nbinfra.connections.sparkframes import quiet_pandas  # noqa: E402

TOKEN = "tok-" + uuid.uuid4().hex  # a Spark Connect token that must never show


class SparkHooks:
    """What Spark's default (file) tables differ in (no keys, no DELETE), a statement that
    runs for a minute (4 tasks of 120 rows sleeping 0.5 s each, on 2 cores), what the JVM
    runs (its status store), and a dead Spark Connect endpoint holding a token."""

    key_clause = ""
    deletes = False
    secret = TOKEN
    slow_statement = (
        "SELECT count(s) FROM (SELECT reflect('java.lang.Thread', 'sleep', "
        "CAST(id * 0 + 500 AS BIGINT)) AS s FROM range(0, 480, 1, 4))"
    )

    def refused(self, table: str) -> str:
        return f"INSERT INTO {table} SELECT 1, raise_error('refused by the test')"

    def running_statements(self, manager: Any) -> list[str]:
        """The statements of the jobs the run's JVM is running: a classic session's job
        description names it; a Connect job carries the statement's tag."""
        from pyspark.sql import SparkSession

        jobs = SparkSession._instantiatedSession.sparkContext._jsc.sc().statusStore().jobsList(None)
        group = manager.last_group
        out = []
        for i in range(jobs.size()):
            job = jobs.apply(i)
            if str(job.status()) != "RUNNING":
                continue
            text = job.description().getOrElse(None) if job.description().isDefined() else ""
            if str(text).startswith("nbinfra: "):
                out.append(str(text).removeprefix("nbinfra: "))
            elif group is not None and group.id in str(job.jobTags()):
                out.append(group.description.removeprefix("nbinfra: "))
        return out

    @pytest.fixture
    def unreachable(self) -> SparkConnectionManager:
        return SparkConnectionManager(**self._dead())

    def secret_entry(self) -> dict[str, Any]:
        return {"kind": "spark", **self._dead()}

    def _dead(self) -> dict[str, Any]:
        url = f"sc://127.0.0.1:{free_port()}/;token={TOKEN}"
        return {"remote": url, "retries": 0, "connect_timeout": 2}


class TestSparkContract(SparkHooks, SQLContract):
    @pytest.fixture
    def manager(self, spark_session: Any) -> SparkConnectionManager:
        return SparkConnectionManager()  # local[*]: finds the run's session and uses it


class TestSparkConnectContract(SparkHooks, SQLContract):
    """The same contract through Spark Connect (rows written are not reported there)."""

    @pytest.fixture
    def manager(self, spark_session: Any) -> SparkConnectionManager:
        return SparkConnectionManager(remote=spark_session.connect_url)

    async def test_rowcount_is_rows_affected(self, db: Any, table: str) -> None:
        pytest.skip("Spark Connect reports no rows written")


# -- what only Spark has ------------------------------------------------------------------
@pytest.fixture
async def spark(spark_session: Any) -> Any:
    async with SparkConnectionManager() as manager:
        yield manager


def _name() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


async def test_a_live_session_is_used_and_left_running(spark: Any, spark_session: Any) -> None:
    assert spark.session is spark_session and spark.classic
    assert spark.pending_start is None and spark.target == "local[*]"
    await spark.disconnect()
    assert not spark_session.sparkContext._jsc.sc().isStopped()


async def test_dataframe_is_exactly_topandas(spark: Any, spark_session: Any) -> None:
    query = (
        "SELECT id, id * 1.5 AS d, CASE WHEN id % 3 = 0 THEN NULL ELSE 'x' || id END AS s, "
        "date'2020-01-01' + CAST(id AS INT) AS dt, timestamp'2020-01-01 10:00:00' AS ts, "
        "array(id, id + 1) AS arr, named_struct('a', id) AS st, map('k', id) AS mp, "
        "CAST(id AS DECIMAL(10, 2)) AS dec, NULL AS n, id AS id FROM range(50)"
    )
    result = await spark.sql(query)
    assert len(result) == 50 and result.columns[0] == result.columns[-1] == "id"
    with quiet_pandas():
        expected = spark_session.sql(query).toPandas()
    pd.testing.assert_frame_equal(result.df(), expected)
    assert isinstance(result.arrow(), pa.Table) and result.arrow().num_rows == 50
    assert result.df() is not result.df()


async def test_limit_collects_only_what_it_shows(spark: Any) -> None:
    # a full collect of 10^11 rows would never end: the limit is applied in Spark
    result = await spark.sql("SELECT id FROM range(100000000000)", limit=3)
    assert result.truncated and [r[0] for r in result.rows] == [0, 1, 2]
    assert len(await spark.sql("SELECT 1 AS a", limit=0)) == 0


async def test_insert_counts_rows_written(spark: Any) -> None:
    table = _name()
    await spark.sql(f"CREATE TABLE {table} (id INT, name STRING)")
    try:
        written = await spark.sql(f"INSERT INTO {table} SELECT id, 'n' FROM range(7)")
        assert written.rowcount == 7 and written.rows == []
    finally:
        await spark.sql(f"DROP TABLE {table}")


async def test_an_error_is_one_line_and_nothing_on_stderr(
    spark: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    from nbinfra.errors import QueryError

    with pytest.raises(QueryError, match="TABLE_OR_VIEW_NOT_FOUND") as info:
        await spark.sql("SELECT * FROM no_such_table_here")
    assert "\n" not in str(info.value)
    assert "no_such_table_here" not in capfd.readouterr().err  # PySpark's JSON log is off


# -- notebook DataFrames by name -----------------------------------------------------------
async def test_frames_become_temp_views_for_the_statement(spark: Any, spark_session: Any) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    arrow = pa.table({"k": [1, 3], "v": [10.0, 30.0]})
    query = "SELECT f.b, a.v FROM frame f JOIN arrow a ON f.a = a.k ORDER BY f.b"
    assert spark.table_names(query) == ["frame", "arrow"]
    result = await spark.sql(query, frames={"frame": frame, "arrow": arrow})
    assert result.rows == [("x", 10.0), ("z", 30.0)]
    assert not spark_session.catalog.tableExists("frame")  # dropped afterwards
    frame.loc[0, "b"] = "changed"  # in place: the next run sees it
    again = await spark.sql(query, frames={"frame": frame, "arrow": arrow})
    assert again.rows[0] == ("changed", 10.0)
    spark_frame = spark_session.range(4)
    total = await spark.sql("SELECT sum(id) FROM sdf", frames={"sdf": spark_frame})
    assert total.scalar() == 6


async def test_polars_frames_and_a_real_table_wins(spark: Any) -> None:
    pl = pytest.importorskip("polars")
    table = _name()
    await spark.sql(f"CREATE TABLE {table} AS SELECT 41 AS v")
    try:
        lazy = pl.DataFrame({"v": [1, 2]}).lazy()
        got = await spark.sql("SELECT sum(v) FROM p", frames={"p": lazy})
        assert got.scalar() == 3
        shadowed = await spark.sql(f"SELECT v FROM {table}", frames={table: lazy})
        assert shadowed.rows == [(41,)]
    finally:
        await spark.sql(f"DROP TABLE {table}")


def test_table_names_by_spark_parser_and_by_sqlglot(spark_session: Any) -> None:
    statement = (
        "WITH c AS (SELECT * FROM df) INSERT INTO target SELECT * FROM c "
        "JOIN other ON true WHERE x IN (SELECT y FROM sub) UNION SELECT * FROM db.x"
    )
    offline = SparkConnectionManager()
    assert sorted(offline.table_names(statement)) == ["df", "other", "sub"]
    live = SparkConnectionManager()
    live.session  # noqa: B018 - connects
    assert sorted(live.table_names(statement)) == ["df", "other", "sub"]  # the JVM's parse
    assert live.table_names("SELEC nonsense") == []


# -- the facade, and a machine without Java ------------------------------------------------
def _empty_session(folder: Path) -> Any:
    """A session whose configuration names no connection (kinds only)."""
    from nbinfra.session import Session

    for part in ("db", "vector", "external"):
        (folder / f"application-{part}.yaml").write_text("connections: {}\n")
    return Session(resources=folder)


def test_conn_spark_works_with_no_settings(spark_session: Any, tmp_path: Any) -> None:

    session = _empty_session(tmp_path)
    try:
        spark = nbinfra.conn("spark", session=session)
        assert spark.target == "local[*]"
        assert spark.query("SELECT 40 + :n AS x", {"n": 2}).scalar() == 42
        assert spark.manager.runs_here  # open: statements run from this thread
        assert spark.sql("SELECT 'a;b' AS s; SELECT 2 AS t").rows == [(2,)]
    finally:
        session.close()
    assert not spark_session.sparkContext._jsc.sc().isStopped()  # not ours to stop


def test_an_inline_connect_target_in_a_cell(spark_session: Any, tmp_path: Any) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from nbinfra.session import use_session

    session = _empty_session(tmp_path)
    shell = InteractiveShell.instance()
    with use_session(session):
        shell.run_line_magic("load_ext", "nbinfra")
        try:
            shell.user_ns["n"] = 21
            run = shell.run_cell(f"%%conn spark:{spark_session.connect_url}\nSELECT :n * 2 AS x")
            run.raise_error()
            assert run.result.scalar() == 42
            inline = nbinfra.conn(f"spark:{spark_session.connect_url}", session=session)
            assert not inline.manager.classic and inline.target == spark_session.connect_url
        finally:
            shell.run_line_magic("unload_ext", "nbinfra")
            session.close()


def test_conn_list_shows_the_remote_masked_and_a_dead_one_as_down(tmp_path: Any) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from nbinfra.session import Session, use_session

    token = "tok-" + uuid.uuid4().hex
    port = free_port()
    (tmp_path / "application-db.yaml").write_text(
        "connections:\n"
        f"  cluster: {{kind: spark, remote: 'sc://127.0.0.1:{port}/;token={token}',"
        " connect_timeout: 1, retries: 0}\n"
    )
    for part in ("vector", "external"):
        (tmp_path / f"application-{part}.yaml").write_text("connections: {}\n")
    session = Session(resources=tmp_path)
    shell = InteractiveShell.instance()
    with use_session(session):
        shell.run_line_magic("load_ext", "nbinfra")
        try:
            started = time.monotonic()
            table = shell.run_line_magic("conn", "list")
            took = time.monotonic() - started
            shown = repr(table) + table._repr_html_()
            [row] = table.dicts()
            health = shell.run_line_magic("conn", "health cluster")
        finally:
            shell.run_line_magic("unload_ext", "nbinfra")
            session.close()
    assert token not in shown and token not in str(health)
    assert row["target"] == f"sc://127.0.0.1:{port} (token ********)"
    assert row["health"] == "down" and took < 10, (row, took)
    assert not health.ok and "refused" in str(health.error).lower()


def test_without_java_a_local_session_fails_in_one_line(tmp_path: Any) -> None:
    code = (
        "import nbinfra\n"
        "from nbinfra.errors import MissingDependencyError\n"
        "try:\n"
        "    nbinfra.conn('spark').query('SELECT 1')\n"
        "except MissingDependencyError as exc:\n"
        "    print('ERROR', exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env.update(PATH=str(tmp_path), PYTHONPATH=str(ROOT), NBINFRA_RESOURCES=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("ERROR")]
    assert len(lines) == 1, out.stdout + out.stderr
    assert "apt-get install openjdk-17-jre-headless" in lines[0] and "JAVA_HOME" in lines[0]


# -- progress and interrupts (from the main thread, as in a notebook) ----------------------
# Each row sleeps in its task: {n} tasks of {rows} rows, {ms} ms a row.
SLOW = (
    "SELECT count(s) FROM (SELECT reflect('java.lang.Thread', 'sleep', "
    "CAST(id * 0 + {ms} AS BIGINT)) AS s FROM range(0, {n} * {rows}, 1, {n}))"
)
ENDLESS = SLOW.format(ms=500, n=4, rows=100_000)


@pytest.fixture
def open_spark(spark_session: Any) -> Any:
    from nbinfra.connections import SyncConnection

    conn = SyncConnection(SparkConnectionManager(timeout=60))
    conn.query("SELECT 1")  # open: from now on statements run from this thread
    try:
        yield conn
    finally:
        conn.close()


class Recorder:
    def __init__(self) -> None:
        self.draws: list[tuple[float, float | None]] = []
        self.removed = False

    def draw(self, label: str, percent: float | None, elapsed: float) -> None:
        self.draws.append((time.monotonic(), percent))

    def remove(self) -> None:
        self.removed = True


def test_progress_follows_the_stages_throttled(
    open_spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbinfra import progress

    monkeypatch.delenv("NBINFRA_PROGRESS", raising=False)
    recorder = Recorder()
    previous = progress.set_display(lambda forced: recorder)
    try:
        started = time.monotonic()
        assert open_spark.query(SLOW.format(ms=250, n=12, rows=1)).scalar() == 12
        took = time.monotonic() - started
    finally:
        progress.set_display(previous)
    percents = [p for _, p in recorder.draws if p is not None]
    assert recorder.removed and percents, recorder.draws
    assert any(0 < p < 100 for p in percents), percents  # part of the tasks done
    assert percents[0] < max(percents)  # it moves as tasks finish (a later stage may
    # add tasks: the share can step back then)
    assert len(recorder.draws) <= took * 10 + 2  # at most ~10 redraws a second


def test_an_interrupt_cancels_the_jobs_and_the_session_stays_usable(open_spark: Any) -> None:
    """A notebook's Interrupt is SIGINT on the main thread. (PySpark's own SIGINT handler,
    which cancels every job of the context as well, is not installed here: conftest.py.)"""
    from nbinfra.errors import Interrupted

    timer = threading.Timer(2.0, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(Interrupted, match="cancelled"):
            open_spark.query(ENDLESS)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 15
    group = open_spark.manager.last_group
    assert group.job_ids(), "the job had started"
    assert group.running() == []
    assert open_spark.query("SELECT 2").scalar() == 2


def test_a_time_limit_cancels_the_jobs_too(spark_session: Any) -> None:
    from nbinfra.connections import SyncConnection
    from nbinfra.errors import QueryError

    conn = SyncConnection(SparkConnectionManager(timeout=1.5))
    conn.query("SELECT 1")
    try:
        with pytest.raises(QueryError, match=r"cancelled after 1\.5 s"):
            conn.query(ENDLESS)
        group = conn.manager.last_group
        assert group.job_ids() and group.running() == []
        assert conn.query("SELECT 3").scalar() == 3
    finally:
        conn.close()
