"""One look for every nbinfra table: results, ``%conn list``, ``%llm list``/``usage``,
the context preview and health.

``html(columns, rows)`` draws with JupyterLab's theme variables (``--jp-layout-color*``,
``--jp-ui-font-color*``, ``--jp-border-color2``...), so light and dark themes both work;
``text(columns, rows)`` is the same table as aligned plain text (nbval, terminals, VS Code).
Values are formatted by type: numbers right-aligned with thousands separators, floats
to six significant digits, dates in ISO form, ``NULL`` shown dim. Every value is escaped.
Pure Python: importing this module imports no IPython, pandas or ipywidgets.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from numbers import Integral, Real
from typing import Any

from nbinfra._secrets import redact

__all__ = [
    "CSS",
    "Column",
    "Mark",
    "cell_text",
    "first_sentence",
    "html",
    "is_number",
    "mark",
    "numeric_columns",
    "shorten",
    "text",
]

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})
MAX_HTML = 120  # characters of a cell shown in HTML; the whole value is in its title
MAX_TITLE = 2000  # characters of the full value kept in a cut cell's title
MAX_TEXT = 48  # characters of a cell in plain text (wide columns: their first sentence)

CSS = """<style>
.nbinfra-tbl{font-family:var(--jp-content-font-family,inherit);
 font-size:var(--jp-content-font-size1,13px);color:var(--jp-ui-font-color1,inherit)}
.nbinfra-tbl .nbinfra-scroll{max-height:36em;overflow:auto}
.nbinfra-tbl table{border-collapse:collapse;border-spacing:0;margin:0;border:none}
.nbinfra-tbl table th,.nbinfra-tbl table td{padding:2px 10px;text-align:left;
 vertical-align:top;border:none;border-bottom:1px solid var(--jp-border-color2,#e0e0e0);
 line-height:1.4;max-width:none}
.nbinfra-tbl table thead th{position:sticky;top:0;z-index:1;font-weight:600;
 background:var(--jp-layout-color2,#eee);color:var(--jp-ui-font-color0,inherit);
 white-space:nowrap}
.nbinfra-tbl table tbody tr:nth-child(odd){background:var(--jp-layout-color0,transparent)}
.nbinfra-tbl table tbody tr:nth-child(even){
 background:var(--jp-rendermime-table-row-background,#f5f5f5)}
.nbinfra-tbl table tbody tr:hover{
 background:var(--jp-rendermime-table-row-hover-background,#e1f5fe)}
.nbinfra-tbl table td{white-space:nowrap}
.nbinfra-tbl table th.nbinfra-num,.nbinfra-tbl table td.nbinfra-num{text-align:right;
 font-variant-numeric:tabular-nums}
.nbinfra-tbl table td.nbinfra-wide{white-space:normal;min-width:16em;max-width:48em}
.nbinfra-tbl .nbinfra-null{color:var(--jp-ui-font-color3,#999);font-style:italic}
.nbinfra-tbl code,.nbinfra-tbl .nbinfra-code{font-family:var(--jp-code-font-family,monospace)}
.nbinfra-tbl .nbinfra-ok{color:var(--jp-success-color1,#388e3c)}
.nbinfra-tbl .nbinfra-down{color:var(--jp-error-color1,#d32f2f)}
.nbinfra-tbl .nbinfra-warn{color:var(--jp-warn-color1,#f57c00)}
.nbinfra-tbl .nbinfra-idle{color:var(--jp-ui-font-color2,#757575)}
.nbinfra-tbl .nbinfra-foot{color:var(--jp-ui-font-color2,#757575);
 font-size:var(--jp-ui-font-size0,11px);padding:3px 2px}
</style>""".replace("\n", "").replace(".nbinfra-tbl ", ".nbinfra-tbl.jp-RenderedHTMLCommon ")
# (both classes: more specific than JupyterLab's ":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon
# td {text-align: right}", so text cells stay left-aligned)


@dataclass(frozen=True)
class Column:
    """A column header; ``wide`` is prose (errors, message text): it may wrap in HTML, is
    cut at a word boundary there, and plain text shows its first sentence whole."""

    name: str
    wide: bool = False
    right: bool = False  # right-align text that reads as a number ("12.3 ms", "$0.01")


class Mark(str):
    """A state word (``"ok"``; it compares as that word) drawn with a text mark and coloured
    by a CSS class: ``● ok``. Never an emoji: the marks are in every common font."""

    symbol: str
    style: str  # ok, down, warn, idle

    def __new__(cls, symbol: str, word: str, style: str) -> Mark:
        self = super().__new__(cls, word)
        self.symbol = symbol
        self.style = style
        return self

    @property
    def label(self) -> str:
        return f"{self.symbol} {self}"


_MARKS = {
    "ok": Mark("\u25cf", "ok", "ok"),  # ●
    "down": Mark("\u00d7", "down", "down"),  # multiplication sign
    "not started": Mark("\u25cb", "not started", "idle"),  # ○
    "checking": Mark("\u25cc", "checking\u2026", "idle"),  # ◌ checking…
}


def mark(state: str) -> Mark:
    """The mark of a health state: ``ok``, ``down``, ``not started`` or ``checking``."""
    return _MARKS.get(state, Mark("\u00b7", state, "warn"))


def escape(value: str) -> str:
    """``html.escape`` without importing ``html`` (its entity table is slow to import)."""
    return value.translate(_ESCAPES)


def is_number(value: Any) -> bool:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return False
    return isinstance(value, Real | Decimal)


def _float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0.0"
    size = abs(value)
    if size >= 1e15 or size < 1e-6:
        return f"{value:.4e}"
    decimals = min(6, max(1, 5 - math.floor(math.log10(size))))
    out = f"{value:,.{decimals}f}".rstrip("0")
    return out + "0" if out.endswith(".") else out


def cell_text(value: Any) -> str:
    """One value as shown in a table (``NULL`` for None; secrets masked)."""
    if value is None:
        return "NULL"
    if isinstance(value, Mark):
        return value.label
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return str(bool(value))
    if isinstance(value, Integral):
        return f"{int(value):,}"
    if isinstance(value, Decimal):
        return f"{value:,}" if value.is_finite() else str(value)
    if isinstance(value, Real):
        return _float(float(value))
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return "0x" + data[:32].hex() + ("\u2026" if len(data) > 32 else "")
    return redact(str(value))


def shorten(value: str, width: int) -> str:
    """``value`` cut to ``width`` characters at a word boundary, with an ellipsis."""
    value = " ".join(value.split()) if "\n" in value or "\t" in value else value
    if len(value) <= width:
        return value
    cut = value[: width - 1]
    space = cut.rfind(" ")
    if space >= width // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "\u2026"


def first_sentence(value: str) -> str:
    """The first sentence (or line) of ``value``, whole."""
    line = value.strip().splitlines()[0] if value.strip() else ""
    at = line.find(". ")
    return line[: at + 1] if at > 0 else line


def _columns(columns: Sequence[str | Column]) -> list[Column]:
    return [c if isinstance(c, Column) else Column(str(c)) for c in columns]


def _numeric(rows: Sequence[Sequence[Any]], count: int, cols: Sequence[Column] = ()) -> list[bool]:
    numeric = [False] * count
    seen = [False] * count
    for row in rows:
        for i, value in enumerate(row[:count]):
            if value is None:
                continue
            if not seen[i]:
                seen[i] = numeric[i] = is_number(value)
            elif numeric[i] and not is_number(value):
                numeric[i] = False
    return [n or (i < len(cols) and cols[i].right) for i, n in enumerate(numeric)]


def numeric_columns(rows: Sequence[Sequence[Any]], count: int) -> list[bool]:
    """Which of the first ``count`` columns hold only numbers (NULLs aside): right-aligned."""
    return _numeric(rows, count)


def html(
    columns: Sequence[str | Column],
    rows: Sequence[Sequence[Any]],
    *,
    footer: str = "",
    caption: str = "",
) -> str:
    """The table as themed HTML (``<style>`` scoped to ``.nbinfra-tbl``)."""
    cols = _columns(columns)
    numeric = _numeric(rows, len(cols), cols)
    head = "".join(
        f"<th{' class=nbinfra-num' if numeric[i] else ''}>{escape(redact(c.name))}</th>"
        for i, c in enumerate(cols)
    )
    body = "".join(
        "<tr>"
        + "".join(
            _td(value, cols[i] if i < len(cols) else Column(""), i < len(cols) and numeric[i])
            for i, value in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    table = (
        f"<div class='nbinfra-scroll'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
        if cols
        else ""
    )
    top = f"<div class='nbinfra-foot'>{escape(caption)}</div>" if caption else ""
    foot = f"<div class='nbinfra-foot'>{escape(footer)}</div>" if footer else ""
    return f"<div class='nbinfra-tbl jp-RenderedHTMLCommon'>{CSS}{top}{table}{foot}</div>"


def _td(value: Any, column: Column, numeric: bool) -> str:
    if value is None:
        return "<td><span class='nbinfra-null'>NULL</span></td>"
    full = cell_text(value)
    shown = shorten(full, MAX_HTML)
    classes = []
    if numeric and (is_number(value) or column.right):
        classes.append("nbinfra-num")
    if column.wide:
        classes.append("nbinfra-wide")
    cls = f" class='{' '.join(classes)}'" if classes else ""
    title = f" title='{escape(shorten(full, MAX_TITLE))}'" if shown != full else ""
    inner = escape(shown)
    if isinstance(value, Mark):
        inner = f"<span class='nbinfra-{value.style}'>{inner}</span>"
    return f"<td{cls}{title}>{inner}</td>"


def text(
    columns: Sequence[str | Column],
    rows: Sequence[Sequence[Any]],
    *,
    footer: str = "",
    caption: str = "",
    empty: str = "",
) -> str:
    """The table as aligned plain text: one line per row, long cells cut with an ellipsis."""
    cols = _columns(columns)
    numeric = _numeric(rows, len(cols), cols)
    cells = [
        [_text_cell(v, cols[i].wide if i < len(cols) else False) for i, v in enumerate(row)]
        for row in rows
    ]
    header = [c.name for c in cols]
    widths = [
        max([len(h)] + [len(r[i]) for r in cells if i < len(r)]) for i, h in enumerate(header)
    ]

    def line(values: Sequence[str], right: Sequence[bool]) -> str:
        parts = [
            v.rjust(w) if right[i] else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=False))
        ]
        return "  ".join(parts).rstrip()

    lines = [caption] if caption else []
    if cols:
        lines.append(line(header, numeric))
        lines.append("  ".join("-" * w for w in widths))
        lines.extend(line(r, numeric) for r in cells)
    if not rows and empty:
        lines.append(empty)
    if footer:
        lines.append(footer)
    return "\n".join(lines)


def _text_cell(value: Any, wide: bool) -> str:
    full = cell_text(value)
    if wide:
        return first_sentence(full)
    return shorten(" ".join(full.split()), MAX_TEXT)
