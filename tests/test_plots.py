"""Plots computed in the engine, on real DuckDB, PostgreSQL and SQLite, checked against
numpy on the same data; and plots of rows already pulled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nbinfra.connections.sync import SyncConnection, conn
from nbinfra.errors import QueryError
from nbinfra.plots import plot_query
from nbinfra.session import Session
from nbinfra.testing import MariaDBServer, PostgresServer

np = pytest.importorskip("numpy")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

VALUES = np.random.default_rng(11).normal(50.0, 15.0, size=3_000)


def fill(c: SyncConnection, table: str, float_type: str) -> None:
    c.sql(f"DROP TABLE IF EXISTS {table}")
    c.sql(f"CREATE TABLE {table} (v {float_type}, g INTEGER)")
    rows = ", ".join(f"({float(v)!r}, {i % 4})" for i, v in enumerate(VALUES))
    c.sql(f"INSERT INTO {table} VALUES {rows}, (NULL, 9)")


def check_numbers(c: SyncConnection, table: str) -> None:
    query = f"SELECT v, g FROM {table} WHERE g >= :low"
    fig = plot_query(c, query, "hist", ["v"], params={"low": 0}, bins=17)
    data = fig.nbinfra_plot
    counts, edges = np.histogram(VALUES, bins=17)
    assert data.y == counts.tolist()
    assert np.allclose(data.x, edges)
    assert data.rows_fetched <= 1 + 17  # the range row, then the bins (one row on DuckDB)
    (steps,) = fig.axes[0].patches  # the counted bins, drawn as one step patch
    assert steps.get_data().values.tolist() == counts.tolist()
    box = plot_query(c, query, "box", ["v"], params={"low": 0}).nbinfra_plot.boxes[0]
    (want,) = matplotlib.cbook.boxplot_stats(VALUES)  # what ax.boxplot(VALUES) draws
    for key in ("q1", "med", "q3", "whislo", "whishi"):
        assert box[key] == pytest.approx(want[key]), key
    assert sorted(box["fliers"]) == pytest.approx(sorted(want["fliers"].tolist()))
    assert box["nfliers"] == len(want["fliers"]) > 0
    bar = plot_query(c, query, "bar", ["g", "v"], params={"low": 0}).nbinfra_plot
    sums = {g: VALUES[g::4].sum() for g in range(4)}
    assert dict(zip(bar.x, bar.y, strict=True)) == pytest.approx({**sums, 9: 0.0})
    line = plot_query(c, query, "line", ["v", "g"], params={"low": 0}).nbinfra_plot
    assert line.x == sorted(line.x) and len(line.x) == len(VALUES)


@pytest.fixture
def duck(nbinfra_session: Session) -> SyncConnection:
    c = conn("duckdb")
    fill(c, "t", "DOUBLE")
    return c


def test_duckdb_plots_match_numpy(duck: SyncConnection) -> None:
    check_numbers(duck, "t")


def test_sqlite_plots_match_numpy(nbinfra_session: Session, tmp_path: Path) -> None:
    c = conn(f"sql:sqlite:///{tmp_path / 'p.db'}")
    fill(c, '"my t"', "REAL")
    check_numbers(c, '"my t"')


def test_postgres_plots_match_numpy(
    nbinfra_session: Session, postgres_server: PostgresServer
) -> None:
    from nbinfra.connections.postgres import PostgresConnectionManager

    c = SyncConnection(PostgresConnectionManager(url=postgres_server.url))
    try:
        fill(c, "plot_t", "DOUBLE PRECISION")
        check_numbers(c, "plot_t")
    finally:
        c.sql("DROP TABLE IF EXISTS plot_t")
        c.close()


def test_ten_million_rows_fetch_only_the_bins(nbinfra_session: Session) -> None:
    c = conn("duckdb")
    c.sql("CREATE TABLE big AS SELECT (i * 7919) % 10007 AS v FROM range(10000000) r(i)")
    data = plot_query(c, "SELECT v FROM big", "hist", ["v"], bins=50).nbinfra_plot
    assert data.rows_fetched == 2  # the range row, then the 50 bins in one row
    assert sum(data.y) == 10_000_000 and data.x[0] == 0 and data.x[-1] == 10006
    scatter = plot_query(c, "SELECT v, v AS w FROM big", "scatter", ["v", "w"]).nbinfra_plot
    assert 1_000 < len(scatter.x) <= 10_000 and scatter.rows_fetched == 1 + len(scatter.x)


def edge_values_count_as_numpy(c: SyncConnection, table: str) -> None:
    """Values lying on bin edges (0, 2, ..., 10 with 5 bins; 10007 integers with 50 bins)
    fall in the bin they start, the maximum in the last bin."""
    c.sql(f"CREATE TABLE {table} AS SELECT i AS v FROM range(11) r(i)")
    data = plot_query(c, f"SELECT v FROM {table}", "hist", ["v"], bins=5).nbinfra_plot
    assert data.y == [2, 2, 2, 2, 3] == np.histogram(range(11), bins=5)[0].tolist()
    assert data.x == np.histogram_bin_edges(range(11), bins=5).tolist()
    ints = [(i * 7919) % 10007 for i in range(20_000)]
    c.sql(f"CREATE TABLE {table}_i AS SELECT (i * 7919) % 10007 AS v FROM range(20000) r(i)")
    data = plot_query(c, f"SELECT v FROM {table}_i", "hist", ["v"], bins=50).nbinfra_plot
    counts, edges = np.histogram(ints, bins=50)
    assert data.y == counts.tolist() and data.x == edges.tolist()


def test_edge_values_count_as_numpy_duckdb(nbinfra_session: Session) -> None:
    edge_values_count_as_numpy(conn("duckdb"), "edges")


def test_edge_values_count_as_numpy_sqlite(nbinfra_session: Session, tmp_path: Path) -> None:
    c = conn(f"sql:sqlite:///{tmp_path / 'e.db'}")
    c.sql("CREATE TABLE nums (i INTEGER)")
    c.sql(
        "WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i < 19999) "
        "INSERT INTO nums SELECT i FROM r"
    )
    c.sql("CREATE VIEW edges AS SELECT i AS v FROM nums WHERE i < 11")
    c.sql("CREATE VIEW edges_i AS SELECT (i * 7919) % 10007 AS v FROM nums")
    data = plot_query(c, "SELECT v FROM edges", "hist", ["v"], bins=5).nbinfra_plot
    assert data.y == [2, 2, 2, 2, 3]
    ints = [(i * 7919) % 10007 for i in range(20_000)]
    data = plot_query(c, "SELECT v FROM edges_i", "hist", ["v"], bins=50).nbinfra_plot
    assert data.y == np.histogram(ints, bins=50)[0].tolist()


def test_infinite_values_are_one_line(duck: SyncConnection) -> None:
    duck.sql("CREATE TABLE inf_t AS SELECT * FROM (VALUES (1.0::DOUBLE), ('inf'::DOUBLE)) v(v)")
    with pytest.raises(QueryError, match=r"infinite or NaN values .* filter them out"):
        plot_query(duck, "SELECT v FROM inf_t", "hist", ["v"])


def test_sample_and_arity_errors(duck: SyncConnection) -> None:
    with pytest.raises(QueryError, match="--plot line takes X Y; got 1"):
        plot_query(duck, "SELECT * FROM t", "line", ["v"])
    with pytest.raises(QueryError, match="Unknown plot 'pie'"):
        plot_query(duck, "SELECT * FROM t", "pie", ["v"])


def test_result_plot_draws_rows_already_pulled(duck: SyncConnection) -> None:
    result = duck.sql("SELECT v, g FROM t WHERE v IS NOT NULL")
    fig = result.plot("hist", x="v", bins=17)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == np.histogram(VALUES, bins=17)[0].tolist()
    bars: Any = result.plot("bar", x="g").axes[0].patches
    assert [b.get_height() for b in bars] == [750, 750, 750, 750]
    with pytest.raises(QueryError, match="No column 'nope'"):
        result.plot("hist", x="nope")


def test_mariadb_plots_match_numpy(nbinfra_session: Session, mariadb_server: MariaDBServer) -> None:
    c = conn(f"sql:{mariadb_server.url}")
    try:
        fill(c, "plot_t", "DOUBLE")
        check_numbers(c, "plot_t")  # box quartiles by ORDER BY ... LIMIT 2 OFFSET k here
    finally:
        c.sql("DROP TABLE IF EXISTS plot_t")


def test_scatter_sample_is_spread_over_the_whole_table(nbinfra_session: Session) -> None:
    c = conn("duckdb")
    c.sql("CREATE TABLE s AS SELECT i AS x, i AS y FROM range(200000) r(i)")
    data = plot_query(c, "SELECT * FROM s", "scatter", ["x", "y"]).nbinfra_plot
    late = sum(1 for x in data.x if x >= 150_000)
    assert 8_000 < len(data.x) <= 10_000 and late > 0.2 * len(data.x)  # not cut by LIMIT
