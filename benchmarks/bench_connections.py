"""SQL results to DataFrames: nbinfra vs the raw drivers and JupySQL, side by side.

- DuckDB, N rows x 4 columns (BIGINT, DOUBLE, VARCHAR, DATE) to a pandas DataFrame:
  ``nbinfra.conn(...).query(q).df()`` vs raw ``duckdb.sql(q).df()`` (target <= 1.1x) and
  vs JupySQL ``%sql`` with autopandas on the same data (never slower). The awaited manager
  (a worker-thread hop) is measured too: it is why the facade calls DuckDB directly.
- PostgreSQL (embedded, real server), N rows x 4 columns to a DataFrame: the facade vs raw
  psycopg ``fetchall`` + ``pandas.DataFrame`` (target <= 1.1x).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.harness import Comparison, interleave
from nbinfra import _loop
from nbinfra.config import Settings
from nbinfra.connections import SyncConnection, get_connection_manager

DUCK_TABLE = (
    "CREATE TABLE t AS SELECT i AS a, i * 1.5 AS b, 'x' || (i % 100) AS c, "
    "DATE '2020-01-01' + (i % 1000)::INT AS d FROM range({n}) r(i)"
)
PG_TABLE = (
    "CREATE TABLE t AS SELECT i::bigint AS a, i * 1.5::float8 AS b, 'x' || (i % 100) AS c, "
    "DATE '2020-01-01' + (i % 1000) AS d FROM generate_series(0, {n} - 1) i"
)
QUERY = "SELECT * FROM t"


def run(smoke: bool = False) -> list[Comparison]:
    return [_duckdb(smoke), *_postgres(smoke)]


def _sync_conn(kind: str, **settings: Any) -> SyncConnection:
    empty = Settings.from_dict({}, environ={})
    return SyncConnection(get_connection_manager(kind, settings=empty, **settings))


# -- DuckDB ---------------------------------------------------------------------------
def _duckdb(smoke: bool) -> Comparison:
    import duckdb

    n = 20_000 if smoke else 1_000_000
    rounds = 3 if smoke else 9
    ddl = DUCK_TABLE.format(n=n)

    duckdb.sql("DROP TABLE IF EXISTS t")
    duckdb.sql(ddl)  # the default connection, as raw duckdb.sql(q) uses it

    db = _sync_conn("duckdb")
    db.query(ddl)
    manager = db.manager
    thread_loop = asyncio.new_event_loop()

    with _jupysql(ddl) as jupysql:
        contenders: dict[str, Callable[[], object]] = {
            "nbinfra conn().query().df()": lambda: _check(db.query(QUERY).df(), n),
            "raw duckdb.sql(q).df()": lambda: _check(duckdb.sql(QUERY).df(), n),
            "JupySQL %sql (autopandas)": lambda: _check(jupysql(), n),
            "nbinfra await execute_query().df() (thread hop)": lambda: _check(
                thread_loop.run_until_complete(manager.execute_query(QUERY)).df(), n
            ),
        }
        try:
            samples = interleave(contenders, rounds=rounds)
        finally:
            db.close()
            thread_loop.close()
            duckdb.sql("DROP TABLE IF EXISTS t")
    jupysql_ratio = _ratio(samples, "nbinfra conn().query().df()", "JupySQL %sql (autopandas)")
    return Comparison(
        area="connections",
        name="DuckDB result to DataFrame",
        workload=f"{n:,} rows x 4 columns (bigint, double, varchar, date), SELECT * to pandas",
        samples=samples,
        nbinfra="nbinfra conn().query().df()",
        baseline="raw duckdb.sql(q).df()",
        max_ratio=1.1,
        notes=(
            f"vs JupySQL: {jupysql_ratio:.2f}x (target <= 1.0). The facade calls DuckDB on "
            "the caller's thread; the awaited path shows the cost of a worker-thread hop."
        ),
        extra={"ratio vs JupySQL": jupysql_ratio},
    )


@contextlib.contextmanager
def _jupysql(ddl: str) -> Iterator[Callable[[], Any]]:
    """JupySQL's ``%sql`` on its own DuckDB connection holding the same table."""
    import duckdb
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    with contextlib.redirect_stdout(io.StringIO()):
        shell.run_line_magic("load_ext", "sql")
        con = duckdb.connect()
        con.execute(ddl)
        shell.user_ns["bench_duck"] = con
        shell.run_line_magic("config", "SqlMagic.autopandas = True")
        shell.run_line_magic("config", "SqlMagic.displaycon = False")
        shell.run_line_magic("config", "SqlMagic.feedback = 0")
        shell.run_line_magic("sql", "bench_duck --alias bench")

    def query() -> Any:
        with contextlib.redirect_stdout(io.StringIO()):
            return shell.run_line_magic("sql", QUERY)

    try:
        yield query
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            shell.run_line_magic("sql", "--close bench")
        con.close()


# -- PostgreSQL -------------------------------------------------------------------------
def _postgres(smoke: bool) -> list[Comparison]:
    import pandas as pd
    import psycopg

    from nbinfra.testing import PostgresServer

    n = 5_000 if smoke else 200_000
    rounds = 3 if smoke else 9
    try:
        server = PostgresServer().start()
    except Exception as exc:  # noqa: BLE001 - report, do not fail the other areas
        print(f"   PostgreSQL unavailable, skipped: {exc!r}")
        return []
    try:
        db = _sync_conn("postgres", url=server.url, min_size=1, max_size=2)
        db.query(PG_TABLE.format(n=n))
        raw = psycopg.connect(server.url, autocommit=True)

        def raw_fetch() -> object:
            with raw.cursor() as cur:
                cur.execute(QUERY)
                rows = cur.fetchall()
                columns = [d.name for d in cur.description or []]
            return _check(pd.DataFrame(rows, columns=columns), n)

        samples = interleave(
            {
                "nbinfra conn().query().df()": lambda: _check(db.query(QUERY).df(), n),
                "raw psycopg fetchall + DataFrame": raw_fetch,
            },
            rounds=rounds,
        )
        raw.close()
        db.close()
    finally:
        server.close()
    return [
        Comparison(
            area="connections",
            name="PostgreSQL result to DataFrame",
            workload=f"{n:,} rows x 4 columns (bigint, float8, text, date), SELECT * to pandas",
            samples=samples,
            nbinfra="nbinfra conn().query().df()",
            baseline="raw psycopg fetchall + DataFrame",
            max_ratio=1.1,
            notes="embedded PostgreSQL 18 over a Unix socket; nbinfra goes through its loop "
            "thread and psycopg's async pool",
        )
    ]


def _check(frame: Any, n: int) -> Any:
    if len(frame) != n:
        raise AssertionError(f"expected {n} rows, got {len(frame)}")
    return frame


def _ratio(samples: dict[str, list[float]], a: str, b: str) -> float:
    import statistics

    return statistics.median(samples[a]) / statistics.median(samples[b])


if __name__ == "__main__":  # pragma: no cover - manual runs
    for comparison in run(smoke=False):
        print(comparison.name, comparison.ratio, comparison.notes)
    _loop.shutdown()
