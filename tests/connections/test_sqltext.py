"""Placeholder rewriting and statement splitting (pure text; engines test the binding)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbinfra.connections.sqltext import (
    placeholders,
    segments,
    split_statements,
    to_dollar,
    to_pyformat,
)
from nbinfra.errors import QueryError


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("SELECT :a, :b_2", ["a", "b_2"]),
        ("SELECT x::int, :a::text", ["a"]),
        ("SELECT ':a', \":b\", $$ :c $$, $t$ :d $t$ -- :e\n/* :f */ , :g", ["g"]),
        ("SELECT arr[1:2], arr[lo:hi]", []),
        ("SELECT E'it\\'s :a', :b", ["b"]),
        ("SELECT 'it''s :a', :b", ["b"]),
    ],
)
def test_placeholders_only_in_code(sql: str, names: list[str]) -> None:
    assert placeholders(sql) == names


def test_to_pyformat_escapes_percent_and_keeps_pyformat() -> None:
    sql, params = to_pyformat("SELECT '5%', :a, x % 2 FROM t", {"a": 1})
    assert sql == "SELECT '5%%', %(a)s, x %% 2 FROM t" and params == {"a": 1}
    already = "SELECT %(a)s, '50%%'"
    assert to_pyformat(already, {"a": 1}) == (already, {"a": 1})
    assert to_pyformat("SELECT '5%'", None) == ("SELECT '5%'", None)
    assert to_pyformat("SELECT %s", [1]) == ("SELECT %s", [1])


def test_to_dollar_for_duckdb() -> None:
    assert to_dollar("SELECT :a, ':b'", {"a": 1, "unused": 2}) == ("SELECT $a, ':b'", {"a": 1})
    assert to_dollar("SELECT %(a)s, '5%%'", {"a": 1}) == ("SELECT $a, '5%%'", {"a": 1})
    assert to_dollar("SELECT %s, %s", (1, 2)) == ("SELECT ?, ?", [1, 2])
    with pytest.raises(QueryError, match="mapping or a sequence"):
        to_dollar("SELECT 1", 5)


def test_missing_names_are_reported() -> None:
    with pytest.raises(QueryError, match=r"uses parameter\(s\) b .*given: a"):
        to_pyformat("SELECT :a, :b", {"a": 1})


def test_split_statements() -> None:
    script = "SELECT 'a;b'; -- c;d\nSELECT $$;$$ ;; /* ; */ SELECT 3;\n-- trailing comment"
    assert split_statements(script) == ["SELECT 'a;b'", "-- c;d\nSELECT $$;$$", "/* ; */ SELECT 3"]
    assert split_statements("  ") == []


@given(st.text(alphabet="ab:'\"$-/*%;\n x", max_size=40))
def test_segments_reassemble_exactly(sql: str) -> None:
    assert "".join(text for _, text in segments(sql)) == sql


@given(st.text(alphabet=st.characters(blacklist_characters="'\\"), max_size=30))
def test_literal_content_is_never_rewritten(content: str) -> None:
    sql = "SELECT '" + content.replace("'", "''") + "', :p"
    out, _ = to_dollar(sql, {"p": 1})
    assert out.startswith("SELECT '" + content.replace("'", "''") + "'")
    assert out.endswith(", $p")
