"""The SQL of plots computed in the engine, per dialect."""

from __future__ import annotations

from nbinfra.connections.plotsql import PlotSQL

Q = "SELECT * FROM t WHERE a = 'it''s'"


def test_the_query_is_a_derived_table() -> None:
    assert PlotSQL("duckdb").range_sql(Q + ";", "my col") == (
        'SELECT MIN(CAST("my col" AS DOUBLE)), MAX(CAST("my col" AS DOUBLE)), '
        "COUNT(CAST(\"my col\" AS DOUBLE)) FROM (SELECT * FROM t WHERE a = 'it''s') "
        'AS "nbinfra_q"'
    )


def test_hist_bins_per_dialect() -> None:
    duck = PlotSQL("duckdb").hist_sql("SELECT 1 AS v", "v", 4, 0.0, 2.0)
    index = 'FLOOR((CAST("v" AS DOUBLE) - 0.0) * 2.0)'
    assert duck == (
        f"SELECT CASE WHEN {index} >= 4 THEN 3 ELSE {index} END AS b, COUNT(*) AS n "
        'FROM (SELECT 1 AS v) AS "nbinfra_q" WHERE CAST("v" AS DOUBLE) IS NOT NULL '
        f"GROUP BY CASE WHEN {index} >= 4 THEN 3 ELSE {index} END ORDER BY b"
    )
    sqlite = PlotSQL("sqlite").hist_sql("SELECT 1 AS v", "v", 4, 0.0, 2.0)
    assert 'CAST((CAST("v" AS REAL) - 0.0) * 2.0 AS INTEGER)' in sqlite
    assert "FLOOR" not in sqlite
    assert "DOUBLE PRECISION" in PlotSQL("postgres").hist_sql("SELECT 1 AS v", "v", 4, 0.0, 2.0)
    assert "`v`" in PlotSQL("mysql").hist_sql("SELECT 1 AS v", "v", 4, 0.0, 2.0)


def test_box_uses_the_engine_quantiles_or_none() -> None:
    duck = PlotSQL("duckdb").box_sql(Q, "x")
    assert duck is not None and 'quantile_cont(CAST("x" AS DOUBLE), 0.25)' in duck
    pg = PlotSQL("postgres").box_sql(Q, "x")
    assert pg is not None
    assert 'percentile_cont(0.5) WITHIN GROUP (ORDER BY CAST("x" AS DOUBLE PRECISION))' in pg
    spark = PlotSQL("spark").box_sql(Q, "x")
    assert spark is not None and "percentile(CAST(`x` AS DOUBLE), 0.75)" in spark
    assert PlotSQL("sqlite").box_sql(Q, "x") is None  # read with ORDER BY ... OFFSET instead
    assert PlotSQL("mysql").box_sql(Q, "x") is None
    assert (
        PlotSQL("sqlite").nth_sql(Q, "x", 7).endswith('ORDER BY CAST("x" AS REAL) LIMIT 2 OFFSET 7')
    )


def test_bar_line_scatter() -> None:
    assert PlotSQL("duckdb").bar_sql("SELECT 1", "g", None, 50) == (
        'SELECT "g" AS x, COUNT(*) AS y FROM (SELECT 1) AS "nbinfra_q" GROUP BY "g" '
        "ORDER BY y DESC, x LIMIT 50"
    )
    assert 'SUM(CAST("v" AS DOUBLE PRECISION)) AS y' in PlotSQL("postgres").bar_sql(
        "SELECT 1", "g", "v", 50
    )
    line = PlotSQL("sqlite").line_sql("SELECT 1", "x", "y", 3)
    assert 'ROW_NUMBER() OVER (ORDER BY "x") AS rn' in line and "(rn - 1) % 3 = 0" in line
    assert "ROW_NUMBER" not in PlotSQL("sqlite").line_sql("SELECT 1", "x", "y", 1)
    assert "WHERE RAND() < 0.5 LIMIT 10" in PlotSQL("mysql").scatter_sql(
        "SELECT 1", "x", "y", 0.5, 10
    )
    assert "random() / 18446744073709551616.0" in PlotSQL("sqlite").scatter_sql(
        "SELECT 1", "x", "y", 0.5, 10
    )
    assert "random()" not in PlotSQL("duckdb").scatter_sql("SELECT 1", "x", "y", 1.0, 10)
