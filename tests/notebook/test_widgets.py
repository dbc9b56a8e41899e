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


def test_results_table_sorts_rows_and_frames() -> None:
    result = QueryResult(["n", "s"], [(3, "c"), (1, "a"), (None, "z"), (2, "b")])
    table = nbinfra.widgets.results_table(result, page_size=2)
    assert table.table.value.index(">3</td>") < table.table.value.index(">1</td>")
    table.sort_by.value = "n"
    assert ">1</td>" in table.table.value and ">2</td>" in table.table.value
    table.ascending.value = False
    assert ">3</td>" in table.table.value and ">1</td>" not in table.table.value
    table.page.value = 2
    assert ">1</td>" in table.table.value  # None sorts last ascending, first descending

    import pandas as pd

    frame = pd.DataFrame({"n": [3, 1, 2], "s": list("cab")})
    ftable = nbinfra.widgets.results_table(frame, page_size=1)
    assert "3 rows" in ftable.info.value and ">c</td>" in ftable.table.value
    ftable.sort_by.value = "n"
    assert ">a</td>" in ftable.table.value
    ftable.page.value = 3
    assert ">c</td>" in ftable.table.value


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
