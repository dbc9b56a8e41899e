"""``results_table()``: one table whose header cells sort and whose second header row filters.

The kernel side of an anywidget (``results_table.js`` is its front end): ``ResultView``
sorts, filters, counts and exports in DuckDB, and only the shown page goes to the browser
(``cells``: each value as ``tables.cell_text`` writes it, ``None`` for NULL). The browser
sends sort, filters, page and rows per page back as traits; "Copy page" writes the page as
TSV to the clipboard there; a download is written here (``ResultView.export``) and its
bytes sent to the browser in parts, which saves it from a Blob. anywidget and ipywidgets
are imported when this module is, and only ``results_table()`` imports it.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from nbinfra.connections.settings import one_line
from nbinfra.notebook import tables
from nbinfra.notebook.result_view import ResultView

__all__ = ["MAX_SEND", "PAGE_SIZES", "ResultsTable", "page_tsv"]

PAGE_SIZES = (10, 20, 50, 100)
MAX_SEND = 512 * 1024 * 1024  # a larger download stays on disk, named in the message
CHUNK = 4 * 1024 * 1024  # bytes of a download in one comm message
_HERE = Path(__file__).parent
_MIME = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def _css() -> str:
    own = tables.CSS.removeprefix("<style>").removesuffix("</style>")
    return own + "\n" + (_HERE / "results_table.css").read_text()


def _clean(value: str | None) -> str:
    return (
        "NULL" if value is None else value.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    )


def page_tsv(columns: Sequence[str], cells: Sequence[Sequence[str | None]]) -> str:
    """The page as the browser copies it: a header line, then one line per row, tab-separated
    (tabs and line breaks inside a value become spaces, NULL as ``NULL``)."""
    lines = ["\t".join(_clean(c) for c in columns)]
    lines += ["\t".join(_clean(v) for v in row) for row in cells]
    return "\n".join(lines)


def _one_line(exc: BaseException) -> str:
    return one_line(str(exc)) or type(exc).__name__


def _cell(value: Any) -> str | None:
    return None if value is None else tables.shorten(tables.cell_text(value), tables.MAX_TITLE)


class ResultsTable(anywidget.AnyWidget):
    """A paged, sortable, filterable view of a result; see ``results_table()``."""

    _esm = _HERE / "results_table.js"
    _css = _css()

    columns = traitlets.List(traitlets.Unicode()).tag(sync=True)
    numeric = traitlets.List(traitlets.Bool()).tag(sync=True)  # right-aligned columns
    # the shown page: rows of str | None (NULL)
    cells: traitlets.List[list[str | None]] = traitlets.List().tag(sync=True)
    sort = traitlets.List(traitlets.Unicode()).tag(sync=True)  # [] or [column, asc|desc]
    filters = traitlets.Dict(value_trait=traitlets.Unicode()).tag(sync=True)
    page = traitlets.Int(1).tag(sync=True)  # 1-based
    page_size = traitlets.Int(20).tag(sync=True)
    page_sizes = traitlets.List(traitlets.Int()).tag(sync=True)
    pages = traitlets.Int(1).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    info = traitlets.Unicode().tag(sync=True)  # "1,000 rows · showing 1-20 · page 1 of 50"
    message = traitlets.Unicode().tag(sync=True)  # one line: a filter it cannot read...

    def __init__(
        self, view: ResultView, page_size: int, download_dir: str | Path, **kwargs: Any
    ) -> None:
        self._ready = False
        super().__init__(
            columns=view.columns,
            page_sizes=sorted({*PAGE_SIZES, page_size}),
            page_size=page_size,
            **kwargs,
        )
        self.view = view
        self.download_dir = Path(download_dir)
        self.last_download: Path | None = None
        self._exports = 0
        self.on_msg(self._on_message)
        self._ready = True
        self._reshape()

    def __repr__(self) -> str:  # the text a notebook keeps beside the widget: no address
        return f"ResultsTable({self.total:,} rows, {len(self.columns)} columns)"

    # -- what the browser changes --------------------------------------------------
    @traitlets.validate("sort")
    def _valid_sort(self, proposal: Any) -> list[str]:
        sort = list(proposal["value"])
        known = len(sort) == 2 and sort[0] in self.columns and sort[1] in ("asc", "desc")
        if sort and not known:
            raise traitlets.TraitError(f"sort is [] or [column, 'asc'|'desc'], not {sort!r}.")
        return sort

    @traitlets.validate("page_size")
    def _valid_page_size(self, proposal: Any) -> int:
        size = int(proposal["value"])
        if size <= 0:
            raise traitlets.TraitError("page_size must be at least 1.")
        return size

    @traitlets.observe("sort", "filters", "page_size")
    def _changed(self, _: Any) -> None:
        if self._ready:
            self._reshape()

    @traitlets.observe("page")
    def _page_changed(self, change: Any) -> None:
        if not self._ready:
            return
        wanted = min(max(1, change["new"]), self.pages)
        if wanted != change["new"]:
            self.page = wanted  # observed again: renders
        else:
            self._render()

    def _reshape(self) -> None:
        """Sort and filters to the engine, back on page 1."""
        wanted = {c: v for c, v in self.filters.items() if v.strip()}
        sort = (self.sort[0], self.sort[1] == "asc") if self.sort else None
        try:
            self.view.set(sort=sort, filters=wanted)
            self.pages = max(1, -(-len(self.view) // self.page_size))
        except Exception as exc:  # noqa: BLE001 - one line in the widget, not a traceback
            self.message = _one_line(exc)
            return
        if self.page != 1:
            self.page = 1  # renders
        else:
            self._render()

    def _render(self) -> None:
        start = (self.page - 1) * self.page_size
        try:
            total = len(self.view)
            rows = self.view.page(start, start + self.page_size)
        except Exception as exc:  # noqa: BLE001 - one line in the widget
            self.message = _one_line(exc)
            return
        shown = f"{start + 1:,}-{start + len(rows):,}" if rows else "0"
        with self.hold_sync():
            self.message = ""
            self.total = total
            self.pages = max(1, -(-total // self.page_size))
            self.numeric = tables.numeric_columns(rows, len(self.columns))
            self.cells = [[_cell(v) for v in row] for row in rows]
            self.info = (
                f"{total:,} rows \u00b7 showing {shown} \u00b7 page {self.page:,} of {self.pages:,}"
            )

    # -- the same actions from Python ------------------------------------------------
    def click_header(self, name: str) -> None:
        """What a click on ``name``'s header does: ascending, descending, unsorted."""
        if not self.sort or self.sort[0] != name:
            self.sort = [name, "asc"]
        elif self.sort[1] == "asc":
            self.sort = [name, "desc"]
        else:
            self.sort = []

    def set_filter(self, name: str, text: str) -> None:
        """What typing ``text`` into ``name``'s filter box does ('' clears it)."""
        if name not in self.columns:
            raise KeyError(f"No column {name!r}; the columns are {self.columns}.")
        filters = {k: v for k, v in self.filters.items() if k != name}
        if text.strip():
            filters[name] = text
        self.filters = filters

    def next_page(self) -> None:
        self.page = min(self.pages, self.page + 1)

    def prev_page(self) -> None:
        self.page = max(1, self.page - 1)

    def copy_page(self) -> str:
        """The TSV "Copy page" puts on the clipboard."""
        return page_tsv(self.columns, self.cells)

    def download(self, fmt: str, request: str = "") -> Path:
        """Write the whole sorted, filtered result as ``csv`` or ``parquet`` under
        ``download_dir`` and send its bytes to the browser, which saves the file."""
        self._exports += 1
        target = self.download_dir / f"result-{self._exports}.{fmt}"
        self.view.export(target, fmt)
        self.last_download = target
        size = target.stat().st_size
        if size > MAX_SEND:
            self.message = (
                f"{target.as_posix()} is {size / 2**20:,.0f} MB, too big to send to the "
                "browser: it is written in the kernel's folder."
            )
            self.send({"kind": "error", "request": request, "text": self.message})
            return target
        parts = max(1, -(-size // CHUNK))
        mime = _MIME.get(fmt) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        head = {"kind": "file", "request": request, "name": target.name, "size": size}
        with target.open("rb") as handle:
            for part in range(parts):
                chunk = handle.read(CHUNK)
                self.send({**head, "mime": mime, "part": part, "parts": parts}, buffers=[chunk])
        return target

    def _on_message(self, _: Any, content: Any, buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("kind") != "download":
            return
        request = str(content.get("request", ""))
        try:
            self.download(str(content.get("format", "csv")), request)
        except Exception as exc:  # noqa: BLE001 - one line in the widget
            self.message = _one_line(exc)
            self.send({"kind": "error", "request": request, "text": self.message})


def results_table(result_or_df: Any, page_size: int = 20, *, download_dir: str | Path) -> Any:
    if page_size <= 0:
        raise ValueError("page_size must be at least 1.")
    return ResultsTable(ResultView(result_or_df), page_size, download_dir)
