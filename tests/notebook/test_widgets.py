"""Widgets driven headlessly: change a control, check the state that would reach the browser."""

from __future__ import annotations

import json
from typing import Any

import pytest
from traitlets import TraitError

import nbinfra
from nbinfra.connections.types import QueryResult
from nbinfra.notebook import tables
from nbinfra.notebook.results_widget import page_tsv


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


def test_anywidget_loads_only_when_a_results_table_is_made() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, nbinfra\n"
        "from nbinfra.connections.types import QueryResult\n"
        "nbinfra.widgets.context_preview\n"
        "print('anywidget' in sys.modules, 'ipywidgets' in sys.modules)\n"
        "nbinfra.widgets.results_table(QueryResult(['a'], [(1,)]))\n"
        "print('anywidget' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "True"]


def _firsts(table: Any) -> list[str | None]:
    """The first cell of each shown row (as the browser receives it)."""
    return [row[0] for row in table.cells]


def test_results_table_million_rows_sends_one_page() -> None:
    rows = [(i, f"name-{i}") for i in range(1_000_000)]
    table = nbinfra.widgets.results_table(QueryResult(["id", "name"], rows), page_size=25)
    assert repr(table) == "ResultsTable(1,000,000 rows, 2 columns)"
    assert table.info == "1,000,000 rows \u00b7 showing 1-25 \u00b7 page 1 of 40,000"
    assert table.total == 1_000_000 and table.pages == 40_000
    assert table.cells[24] == ["24", "name-24"] and len(table.cells) == 25
    assert table.numeric == [True, False] and table.columns == ["id", "name"]
    assert _state_size(table) < 50_000
    table.next_page()
    assert table.page == 2 and _firsts(table)[0] == "25"
    table.set_state({"page": 40_000})  # what the browser's page box sends
    assert table.cells[-1] == ["999,999", "name-999999"]
    table.set_state({"page": 50_000})  # past the end: the last page
    assert table.page == 40_000
    table.prev_page()
    assert table.page == 39_999


def test_results_table_header_click_sorts_rows_and_frames() -> None:
    result = QueryResult(["n", "s"], [(3, "c"), (1, "a"), (None, "z"), (2, "b")])
    table = nbinfra.widgets.results_table(result, page_size=2)
    assert _firsts(table) == ["3", "1"] and table.sort == []
    table.click_header("n")
    assert table.sort == ["n", "asc"] and _firsts(table) == ["1", "2"]
    table.page = 2
    assert _firsts(table) == ["3", None]  # NULL last, sent as null (drawn as a dim NULL)
    table.click_header("n")  # descending, back on page 1
    assert table.sort == ["n", "desc"] and table.page == 1 and _firsts(table) == ["3", "2"]
    table.click_header("n")  # unsorted again
    assert table.sort == [] and _firsts(table) == ["3", "1"]
    table.set_state({"sort": ["s", "desc"]})  # what a header click in the browser sends
    assert _firsts(table) == [None, "3"]  # z, c
    with pytest.raises(TraitError, match="sort is"):
        table.set_state({"sort": ["nope", "asc"]})

    import pandas as pd

    frame = pd.DataFrame({"n": [3, 1, 2], "s": list("cab")})
    ftable = nbinfra.widgets.results_table(frame, page_size=1)
    assert ftable.total == 3 and ftable.cells == [["3", "c"]]
    ftable.click_header("n")
    assert ftable.cells == [["1", "a"]]
    ftable.page = 3
    assert ftable.cells == [["3", "c"]]


def test_results_table_filters_in_the_engine() -> None:
    rows = [(i, f"Name-{i}", i * 0.5) for i in range(100)]
    table = nbinfra.widgets.results_table(QueryResult(["id", "name", "x"], rows), page_size=10)
    table.set_filter("name", "name-1")  # case-insensitive contains: 1, 10-19
    assert table.total == 11 and table.view.fetched == 10 and table.pages == 2
    table.set_filter("id", ">15")
    assert table.total == 4 and _firsts(table) == ["16", "17", "18", "19"]
    table.set_state({"filters": {"name": "name-1", "id": "17"}})  # as the header boxes send
    assert _firsts(table) == ["17"]
    table.set_filter("name", "")
    table.set_filter("x", "<=1.5")
    assert table.total == 0 and table.cells == [] and "showing 0" in table.info
    table.set_filter("id", "!=2")
    assert _firsts(table) == ["0", "1", "3"]
    table.set_filter("id", "about five")
    assert "not a number" in table.message and "\n" not in table.message
    assert _firsts(table) == ["0", "1", "3"]  # the last good page stays
    table.set_filter("id", "")
    assert table.message == "" and table.total == 4
    with pytest.raises(KeyError, match="No column"):
        table.set_filter("nope", "1")
    table.set_filter("x", "")
    table.set_filter("id", ">90")
    assert table.total == 9
    counted: list[int] = []
    relation = table.view._relation
    table.view._relation = lambda: counted.append(1) or relation()  # type: ignore[method-assign]
    table.click_header("x")  # a sort alone: the 9 rows are not counted again
    assert table.total == 9 and _firsts(table)[0] == "91" and len(counted) == 1  # the page
    quote = QueryResult(["s"], [("it's",), ("a'); DROP TABLE x; --",), ("plain",)])
    qt = nbinfra.widgets.results_table(quote)
    qt.set_filter("s", "'")
    assert qt.total == 2  # the value is bound, not pasted into SQL


def test_results_table_page_size_choice() -> None:
    rows = [(i,) for i in range(250)]
    table = nbinfra.widgets.results_table(QueryResult(["id"], rows), page_size=20)
    assert table.page_sizes == [10, 20, 50, 100]
    assert nbinfra.widgets.results_table(QueryResult(["id"], rows), 25).page_sizes[2] == 25
    table.page = 3
    table.set_state({"page_size": 100})  # the rows-per-page choice in the browser
    assert table.page == 1 and "page 1 of 3" in table.info
    assert len(table.cells) == 100 and table.view.fetched == 100
    table.next_page()
    table.next_page()
    assert _firsts(table)[:1] == ["200"] and len(table.cells) == 50
    assert table.page == table.pages == 3
    with pytest.raises(ValueError, match="at least 1"):
        nbinfra.widgets.results_table(QueryResult(["id"], rows), page_size=0)


def test_results_table_cells_as_the_table_style_writes_them() -> None:
    long = "word " * 600
    result = QueryResult(["n", "t", "note"], [(1234567, "a\tb\nc", long), (None, None, "x")])
    table = nbinfra.widgets.results_table(result)
    assert table.cells[0][0] == "1,234,567" and table.cells[1][:2] == [None, None]
    assert table.numeric == [True, False, False]
    # a huge value is cut before it is sent (the browser cuts it again, whole in the title)
    assert len(table.cells[0][2]) <= tables.MAX_TITLE and table.cells[0][2].endswith("\u2026")
    lines = table.copy_page().split("\n")
    assert lines[0] == "n\tt\tnote" and len(lines) == 3
    assert lines[1].split("\t")[:2] == ["1,234,567", "a b c"]  # tabs, line breaks: spaces
    assert lines[2] == "NULL\tNULL\tx"
    assert page_tsv(["a"], [["1"], [None]]) == "a\n1\nNULL"


class _Sent:
    """What the kernel sends the browser on the widget's comm (the real comm's send)."""

    def __init__(self, table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.messages: list[tuple[dict[str, Any], list[bytes]]] = []
        real = table.comm.send

        def send(data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
            if isinstance(data, dict) and data.get("method") == "custom":
                self.messages.append((data["content"], [bytes(b) for b in buffers or ()]))
            real(data=data, metadata=metadata, buffers=buffers)

        monkeypatch.setattr(table.comm, "send", send)

    def file(self) -> tuple[dict[str, Any], bytes]:
        parts = [(m, b) for m, b in self.messages if m["kind"] == "file"]
        assert parts and len(parts) == parts[0][0]["parts"]
        assert [m["part"] for m, _ in parts] == list(range(len(parts)))
        return parts[0][0], b"".join(b[0] for _, b in parts)


def _ask(table: Any, content: dict[str, Any]) -> None:
    """A custom message from the browser, through the widget's own comm handler."""
    table._handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )


def test_results_table_downloads_go_to_the_browser(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import duckdb

    from nbinfra.notebook import results_widget

    rows = [(i, f"n{i}") for i in range(1000)]
    table = nbinfra.widgets.results_table(
        QueryResult(["id", "name"], rows), page_size=10, download_dir=tmp_path
    )
    sent = _Sent(table, monkeypatch)
    table.set_filter("id", ">=900")
    table.click_header("id")
    table.click_header("id")
    monkeypatch.setattr(results_widget, "CHUNK", 700)  # several parts
    _ask(table, {"kind": "download", "format": "csv", "request": "r1"})
    head, data = sent.file()
    csv = table.last_download
    assert csv.parent == tmp_path and csv.suffix == ".csv" and head["name"] == csv.name
    assert head["request"] == "r1" and head["mime"] == "text/csv" and head["parts"] > 1
    assert data == csv.read_bytes() and head["size"] == len(data)
    lines = data.decode().splitlines()
    assert lines[0] == "id,name" and lines[1] == "999,n999" and len(lines) == 101
    sent.messages.clear()
    path = table.download("parquet")
    head, data = sent.file()
    assert data[:4] == b"PAR1" and head["name"] == path.name == "result-2.parquet"
    got = duckdb.sql(f"select count(*), max(id) from '{path}'").fetchall()
    assert got == [(100, 999)]
    sent.messages.clear()
    _ask(table, {"kind": "download", "format": "xlsx", "request": "r3"})
    assert sent.messages[0][0]["kind"] == "error" and "csv or parquet" in table.message
    sent.messages.clear()
    monkeypatch.setattr(results_widget, "MAX_SEND", 100)  # too big to send: kept on disk
    _ask(table, {"kind": "download", "format": "csv", "request": "r4"})
    ((error, _),) = sent.messages
    assert error["kind"] == "error" and error["request"] == "r4"
    assert "too big to send" in error["text"] and table.last_download.exists()


def test_results_table_pages_ten_million_duckdb_rows_without_pulling_them() -> None:
    import threading
    import time

    import duckdb

    from nbinfra.connections.duckdb_result import DuckDBResult

    con = duckdb.connect()
    relation = con.sql("SELECT range AS id, 'r' || range::VARCHAR AS name FROM range(10000000)")
    result = DuckDBResult(relation, threading.RLock(), elapsed=0.0, statement="", limit=None)
    table = nbinfra.widgets.results_table(result, page_size=20)
    assert table.total == 10_000_000 and table.view.fetched == 20
    table.page = 400_000
    assert _firsts(table)[0] == "7,999,980" and table.view.fetched == 20
    table.click_header("id")
    started = time.perf_counter()
    table.click_header("id")  # descending: sorted in DuckDB, one page fetched
    sort_s = time.perf_counter() - started
    assert _firsts(table)[0] == "9,999,999" and table.view.fetched == 20
    assert len(json.dumps(table.cells)) < 2_000  # the page payload
    table.set_filter("name", "R999999")
    assert table.total == 11
    assert result._rows is None  # the result's rows were never pulled into Python
    assert sort_s < 30, sort_s
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
