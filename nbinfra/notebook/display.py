"""Rich display of nbinfra's result types: HTML, markdown and plain text.

The renderers are plain functions over the value types; ``register(shell)`` attaches them
to IPython's formatters *by name* (``for_type_by_name``), so nothing is imported to attach
them and a type's module is only needed once a value of it is displayed. A
``QueryResult`` (and every subclass: DuckDB, Spark, the sql kind) draws itself through
``_repr_mimebundle_`` with ``query_bundle``; ``register`` only sets how many rows it shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nbinfra._secrets import redact
from nbinfra.notebook import tables
from nbinfra.notebook.tables import escape

__all__ = [
    "DEFAULT_LIMIT",
    "Table",
    "escape",
    "health_html",
    "health_text",
    "llm_markdown",
    "llm_text",
    "query_bundle",
    "query_html",
    "query_text",
    "register",
    "show",
    "stats_html",
    "stats_text",
    "summary",
    "unregister",
]

DEFAULT_LIMIT = 20

_limit: Callable[[], int] = lambda: DEFAULT_LIMIT  # noqa: E731 - replaced by register()


def _elapsed(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'s' if count != 1 else ''}"


def summary(result: Any, shown: int) -> str:
    """``5 rows x 2 columns · showing first 20 · 12.3 ms`` (with a multiplication sign)."""
    total = result.row_count
    parts = [f"{_plural(total, 'row')} \u00d7 {_plural(len(result.columns), 'column')}"]
    if shown < total:
        parts.append(f"showing first {shown:,}")
    if getattr(result, "truncated", False):
        parts.append("fetch stopped at the limit")
    parts.append(_elapsed(float(result.elapsed or 0.0)))
    return " \u00b7 ".join(parts)


def _head(result: Any, limit: int) -> list[Any]:
    head = getattr(result, "head", None)
    return list(head(limit)) if callable(head) else list(result.rows[:limit])


# -- QueryResult -------------------------------------------------------------------
def query_html(result: Any, limit: int | None = None) -> str:
    """The first ``limit`` rows as a themed HTML table, with the size and elapsed time."""
    rows = _head(result, _limit() if limit is None else limit)
    return tables.html(result.columns, rows, footer=summary(result, len(rows)))


def query_text(result: Any, limit: int | None = None) -> str:
    """The first ``limit`` rows as an aligned text table."""
    rows = _head(result, _limit() if limit is None else limit)
    return tables.text(result.columns, rows, footer=summary(result, len(rows)))


def query_bundle(result: Any) -> dict[str, str]:
    """``QueryResult._repr_mimebundle_``: the table in HTML and plain text."""
    rows = _head(result, _limit())
    foot = summary(result, len(rows))
    return {
        "text/html": tables.html(result.columns, rows, footer=foot),
        "text/plain": tables.text(result.columns, rows, footer=foot),
    }


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
    return tables.html(*_health_table(status))


def _health_table(status: Any) -> tuple[list[Any], list[tuple[Any, ...]]]:
    detail = status.error or ""
    if not getattr(status, "started", True):
        detail = "starts on first use"
    columns = ["", "kind", "target", "latency", "version", tables.Column("detail", wide=True)]
    row = (
        tables.mark(status.state),
        status.kind,
        redact(status.target),
        "" if status.latency is None else _elapsed(status.latency),
        redact(status.server_version or ""),
        redact(detail),
    )
    return columns, [row]


# -- cache stats ---------------------------------------------------------------------
def _stats_table(stats: Any) -> tuple[list[str | tables.Column], list[tuple[Any, ...]]]:
    """One row: the namespace, its counters, hit rate and latency percentiles, then what
    the backend reports of itself (``extra``: keys, evictions, breaker...)."""
    data = stats.as_dict() if hasattr(stats, "as_dict") else dict(vars(stats))
    rate = data.pop("hit_rate", None)
    cells: list[tuple[str | tables.Column, Any]] = [
        (name, data.pop(name, None)) for name in ("namespace", "backend", "hits", "misses")
    ]
    cells.append((tables.Column("hit rate", right=True), "-" if rate is None else f"{rate:.1%}"))
    cells += [(name, data.pop(name, None)) for name in ("sets", "deletes", "errors")]
    for name in ("p50", "p95", "p99"):
        ms = data.pop(f"{name}_ms", None)
        cells.append((tables.Column(name, right=True), "-" if ms is None else f"{ms:,.3f} ms"))
    cells += data.items()
    return [column for column, _ in cells], [tuple(value for _, value in cells)]


def stats_text(stats: Any) -> str:
    return tables.text(*_stats_table(stats))


def stats_html(stats: Any) -> str:
    return tables.html(*_stats_table(stats))


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
    global _limit
    _limit = lambda: DEFAULT_LIMIT  # noqa: E731
    formatters = shell.display_formatter.formatters
    for module, name, renders in _TYPES:
        for mime in renders:
            formatters[mime].deferred_printers.pop((module, name), None)
            for typ in list(formatters[mime].type_printers):
                if typ.__module__ == module and typ.__name__ == name:
                    formatters[mime].type_printers.pop(typ, None)


class Table:
    """A small listing (``%llm list``, ``%conn list``...) shown as HTML or aligned text."""

    def __init__(
        self,
        columns: Sequence[str | tables.Column],
        rows: list[tuple[Any, ...]],
        *,
        footer: str = "",
    ) -> None:
        self.header = list(columns)
        self.columns = [c.name if isinstance(c, tables.Column) else str(c) for c in columns]
        self.rows = rows
        self.footer = footer

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=False)) for row in self.rows]

    def _repr_html_(self) -> str:
        return tables.html(self.header, self.rows, footer=self.footer)

    def __repr__(self) -> str:
        return tables.text(self.header, self.rows, footer=self.footer, empty="(none)")
