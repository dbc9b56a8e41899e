"""Rich display of nbinfra's result types: HTML, markdown and plain text.

The renderers are plain functions over the value types; ``register(shell)`` attaches them
to IPython's formatters *by name* (``for_type_by_name``), so nothing is imported to attach
them and a type's module is only needed once a value of it is displayed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nbinfra._secrets import redact

__all__ = [
    "DEFAULT_LIMIT",
    "Table",
    "escape",
    "health_html",
    "health_text",
    "llm_markdown",
    "llm_text",
    "query_html",
    "query_text",
    "register",
    "show",
    "stats_html",
    "stats_text",
    "unregister",
]

DEFAULT_LIMIT = 10
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})
_MAX_CELL = 120  # characters shown per table cell; the full value stays in the result

_limit: Callable[[], int] = lambda: DEFAULT_LIMIT  # noqa: E731 - replaced by register()


def escape(text: str) -> str:
    """``html.escape`` without importing ``html`` (its entity table is slow to import)."""
    return text.translate(_ESCAPES)


def _cell(value: Any) -> str:
    text = redact("NULL" if value is None else str(value))
    if len(text) > _MAX_CELL:
        text = text[: _MAX_CELL - 1] + "…"
    return text


def _elapsed(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _summary(result: Any, shown: int) -> str:
    total = result.row_count
    parts = [f"{total:,} row{'s' if total != 1 else ''}"]
    if shown < len(result.rows):
        parts.append(f"showing first {shown:,}")
    if getattr(result, "truncated", False):
        parts.append("fetch stopped at the limit")
    parts.append(_elapsed(float(result.elapsed or 0.0)))
    return " · ".join(parts)


# -- QueryResult -------------------------------------------------------------------
def query_html(result: Any, limit: int | None = None) -> str:
    """The first ``limit`` rows as an HTML table, with row count and elapsed time."""
    limit = _limit() if limit is None else limit
    rows: Sequence[Sequence[Any]] = result.rows[:limit]
    head = "".join(f"<th>{escape(_cell(c))}</th>" for c in result.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    table = (
        f"<table class='nbinfra-result'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        if result.columns
        else ""
    )
    return f"<div>{table}<small>{escape(_summary(result, len(rows)))}</small></div>"


def query_text(result: Any, limit: int | None = None) -> str:
    """The first ``limit`` rows as an aligned text table."""
    limit = _limit() if limit is None else limit
    rows = [[_cell(v) for v in row] for row in result.rows[:limit]]
    header = [_cell(c) for c in result.columns]
    lines: list[str] = []
    if header:
        widths = [len(h) for h in header]
        for row in rows:
            for i, v in enumerate(row[: len(widths)]):
                widths[i] = max(widths[i], len(v))
        lines.append(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)))
        lines.append("-+-".join("-" * w for w in widths))
        lines.extend(
            " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) for row in rows
        )
    lines.append(_summary(result, len(rows)))
    return "\n".join(lines)


# -- LLMResponse -------------------------------------------------------------------
def llm_markdown(response: Any) -> str:
    from nbinfra.notebook.usage import footer_text

    return f"{response.content}\n\n<small>{escape(footer_text(response))}</small>"


def llm_text(response: Any) -> str:
    from nbinfra.notebook.usage import footer_text

    return f"{response.content}\n\n[{footer_text(response)}]"


# -- HealthStatus ------------------------------------------------------------------
def health_text(status: Any) -> str:
    return redact(str(status))


def health_html(status: Any) -> str:
    mark = "🟢" if status.ok else "🔴" if getattr(status, "started", True) else "⚪"
    latency = "" if status.latency is None else f" · {status.latency * 1000:.1f} ms"
    extra = ""
    if status.server_version:
        extra += f" · {escape(redact(status.server_version))}"
    if status.error:
        extra += f" · <code>{escape(redact(status.error))}</code>"
    if not getattr(status, "started", True):
        extra += " · not started (starts on first use)"
    return (
        f"<span>{mark} <b>{escape(status.kind)}</b> "
        f"{escape(redact(status.target))}{latency}{extra}</span>"
    )


# -- cache stats ---------------------------------------------------------------------
def _stat_items(stats: Any) -> list[tuple[str, str]]:
    data = stats.as_dict() if hasattr(stats, "as_dict") else dict(vars(stats))
    items = []
    for name, value in data.items():
        if value is None:
            continue
        if name == "hit_rate":
            items.append((name, f"{value:.1%}"))
        elif name.endswith("_ms") and isinstance(value, float):
            items.append((name, f"{value:.3f}"))
        else:
            items.append((name, redact(str(value))))
    return items


def stats_text(stats: Any) -> str:
    return redact(str(stats))


def stats_html(stats: Any) -> str:
    cells = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in _stat_items(stats)
    )
    return f"<table class='nbinfra-stats'>{cells}</table>"


def show(obj: Any, **kwargs: Any) -> Any:
    """``IPython.display.display`` (imported on use; it is untyped)."""
    from IPython import display as ipd

    fn: Any = ipd.display
    return fn(obj, **kwargs)


# -- registration ------------------------------------------------------------------
def _text(render: Callable[[Any], str]) -> Callable[[Any, Any, bool], None]:
    def pretty(obj: Any, p: Any, cycle: bool) -> None:
        p.text(render(obj))

    return pretty


_TYPES: list[tuple[str, str, dict[str, Callable[..., Any]]]] = [
    (
        "nbinfra.connections.types",
        "QueryResult",
        {"text/html": query_html, "text/plain": _text(query_text)},
    ),
    (
        "nbinfra.connections.types",
        "HealthStatus",
        {"text/html": health_html, "text/plain": _text(health_text)},
    ),
    (
        "nbinfra.llm.types",
        "LLMResponse",
        {"text/markdown": llm_markdown, "text/plain": _text(llm_text)},
    ),
    (
        "nbinfra.cache.stats",
        "CacheStats",
        {"text/html": stats_html, "text/plain": _text(stats_text)},
    ),
]


def register(shell: Any, limit: Callable[[], int] | None = None) -> None:
    """Attach the renderers to ``shell``'s formatters (no import of the types)."""
    global _limit
    if limit is not None:
        _limit = limit
    formatters = shell.display_formatter.formatters
    for module, name, renders in _TYPES:
        for mime, render in renders.items():
            formatters[mime].for_type_by_name(module, name, render)


def unregister(shell: Any) -> None:
    formatters = shell.display_formatter.formatters
    for module, name, renders in _TYPES:
        for mime in renders:
            formatters[mime].deferred_printers.pop((module, name), None)
            for typ in list(formatters[mime].type_printers):
                if typ.__module__ == module and typ.__name__ == name:
                    formatters[mime].type_printers.pop(typ, None)


class Table:
    """A small listing (``%llm list``, ``%conn list``...) shown as HTML or aligned text."""

    def __init__(self, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.columns = columns
        self.rows = rows

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=False)) for row in self.rows]

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{escape(_cell(c))}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in row) + "</tr>"
            for row in self.rows
        )
        return (
            f"<table class='nbinfra-table'><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )

    def __repr__(self) -> str:
        header = [_cell(c) for c in self.columns]
        rows = [[_cell(v) for v in row] for row in self.rows]
        widths = [
            max([len(h)] + [len(r[i]) for r in rows if i < len(r)]) for i, h in enumerate(header)
        ]
        lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=False))]
        lines.append("-+-".join("-" * w for w in widths))
        lines.extend(" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) for r in rows)
        if not rows:
            lines.append("(none)")
        return "\n".join(lines)
