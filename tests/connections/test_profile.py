"""Column profiles computed in the engine: the SQL per dialect, and the numbers on real
DuckDB, PostgreSQL, SQLite and MariaDB checked against pandas on the same data."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from nbinfra.connections.profile import PROFILE_COLUMNS, ProfileSQL, is_numeric
from nbinfra.connections.sync import SyncConnection, conn
from nbinfra.errors import QueryError
from nbinfra.session import Session
from nbinfra.testing import MariaDBServer, PostgresServer

pd = pytest.importorskip("pandas")

COLUMNS = [("select", "INTEGER"), ("my col", "TEXT"), ("x", "DOUBLE PRECISION")]


def test_identifiers_are_quoted_by_the_dialect() -> None:
    assert ProfileSQL("duckdb").quote('a "b"') == '"a ""b"""'
    assert ProfileSQL("mysql").quote("se`lect") == "`se``lect`"
    assert ProfileSQL("postgres").table("s.t") == '"s"."t"'
    assert ProfileSQL("sqlite").table('"my.table"') == '"my.table"'
    assert ProfileSQL("spark").table("db.`my t`") == "`db`.`my t`"
    with pytest.raises(QueryError, match="no table name"):
        ProfileSQL("duckdb").table("a..b")


def test_aggregate_sql_per_dialect() -> None:
    duck = ProfileSQL("duckdb").aggregate_sql("t", COLUMNS)
    assert duck == (
        'SELECT COUNT(*), COUNT("select"), COUNT(DISTINCT "select"), MIN("select"), '
        'MAX("select"), AVG(CAST("select" AS DOUBLE)), STDDEV_SAMP("select"), COUNT("my col"), '
        'COUNT(DISTINCT "my col"), MIN("my col"), MAX("my col"), COUNT("x"), '
        'COUNT(DISTINCT "x"), MIN("x"), MAX("x"), AVG(CAST("x" AS DOUBLE)), STDDEV_SAMP("x") '
        'FROM "t"'
    )
    mysql = ProfileSQL("mysql").aggregate_sql("t", COLUMNS)
    assert "STDDEV_SAMP(`x`)" in mysql and mysql.endswith("FROM `t`")
    sqlite = ProfileSQL("sqlite").aggregate_sql("t", COLUMNS)
    assert "STDDEV" not in sqlite  # SQLite has none: a second pass computes it
    assert ProfileSQL("sqlite").spread_sql("t", [("x", "REAL")]) == (
        'SELECT SUM(("x" - :m0) * ("x" - :m0)) FROM "t"'
    )
    pg = ProfileSQL("postgres").aggregate_sql("t", [("b", "boolean"), ("j", "json")])
    assert 'MIN("b")' not in pg  # PostgreSQL has no MIN(boolean)
    assert 'COUNT(DISTINCT CAST("j" AS TEXT))' in pg  # json has no equality


def test_top_sql_casts_to_the_dialect_text_type() -> None:
    top = ProfileSQL("mysql").top_sql("t", COLUMNS[:2], 3)
    assert top == (
        "SELECT * FROM (SELECT 0 AS i, CAST(`select` AS CHAR) AS v, COUNT(*) AS n FROM `t` "
        "WHERE `select` IS NOT NULL GROUP BY `select` ORDER BY n DESC, v LIMIT 3) AS `top0` "
        "UNION ALL SELECT * FROM (SELECT 1 AS i, CAST(`my col` AS CHAR) AS v, COUNT(*) AS n "
        "FROM `t` WHERE `my col` IS NOT NULL GROUP BY `my col` ORDER BY n DESC, v LIMIT 3) "
        "AS `top1`"
    )
    assert "AS VARCHAR)" in ProfileSQL("duckdb").top_sql("t", COLUMNS, 1)
    assert "AS STRING)" in ProfileSQL("spark").top_sql("t", COLUMNS, 1)


def test_columns_come_from_the_catalogue() -> None:
    assert ProfileSQL("duckdb").columns_sql("my t") == ('DESCRIBE SELECT * FROM "my t"', None)
    sql, params = ProfileSQL("postgres").columns_sql("s.T")
    assert "regclass" in sql and params == {"relation": '"s"."T"'}
    assert ProfileSQL("sqlite").columns_sql("t")[1] == {"name": "t"}
    sql, params = ProfileSQL("mysql").columns_sql("t")
    assert "DATABASE()" in sql and params == {"name": "t"}


def test_numeric_types() -> None:
    for name in ("BIGINT", "UBIGINT", "double precision", "numeric(10,2)", "REAL", "int4"):
        assert is_numeric(name), name
    for name in ("VARCHAR", "INTERVAL", "BOOLEAN", "INTEGER[]", "STRUCT(a INTEGER)", "date"):
        assert not is_numeric(name), name


# -- the same data on four engines, checked against pandas ---------------------------------
def frame() -> Any:
    n = 200
    words = ["a"] * 80 + ["b"] * 50 + ["c"] * 30 + ["d"] * 20 + [None] * 20
    order = [(i * 37) % n for i in range(n)]  # a fixed shuffle
    return pd.DataFrame(
        {
            "select": pd.array([None if i % 10 == 0 else i % 17 for i in range(n)], "Int64"),
            "my col": [words[j] for j in order],
            "x": [None if i % 25 == 3 else i * 0.37 - 20.0 for i in range(n)],
        }
    )


def values_sql(df: Any) -> str:
    def lit(v: Any) -> str:
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return "NULL"
        return (
            f"'{v}'" if isinstance(v, str) else repr(float(v) if isinstance(v, float) else int(v))
        )

    return ", ".join(
        "(" + ", ".join(lit(v) for v in row) + ")"
        for row in df.astype(object).itertuples(index=False)
    )


def check_against_pandas(result: Any, df: Any) -> None:
    assert result.columns == PROFILE_COLUMNS
    by_name = {row[0]: dict(zip(result.columns, row, strict=True)) for row in result.rows}
    assert list(by_name) == ["select", "my col", "x"]
    for name in by_name:
        got, col = by_name[name], df[name]
        assert got["count"] == col.count(), name
        assert got["nulls"] == col.isna().sum(), name
        assert got["distinct"] == col.nunique(), name
        assert got["min"] == col.dropna().min() and got["max"] == col.dropna().max(), name
    for name in ("select", "x"):
        assert by_name[name]["mean"] == pytest.approx(float(df[name].mean()), rel=1e-9)
        assert by_name[name]["std"] == pytest.approx(float(df[name].std()), rel=1e-9)
    assert by_name["my col"]["mean"] is None
    counts = df["my col"].value_counts()
    expected = ", ".join(f"{v} ({n})" for v, n in counts.head(3).items())
    assert by_name["my col"]["top"] == expected == "a (80), b (50), c (30)"


def load_and_profile(c: SyncConnection, create: str, table: str) -> Any:
    df = frame()
    c.sql(f"DROP TABLE IF EXISTS {table}")
    c.sql(create.format(table=table))
    c.sql(f"INSERT INTO {table} VALUES {values_sql(df)}")
    return df


def test_duckdb_profile_matches_pandas(nbinfra_session: Session) -> None:
    c = conn("duckdb")
    df = frame()
    c.sql('CREATE TABLE "my t" AS SELECT * FROM df', frames={"df": df})
    check_against_pandas(c.profile("my t"), df)


def test_sqlite_profile_matches_pandas(nbinfra_session: Session, tmp_path: Path) -> None:
    c = conn(f"sql:sqlite:///{tmp_path / 'p.db'}")
    df = load_and_profile(
        c, 'CREATE TABLE {table} ("select" INTEGER, "my col" TEXT, x REAL)', '"my t"'
    )
    check_against_pandas(c.profile("my t"), df)


def test_postgres_profile_matches_pandas(
    nbinfra_session: Session, postgres_server: PostgresServer
) -> None:
    from nbinfra.connections.postgres import PostgresConnectionManager

    c = SyncConnection(PostgresConnectionManager(url=postgres_server.url))
    try:
        df = load_and_profile(
            c,
            'CREATE TABLE {table} ("select" INTEGER, "my col" TEXT, x DOUBLE PRECISION)',
            '"my t"',
        )
        check_against_pandas(c.profile('"my t"'), df)
        check_against_pandas(c.profile('public."my t"'), df)
    finally:
        c.sql('DROP TABLE IF EXISTS "my t"')
        c.close()


def test_mariadb_profile_matches_pandas(
    nbinfra_session: Session, mariadb_server: MariaDBServer
) -> None:
    c = conn(f"sql:{mariadb_server.url}")
    try:
        df = load_and_profile(
            c, "CREATE TABLE {table} (`select` INT, `my col` VARCHAR(10), x DOUBLE)", "`my t`"
        )
        check_against_pandas(c.profile("my t"), df)
    finally:
        c.sql("DROP TABLE IF EXISTS `my t`")


def test_missing_table_is_one_line(nbinfra_session: Session, tmp_path: Path) -> None:
    c = conn(f"sql:sqlite:///{tmp_path / 'p.db'}")
    with pytest.raises(QueryError, match="No table 'nope'"):
        c.profile("nope")


def test_postgres_types_without_min_or_equality(
    nbinfra_session: Session, postgres_server: PostgresServer
) -> None:
    from nbinfra.connections.postgres import PostgresConnectionManager

    c = SyncConnection(PostgresConnectionManager(url=postgres_server.url))
    try:
        c.sql("DROP TABLE IF EXISTS odd_types")
        c.sql("CREATE TABLE odd_types (b boolean, j json, d date, n numeric(10, 2))")
        c.sql(
            "INSERT INTO odd_types VALUES (true, '{\"a\": 1}', '2024-01-02', 1.50), "
            "(false, '{\"a\": 1}', NULL, 2.50), (true, '[]', '2024-03-04', NULL)"
        )
        rows = {row[0]: row for row in c.profile("odd_types").rows}
        assert rows["b"][2:7] == (3, 0, 2, None, None)  # no MIN(boolean) in PostgreSQL
        assert rows["b"][9] == "true (2), false (1)"
        assert rows["j"][2:5] == (3, 0, 2)  # json counted distinct as text
        assert str(rows["d"][5]) == "2024-01-02" and rows["d"][3] == 1
        assert rows["n"][7] == pytest.approx(2.0) and rows["n"][8] == pytest.approx(0.7071067811)
    finally:
        c.sql("DROP TABLE IF EXISTS odd_types")
        c.close()


def test_an_empty_table(nbinfra_session: Session, tmp_path: Path) -> None:
    c = conn(f"sql:sqlite:///{tmp_path / 'e.db'}")
    c.sql("CREATE TABLE e (v REAL, s TEXT)")
    assert c.profile("e").rows == [
        ("v", "REAL", 0, 0, 0, None, None, None, None, ""),
        ("s", "TEXT", 0, 0, 0, None, None, None, None, ""),
    ]
