"""Widgets driven headlessly: change a control, check the state that would reach the browser."""

from __future__ import annotations

import json

import pytest

import nbinfra
from nbinfra.connections.types import QueryResult


def _state_size(widget: object) -> int:
    """Bytes of every widget model state under ``widget`` (what the browser receives)."""
    import ipywidgets

    total = 0
    seen: set[str] = set()
    stack = [widget]
    while stack:
        w = stack.pop()
        if not isinstance(w, ipywidgets.Widget) or w.model_id in seen:
            continue
        seen.add(w.model_id)
        state = w.get_state()
        total += len(json.dumps(state, default=str))
        stack.extend(getattr(w, "children", ()))
    return total


def test_widgets_is_lazy_attribute() -> None:
    assert nbinfra.widgets.results_table is not None


def test_results_table_million_rows_sends_one_page() -> None:
    rows = [(i, f"name-{i}") for i in range(1_000_000)]
    table = nbinfra.widgets.results_table(QueryResult(["id", "name"], rows), page_size=25)
    assert "1,000,000 rows" in table.info.value
    assert "page 1 of 40,000" in table.info.value
    assert "name-24" in table.table.value and "name-25" not in table.table.value
    assert _state_size(table) < 50_000
    table.next_button.click()
    assert table.page.value == 2
    assert "name-25" in table.table.value and "name-24<" not in table.table.value
    table.page.value = 40_000
    assert "name-999999" in table.table.value
    assert table.next_button.disabled


def _firsts(table: object) -> list[str]:
    """The first cell of each shown row."""
    import re

    html = table.table.value  # type: ignore[attr-defined]
    body = html[html.index("<tbody>") :]
    return [re.sub("<[^>]+>", "", c) for c in re.findall(r"<tr><td[^>]*>(.*?)</td>", body)]


def test_results_table_header_click_sorts_rows_and_frames() -> None:
    result = QueryResult(["n", "s"], [(3, "c"), (1, "a"), (None, "z"), (2, "b")])
    table = nbinfra.widgets.results_table(result, page_size=2)
    assert _firsts(table) == ["3", "1"]
    table.headers["n"].click()
    assert _firsts(table) == ["1", "2"]
    assert table.headers["n"].description == "n \u25b2" and "n \u25b2" in table.table.value
    table.page.value = 2
    assert _firsts(table) == ["3", "NULL"]  # NULL last
    table.headers["n"].click()  # descending, back on page 1
    assert table.page.value == 1 and _firsts(table) == ["3", "2"]
    assert table.headers["n"].description == "n \u25bc"
    table.headers["n"].click()  # unsorted again
    assert _firsts(table) == ["3", "1"] and table.headers["n"].description == "n"
    table.headers["s"].click()
    table.headers["s"].click()
    assert _firsts(table) == ["NULL", "3"]  # z, c

    import pandas as pd

    frame = pd.DataFrame({"n": [3, 1, 2], "s": list("cab")})
    ftable = nbinfra.widgets.results_table(frame, page_size=1)
    assert "3 rows" in ftable.info.value and ">c</td>" in ftable.table.value
    ftable.click_header("n")
    assert ">a</td>" in ftable.table.value
    ftable.page.value = 3
    assert ">c</td>" in ftable.table.value


def test_results_table_filters_in_the_engine() -> None:
    rows = [(i, f"Name-{i}", i * 0.5) for i in range(100)]
    table = nbinfra.widgets.results_table(QueryResult(["id", "name", "x"], rows), page_size=10)
    table.filters["name"].value = "name-1"  # case-insensitive contains: 1, 10-19
    assert "11 rows" in table.info.value and table.view.fetched == 10
    table.filters["id"].value = ">15"
    assert "4 rows" in table.info.value and _firsts(table) == ["16", "17", "18", "19"]
    table.filters["id"].value = "17"
    assert _firsts(table) == ["17"]
    table.filters["name"].value = ""
    table.filters["x"].value = "<=1.5"
    assert "0 rows" in table.info.value  # id = 17 and x <= 1.5
    table.filters["id"].value = "!=2"
    assert _firsts(table) == ["0", "1", "3"]
    table.filters["id"].value = "about five"
    assert "not a number" in table.message.value and "Traceback" not in table.message.value
    assert "\n" not in table.message.value
    table.filters["id"].value = ""
    assert table.message.value == "" and "4 rows" in table.info.value
    quote = QueryResult(["s"], [("it's",), ("a'); DROP TABLE x; --",), ("plain",)])
    qt = nbinfra.widgets.results_table(quote)
    qt.filters["s"].value = "'"
    assert "2 rows" in qt.info.value  # the value is bound, not pasted into SQL


def test_results_table_page_size_choice() -> None:
    rows = [(i,) for i in range(250)]
    table = nbinfra.widgets.results_table(QueryResult(["id"], rows), page_size=20)
    assert list(table.page_size.options) == [10, 20, 50, 100]
    table.page.value = 3
    table.page_size.value = 100
    assert table.page.value == 1 and "page 1 of 3" in table.info.value
    assert len(_firsts(table)) == 100 and table.view.fetched == 100
    table.next_button.click()
    table.next_button.click()
    assert _firsts(table)[:1] == ["200"] and len(_firsts(table)) == 50
    assert table.next_button.disabled


def test_results_table_downloads_and_copy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import duckdb

    rows = [(i, f"n{i}") for i in range(1000)]
    table = nbinfra.widgets.results_table(
        QueryResult(["id", "name"], rows), page_size=10, download_dir=tmp_path
    )
    table.filters["id"].value = ">=900"
    table.click_header("id")
    table.click_header("id")
    table.csv_button.click()
    csv = table.download
    assert csv.parent == tmp_path and csv.suffix == ".csv"
    link = table.link.outputs[0]["data"]["text/html"]
    assert link.startswith("<a href=") and csv.as_posix() in link
    lines = csv.read_text().splitlines()
    assert lines[0] == "id,name" and lines[1] == "999,n999" and len(lines) == 101
    table.parquet_button.click()
    got = duckdb.sql(f"select count(*), max(id) from '{table.download}'").fetchall()
    assert got == [(100, 999)]
    table.copy_button.click()
    copied = table.copied.value.splitlines()
    assert copied[0] == "id\tname" and copied[1] == "999\tn999" and len(copied) == 11


def test_results_table_pages_ten_million_duckdb_rows_without_pulling_them() -> None:
    import duckdb

    from nbinfra.connections.duckdb_result import DuckDBResult

    con = duckdb.connect()
    relation = con.sql("SELECT range AS id, 'r' || range::VARCHAR AS name FROM range(10000000)")
    import threading

    result = DuckDBResult(relation, threading.RLock(), elapsed=0.0, statement="", limit=None)
    table = nbinfra.widgets.results_table(result, page_size=20)
    assert "10,000,000 rows" in table.info.value and table.view.fetched == 20
    table.page.value = 400_000
    assert _firsts(table)[0] == "7,999,980" and table.view.fetched == 20
    table.click_header("id")
    table.click_header("id")
    assert _firsts(table)[0] == "9,999,999" and table.view.fetched == 20
    table.filters["name"].value = "R999999"
    assert "11 rows" in table.info.value
    assert result._rows is None  # the result's rows were never pulled into Python
    con.close()


def test_results_table_rejects_other_things() -> None:
    with pytest.raises(TypeError, match="QueryResult or a pandas DataFrame"):
        nbinfra.widgets.results_table([1, 2, 3])


@pytest.mark.service
def test_health_panel_caches(tmp_path, redis_server_factory) -> None:  # type: ignore[no-untyped-def]
    from nbinfra.session import Session, use_session

    redis_server = redis_server_factory()  # its own server: this test stops it

    (tmp_path / "application-cache.yaml").write_text(
        f"cache:\n  backend: memory\n  redis:\n    url: {redis_server.url}\n"
    )
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        panel = nbinfra.widgets.health_panel(connections=False).wait(60)
        # the shipped cache kinds, and any other the cache settings name
        rows = {row[1]: row for row in panel.rows}
        assert {"memory", "redis"} <= set(rows)
        assert rows["memory"][0] == rows["redis"][0] == "ok"
        assert "redis 7" in rows["redis"][5] or rows["redis"][4].endswith("ms")
        redis_server.stop()
        panel.refresh.click()
        panel.wait(60)
        rows = {row[1]: row for row in panel.rows}
        assert rows["redis"][0] == "down" and rows["memory"][0] == "ok"
        assert "\u00d7 down" in panel.table.value
    fresh.close()


def _conversation() -> object:
    from nbinfra.llm.context import ContextWindowManager
    from nbinfra.llm.types import Message

    manager = ContextWindowManager(model="gpt-4o-mini", context_window=4000, max_output_tokens=100)
    manager.add(Message("system", "You are terse."))
    for i in range(6):
        manager.add(Message("user", f"question {i} " + "word " * 40))
        manager.add(Message("assistant", f"answer {i} " + "word " * 40))
    return manager


def test_budget_slider_changes_kept_and_dropped() -> None:
    widget = nbinfra.widgets.context_preview(_conversation())
    first = widget.preview
    assert first.count("dropped") == 0
    widget.budget.value = 150
    small = widget.preview
    assert small.count("dropped") > 0 and small.count("kept") < first.count("kept")
    assert small.entries[0].status == "kept"  # the system prompt stays
    assert "dropped" in widget.table.value
    assert "of 150 tokens" in widget.summary.value
    widget.strategy.value = "sliding_window"
    assert widget.preview.strategy == "sliding_window"
    widget.budget.value = widget.budget.max
    assert widget.preview.count("dropped") == 0
    with pytest.raises(TypeError, match="takes a Chat"):
        nbinfra.widgets.context_preview(42)
