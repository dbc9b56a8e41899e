"""Statements and binds in the URL's dialect (sqlglot), for the ``sql`` kind."""

from __future__ import annotations

import pytest

from nbinfra._secrets import mask_url
from nbinfra.connections.sqla_text import backend_of, dialect_text


@pytest.mark.parametrize(
    ("dialect", "script", "statements"),
    [
        (
            "mysql",
            "INSERT INTO t VALUES ('it\\'s; x'); # a; comment\nSELECT \"a;b\"; SELECT `c;d`",
            ["INSERT INTO t VALUES ('it\\'s; x')", '# a; comment\nSELECT "a;b"', "SELECT `c;d`"],
        ),
        (
            "postgres",
            "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; SELECT $q$;$q$",
            ["CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", "SELECT $q$;$q$"],
        ),
        ("tsql", "SELECT [a;b] FROM t; SELECT 'x;y'", ["SELECT [a;b] FROM t", "SELECT 'x;y'"]),
        ("sqlite", "SELECT 1;; -- only a comment; here\n ;", ["SELECT 1"]),
        (None, "SELECT 1; SELECT ';' AS s;\n", ["SELECT 1", "SELECT ';' AS s"]),
    ],
)
def test_statements_split_in_the_dialect(
    dialect: str | None, script: str, statements: list[str]
) -> None:
    assert dialect_text(dialect).statements(script) == statements


def test_the_generic_split_would_cut_a_mysql_escape() -> None:
    from nbinfra.connections.sqltext import split_statements

    script = "SELECT 'it\\'s; x'; SELECT 2"
    right = ["SELECT 'it\\'s; x'", "SELECT 2"]
    assert split_statements(script) != right  # backslash escapes are not standard SQL
    assert dialect_text("mysql").statements(script) == right


def test_binds_are_code_only_and_other_colons_are_escaped_for_text() -> None:
    pg = dialect_text("postgres")
    sql = "SELECT :a, ':b', $$ :c $$, x::int, \"q:d\" /* :e */ -- :f\n, :a, :g"
    assert pg.binds(sql) == ["a", "g"]
    assert pg.for_text("SELECT ':b', :a, x::int") == "SELECT '\\:b', :a, x\\:\\:int"
    assert dialect_text("mysql").binds("SELECT 'it\\':no', :yes") == ["yes"]
    assert dialect_text("snowflake").binds("SELECT v:field, :p FROM t") == ["p"]


def test_an_unterminated_literal_falls_back_to_the_generic_rules() -> None:
    assert dialect_text("mysql").statements("SELECT 1; SELECT 'open") == [
        "SELECT 1",
        "SELECT 'open",
    ]


def test_backend_names_and_urls_shown_as_written() -> None:
    assert backend_of("mysql+pymysql://u:p@h/db") == "mysql"
    assert backend_of("sqlite:///x.db") == "sqlite"
    assert mask_url("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert mask_url("mysql+pymysql://u:pw-1234@h/db") == "mysql+pymysql://u:********@h/db"
