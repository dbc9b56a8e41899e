"""Kernel-side ipywidgets (no frontend plugin): they work in JupyterLab, Notebook 7, VS Code.

``results_table`` pages and sorts in the kernel and sends only the visible page;
``provider_picker`` sets the default provider of ``%llm``; ``context_preview`` shows what a
chat keeps, drops or summarises under a strategy and token budget; ``health_panel``
checks every configured connection and cache. ipywidgets is imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nbinfra._secrets import redact
from nbinfra.notebook.display import escape

__all__ = ["results_table"]

_MAX_CELL = 120


def _w() -> Any:
    import ipywidgets

    return ipywidgets


def _cell(value: Any) -> str:
    text = redact("NULL" if value is None else str(value))
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(_cell(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# -- results_table -------------------------------------------------------------------
class _Rows:
    """Page/sort access over a QueryResult's rows or a pandas DataFrame."""

    def __init__(self, data: Any) -> None:
        self.df = None
        if hasattr(data, "columns") and hasattr(data, "rows"):
            self.columns = [str(c) for c in data.columns]
            self.rows: Sequence[Sequence[Any]] = data.rows
        elif hasattr(data, "iloc") and hasattr(data, "columns"):
            self.df = data
            self.columns = [str(c) for c in data.columns]
            self.rows = ()
        else:
            raise TypeError(
                f"results_table() takes a QueryResult or a pandas DataFrame, "
                f"not {type(data).__name__}."
            )
        self._order: list[int] | None = None
        self._sorted_df: Any = None

    def __len__(self) -> int:
        return len(self.df) if self.df is not None else len(self.rows)

    def sort(self, column: str | None, ascending: bool) -> None:
        self._order = None
        self._sorted_df = None
        if column is None:
            return
        idx = self.columns.index(column)
        if self.df is not None:
            self._sorted_df = self.df.sort_values(
                self.df.columns[idx], ascending=ascending, na_position="last", kind="stable"
            )
            return
        rows = self.rows
        try:
            order = sorted(
                range(len(rows)),
                key=lambda i: (rows[i][idx] is None, rows[i][idx]),
                reverse=not ascending,
            )
        except TypeError:  # mixed types in one column: order by text
            order = sorted(range(len(rows)), key=lambda i: str(rows[i][idx]), reverse=not ascending)
        self._order = order

    def page(self, start: int, stop: int) -> list[Sequence[Any]]:
        if self.df is not None:
            frame = self._sorted_df if self._sorted_df is not None else self.df
            return [tuple(r) for r in frame.iloc[start:stop].itertuples(index=False)]
        if self._order is not None:
            return [self.rows[i] for i in self._order[start:stop]]
        return list(self.rows[start:stop])


def results_table(result_or_df: Any, page_size: int = 20) -> Any:
    """A paged, sortable table; only the visible page is sent to the browser."""
    w = _w()
    data = _Rows(result_or_df)
    if page_size <= 0:
        raise ValueError("page_size must be at least 1.")
    total = len(data)
    pages = max(1, -(-total // page_size))

    body = w.HTML()
    info = w.HTML()
    prev_btn = w.Button(description="◀", layout=w.Layout(width="3em"))
    next_btn = w.Button(description="▶", layout=w.Layout(width="3em"))
    page = w.BoundedIntText(
        value=1, min=1, max=pages, description="page", layout=w.Layout(width="12em")
    )
    sort_by = w.Dropdown(
        options=[("(none)", None), *((c, c) for c in data.columns)], description="sort"
    )
    ascending = w.ToggleButton(value=True, description="ascending")

    def render(*_: Any) -> None:
        start = (page.value - 1) * page_size
        rows = data.page(start, start + page_size)
        body.value = _html_table(data.columns, rows)
        shown = f"{start + 1:,}-{start + len(rows):,}" if rows else "0"
        info.value = (
            f"<small>{total:,} rows · showing {shown} · page {page.value:,} of {pages:,}</small>"
        )
        prev_btn.disabled = page.value <= 1
        next_btn.disabled = page.value >= pages

    def resort(*_: Any) -> None:
        ascending.description = "ascending" if ascending.value else "descending"
        data.sort(sort_by.value, ascending.value)
        render()

    def step(delta: int) -> Callable[[Any], None]:
        def go(_: Any) -> None:
            page.value = min(pages, max(1, page.value + delta))

        return go

    prev_btn.on_click(step(-1))
    next_btn.on_click(step(1))
    page.observe(render, names="value")
    sort_by.observe(resort, names="value")
    ascending.observe(resort, names="value")
    render()
    box = w.VBox([w.HBox([prev_btn, page, next_btn, sort_by, ascending]), body, info])
    box.page = page
    box.sort_by = sort_by
    box.ascending = ascending
    box.table = body
    box.info = info
    box.next_button = next_btn
    box.prev_button = prev_btn
    return box
