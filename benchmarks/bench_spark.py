"""Spark results to pandas: ``%%conn spark`` in a real IPython shell vs raw PySpark.

Spark local (``local[2]``), a cached temporary view of N rows x 4 columns (bigint, double,
string, date), ``SELECT * FROM t`` to a pandas DataFrame:

- ``shell.run_cell_magic("conn", "spark", q).df()``: the magic's whole path (the cell split
  by Spark's lexical rules, the table names read by Spark's parser for notebook frames,
  the statement in a job group, the rows collected once as Arrow, PySpark's converters);
- raw ``spark.sql(q).toPandas()`` with Arrow on (what a PySpark user writes).

Target: the magic within 1.1x of raw at 1M rows. Both read the same session. Without
Java the area reports that it was not measured, and why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness import Comparison, interleave

QUERY = "SELECT * FROM t"
NO_JAVA = "Java not found: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"


def run(smoke: bool = False) -> list[Comparison]:
    n = 2_000 if smoke else 1_000_000
    rounds = 2 if smoke else 9
    name = f"Spark result to DataFrame @ {n:,} rows"
    workload = f"{n:,} rows x 4 columns (bigint, double, string, date), SELECT * to pandas"
    if not _java():
        print(f"   spark: not measured: {NO_JAVA}", flush=True)
        return [Comparison("spark", name, workload, {}, not_measured=NO_JAVA)]
    with warnings.catch_warnings():
        # PySpark's own "pandas 3 is not fully supported" warning, on the raw side
        warnings.simplefilter("ignore", FutureWarning)
        samples = _measure(n, rounds)
    return [
        Comparison(
            area="spark",
            name=name,
            workload=workload,
            samples=samples,
            nbinfra="%%conn spark (run_cell_magic) .df()",
            baseline="raw spark.sql(q).toPandas()",
            max_ratio=1.1,
            notes="local[2], a cached temporary view; Arrow on for both",
        )
    ]


def _measure(n: int, rounds: int) -> dict[str, list[float]]:
    with _spark(n) as spark, _shell() as shell:
        contenders = {
            "%%conn spark (run_cell_magic) .df()": lambda: _check(
                shell.run_cell_magic("conn", "spark", QUERY).df(), n
            ),
            "raw spark.sql(q).toPandas()": lambda: _check(spark.sql(QUERY).toPandas(), n),
        }
        return interleave(contenders, rounds=rounds)


def _java() -> bool:
    home = os.environ.get("JAVA_HOME", "")
    return (Path(home) / "bin" / "java").exists() if home else shutil.which("java") is not None


@contextlib.contextmanager
def _spark(n: int) -> Iterator[Any]:
    """A local session with ``t`` cached in memory (a reused session, if one runs)."""
    from pyspark.sql import SparkSession

    from nbinfra.connections.spark import QUICK_CONF

    with tempfile.TemporaryDirectory(prefix="nbinfra-bench-spark-") as warehouse:
        builder = SparkSession.Builder().master("local[2]").appName("nbinfra-bench")
        for key, value in {**QUICK_CONF, "spark.sql.warehouse.dir": warehouse}.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("FATAL")
        frame = spark.range(n).selectExpr(
            "id AS a",
            "id * 1.5 AS b",
            "concat('x', id % 100) AS c",
            "date_add(DATE'2020-01-01', CAST(id % 1000 AS INT)) AS d",
        )
        frame.cache().createOrReplaceTempView("t")
        spark.sql("SELECT count(*) FROM t").collect()  # materialise the cache
        try:
            yield spark
        finally:
            spark.catalog.dropTempView("t")
            frame.unpersist()
            spark.stop()


@contextlib.contextmanager
def _shell() -> Iterator[Any]:
    """A real IPython shell with nbinfra loaded, in a session that names no connection."""
    from IPython.core.interactiveshell import InteractiveShell

    from nbinfra.session import Session, use_session

    with tempfile.TemporaryDirectory(prefix="nbinfra-bench-spark-res-") as folder:
        for part in ("db", "vector", "external"):
            (Path(folder) / f"application-{part}.yaml").write_text("connections: {}\n")
        session = Session(resources=folder)
        shell = InteractiveShell.instance()
        with use_session(session):
            shell.run_line_magic("load_ext", "nbinfra")
            try:
                yield shell
            finally:
                shell.run_line_magic("unload_ext", "nbinfra")
                session.close()


def _check(frame: Any, n: int) -> None:
    if len(frame) != n:
        raise AssertionError(f"expected {n} rows, got {len(frame)}")
