"""Profiles and plots computed in Spark SQL (a real local session), checked against
pandas and numpy on the same data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from nbinfra.connections.sync import SyncConnection

pytest.importorskip("pyspark")
np = pytest.importorskip("numpy")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from nbinfra.connections.spark import SparkConnectionManager  # noqa: E402
from nbinfra.plots import plot_query  # noqa: E402

N = 400


@pytest.fixture
def spark(spark_session: Any) -> Iterator[SyncConnection]:
    c = SyncConnection(SparkConnectionManager())
    c.sql("DROP TABLE IF EXISTS explore_t")
    c.sql(
        "CREATE TABLE explore_t AS SELECT CAST((id * 37) % 101 AS DOUBLE) AS `my v`, "
        f"CASE WHEN id % 5 = 0 THEN NULL ELSE concat('w', id % 3) END AS `select` FROM range({N})"
    )
    try:
        yield c
    finally:
        c.sql("DROP TABLE IF EXISTS explore_t")
        c.close()


def test_spark_profile_and_hist_match_numpy(spark: SyncConnection) -> None:
    values = np.array([float((i * 37) % 101) for i in range(N)])
    words = [None if i % 5 == 0 else f"w{i % 3}" for i in range(N)]
    rows = {row[0]: row for row in spark.profile("explore_t").rows}
    count, nulls, distinct, low, high, mean, std, _top = rows["my v"][2:]
    assert (count, nulls, distinct, low, high) == (N, 0, 101, values.min(), values.max())
    assert mean == pytest.approx(values.mean()) and std == pytest.approx(values.std(ddof=1))
    present = [w for w in words if w is not None]
    assert rows["select"][2:5] == (len(present), N - len(present), 3)
    hist = plot_query(spark, "SELECT * FROM explore_t", "hist", ["my v"], bins=7).nbinfra_plot
    assert hist.y == np.histogram(values, bins=7)[0].tolist()
    box = plot_query(spark, "SELECT * FROM explore_t", "box", ["my v"]).nbinfra_plot.boxes[0]
    assert box["med"] == pytest.approx(np.quantile(values, 0.5))
