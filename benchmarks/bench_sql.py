"""The ``sql`` kind (SQLAlchemy) to DataFrames: nbinfra vs JupySQL and raw pandas.read_sql.

- MariaDB (a private ``mariadbd``, PyMySQL), 200k rows x 5 columns (BIGINT, DOUBLE,
  VARCHAR, DATE, INT with NULLs) to a pandas DataFrame; and the same with a DECIMAL
  column instead, which nbinfra reads through the cursor (connectorx drops its scale).
- SQLite (a file), 1M rows x 5 columns (INTEGER, REAL, TEXT, TEXT date, INTEGER with
  NULLs) to a pandas DataFrame.

Contenders, interleaved in one run on the same URL: ``nbinfra.conn("sql", url=...)
.query(q).df()``; JupySQL's ``%sql`` with autopandas; raw ``pandas.read_sql(q, engine)``.
Targets: nbinfra <= 1.0x JupySQL and <= 1.1x read_sql (with a DECIMAL column, where
nbinfra reads through the cursor too, only the read_sql one).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness import Comparison, interleave
from nbinfra.config import Settings
from nbinfra.connections import SyncConnection, get_connection_manager

QUERY = "SELECT * FROM t"
MARIA_TABLE = (
    "CREATE TABLE t AS SELECT seq AS a, CAST(seq * 1.5 AS DOUBLE) AS b, "
    "CONCAT('x', seq % 100) AS c, DATE '2020-01-01' + INTERVAL (seq % 1000) DAY AS d, "
    "{e} AS e FROM seq_1_to_{n}"
)
INT_WITH_NULLS = "IF(seq % 10 = 0, NULL, seq % 7)"
DECIMAL = "CAST(seq % 1000 / 8 AS DECIMAL(10, 3))"
SQLITE_TABLE = (
    "CREATE TABLE t AS WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r "
    "WHERE i < {n} - 1) SELECT i AS a, i * 1.5 AS b, 'x' || (i % 100) AS c, "
    "date('2020-01-01', '+' || (i % 1000) || ' days') AS d, "
    "CASE WHEN i % 10 = 0 THEN NULL ELSE i % 7 END AS e FROM r"
)
NBINFRA = "nbinfra conn('sql').query().df()"
JUPYSQL = "JupySQL %sql (autopandas)"
READ_SQL = "raw pandas.read_sql(q, engine)"


def run(smoke: bool = False) -> list[Comparison]:
    rounds = 2 if smoke else 7
    n = 2_000 if smoke else 200_000
    return [
        _mariadb(n, rounds, INT_WITH_NULLS),
        _mariadb(n, rounds, DECIMAL),
        _sqlite(5_000 if smoke else 1_000_000, rounds),
    ]


def _sync_conn(url: str) -> SyncConnection:
    empty = Settings.from_dict({}, environ={})
    return SyncConnection(get_connection_manager("sql", settings=empty, url=url))


def _mariadb(n: int, rounds: int, e: str) -> Comparison:
    from benchmarks import services

    server = services.mariadb()
    db = _sync_conn(server.url)
    db.query("DROP TABLE IF EXISTS t")
    db.query(MARIA_TABLE.format(n=n, e=e))
    try:
        samples = _contenders(db, server.url, n, rounds)
    finally:
        db.query("DROP TABLE IF EXISTS t")
        db.close()
    if e == DECIMAL:
        return _comparison(
            "MariaDB result with a DECIMAL column to DataFrame",
            f"{n:,} rows x 5 columns (bigint, double, varchar, date, decimal), SELECT * to "
            "pandas, PyMySQL over TCP to a private mariadbd",
            samples,
            "a DECIMAL column makes nbinfra read through PyMySQL's cursor like the others "
            "(pure Python parsing is most of the time) and convert as pandas.read_sql "
            "does (decimals to float64), which JupySQL skips",
            peer_target=None,
        )
    return _comparison(
        "MariaDB result to DataFrame",
        f"{n:,} rows x 5 columns (bigint, double, varchar, date, int with NULLs), SELECT * "
        "to pandas, PyMySQL (nbinfra: connectorx) over TCP to a private mariadbd",
        samples,
        "connectorx reads the rows into Arrow; the others parse them in PyMySQL",
    )


def _sqlite(n: int, rounds: int) -> Comparison:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="nbinfra-bench-sqlite-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        db = _sync_conn(url)
        db.query(SQLITE_TABLE.format(n=n))
        try:
            samples = _contenders(db, url, n, rounds)
        finally:
            db.close()
    return _comparison(
        "SQLite result to DataFrame",
        f"{n:,} rows x 5 columns (integer, real, text, date text, integer with NULLs), "
        "SELECT * to pandas, a file database",
        samples,
        "sqlite3's row fetch and pandas' object-to-column conversion, the same in every contender",
    )


def _contenders(db: SyncConnection, url: str, n: int, rounds: int) -> dict[str, list[float]]:
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with _jupysql(url) as jupysql:
            return interleave(
                {
                    NBINFRA: lambda: _check(db.query(QUERY).df(), n),
                    JUPYSQL: lambda: _check(jupysql(), n),
                    READ_SQL: lambda: _check(pd.read_sql(QUERY, engine), n),
                },
                rounds=rounds,
            )
    finally:
        engine.dispose()


def _comparison(
    name: str,
    workload: str,
    samples: dict[str, list[float]],
    limits: str,
    peer_target: float | None = 1.0,
) -> Comparison:
    return Comparison(
        area="sql",
        name=name,
        workload=workload,
        samples=samples,
        nbinfra=NBINFRA,
        baseline=READ_SQL,
        max_ratio=1.1,
        also={JUPYSQL: peer_target} if peer_target is not None else {},
        notes="interleaved in one run on the same URL; the facade goes through nbinfra's "
        "loop and a worker thread; DataFrames with pandas.read_sql's dtypes",
        limits=limits,
    )


@contextlib.contextmanager
def _jupysql(url: str) -> Iterator[Callable[[], Any]]:
    """JupySQL's ``%sql`` connected to ``url`` (its own SQLAlchemy engine)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    with contextlib.redirect_stdout(io.StringIO()):
        shell.run_line_magic("load_ext", "sql")
        shell.run_line_magic("config", "SqlMagic.autopandas = True")
        shell.run_line_magic("config", "SqlMagic.displaycon = False")
        shell.run_line_magic("config", "SqlMagic.feedback = 0")
        shell.run_line_magic("sql", f"{url} --alias bench_sql")

    def query() -> Any:
        with contextlib.redirect_stdout(io.StringIO()):
            return shell.run_line_magic("sql", QUERY)

    try:
        yield query
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            shell.run_line_magic("sql", "--close bench_sql")


def _check(frame: Any, n: int) -> Any:
    if len(frame) != n:
        raise AssertionError(f"expected {n} rows, got {len(frame)}")
    return frame
