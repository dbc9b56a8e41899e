"""``result.pl()``: Polars beside ``.df()`` and ``.arrow()``, and a one-line hint without it."""

from __future__ import annotations

import sys
from datetime import date

import pytest

from nbinfra.connections.duckdb import DuckDBConnectionManager
from nbinfra.connections.types import QueryResult
from nbinfra.errors import MissingDependencyError

pl = pytest.importorskip("polars")

QUERY = "SELECT i AS a, 'x' || i AS b, DATE '2020-01-01' + i::INT AS d FROM range(5) t(i)"
EXPECTED = pl.DataFrame(
    {
        "a": list(range(5)),
        "b": [f"x{i}" for i in range(5)],
        "d": [date(2020, 1, 1 + i) for i in range(5)],
    }
)


def test_duckdb_results_convert_to_polars_natively_and_after_close() -> None:
    mgr = DuckDBConnectionManager()
    result = mgr.execute_query_sync(QUERY)
    frame = result.pl()
    assert isinstance(frame, pl.DataFrame)
    assert frame.equals(EXPECTED) and frame.columns == ["a", "b", "d"]
    assert result.pl() is not frame  # a fresh frame each call
    mgr._close_sync()  # the result is copied out of DuckDB first
    assert result.pl().equals(EXPECTED)


def test_any_query_result_converts_to_polars() -> None:
    result = QueryResult(["a", "b"], [(1, "x"), (2, None)])
    frame = result.pl()
    assert frame.to_dicts() == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
    assert QueryResult(["a"], []).pl().columns == ["a"]


@pytest.mark.parametrize("native", [False, True], ids=["QueryResult", "DuckDBResult"])
def test_without_polars_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    mgr = DuckDBConnectionManager()
    result = mgr.execute_query_sync("SELECT 1 AS a") if native else QueryResult(["a"], [(1,)])
    monkeypatch.setitem(sys.modules, "polars", None)  # ``import polars`` raises ImportError
    try:
        with pytest.raises(MissingDependencyError) as info:
            result.pl()
    finally:
        mgr._close_sync()
    assert str(info.value) == "Polars is not installed: pip install 'nbinfra[polars]'"
    assert info.value.hint == "pip install 'nbinfra[polars]'"
    assert info.value._render_traceback_() == [f"MissingDependencyError: {info.value}"]
