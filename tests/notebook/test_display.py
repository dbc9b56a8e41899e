"""Renderers attached by name; outputs bounded whatever the result size."""

from __future__ import annotations

from nbinfra.connections.types import HealthStatus, QueryResult
from nbinfra.llm.types import LLMResponse, Usage
from nbinfra.notebook import display
from tests.notebook.conftest import TestingShell


def test_query_result_display_is_bounded(ip: TestingShell) -> None:
    ip.run_line_magic("config", "NbinfraMagics.display_limit = 5")
    result = QueryResult(["a", "b"], [(i, "x" * 500) for i in range(100_000)], elapsed=0.0123)
    data, _meta = ip.display_formatter.format(result)
    assert "100,000 rows \u00d7 2 columns · showing first 5 · 12.3 ms" in data["text/html"]
    assert data["text/html"].count("<tr>") == 6
    assert len(data["text/html"]) < 8_000
    assert "100,000 rows" in data["text/plain"]


def test_health_and_llm_response_display(ip: TestingShell) -> None:
    status = HealthStatus(
        ok=False, kind="postgres", target="postgresql://u:****@h/db", latency=0.002, error="refused"
    )
    data, _ = ip.display_formatter.format(status)
    assert "\u00d7 down" in data["text/html"] and "refused" in data["text/html"]
    assert "down" in data["text/plain"]
    resp = LLMResponse(
        "**hi**",
        model="m",
        provider="fake",
        usage=Usage(3, 4),
        latency=0.5,
        cost=0.001,
        cached=True,
    )
    data, _ = ip.display_formatter.format(resp)
    assert data["text/markdown"].startswith("**hi**")
    assert "3 in + 4 out tokens (exact)" in data["text/markdown"]
    assert "cache hit" in data["text/plain"]


def test_unregistered_after_unload(_shell: TestingShell) -> None:
    _shell.run_line_magic("load_ext", "nbinfra")
    _shell.run_line_magic("config", "NbinfraMagics.display_limit = 2")
    _shell.run_line_magic("unload_ext", "nbinfra")
    formatters = _shell.display_formatter.formatters
    deferred = formatters["text/html"].deferred_printers
    assert ("nbinfra.connections.types", "QueryResult") not in deferred
    # the result's own _repr_mimebundle_ remains, at the default limit again
    data, _ = _shell.display_formatter.format(QueryResult(["a"], [(i,) for i in range(30)]))
    assert data["text/html"].count("<tr>") == 1 + display.DEFAULT_LIMIT


def test_table_text_and_html() -> None:
    table = display.Table(["a", "b"], [(1, "<x>")])
    assert "&lt;x&gt;" in table._repr_html_()
    assert repr(table).splitlines()[0].split() == ["a", "b"]
