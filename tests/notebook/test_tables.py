"""One table style: themed HTML and aligned plain text, escaping, formatting, no emoji."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest

from nbinfra.connections.types import QueryResult
from nbinfra.notebook import tables
from nbinfra.notebook.display import Table
from tests.notebook.conftest import TestingShell

ROOT = Path(__file__).resolve().parents[2]
# Emoji blocks (pictographs, symbols and dingbats, flags, variation selector 16).
EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u3030\u303d\u3297\u3299\ufe0f\u200d]"
)


def test_values_are_escaped_in_cells_titles_and_headers() -> None:
    hostile = "<script>alert(1)</script>"
    out = tables.html([hostile, "b"], [(hostile, hostile * 20)])
    assert "<script>alert" not in out
    assert out.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # header, cell, title
    assert "title='&lt;script&gt;" in out


def test_numbers_right_aligned_with_separators_and_null_visible() -> None:
    out = tables.html(["n", "x", "s"], [(1234567, 3603.1, "a"), (None, 0.5, None)])
    assert "<td class='nbinfra-num'>1,234,567</td>" in out
    assert "<td class='nbinfra-num'>3,603.1</td>" in out
    assert "<th class=nbinfra-num>n</th>" in out and "<th>s</th>" in out
    assert out.count("<span class='nbinfra-null'>NULL</span>") == 2
    theme = ("--jp-layout-color0", "--jp-rendermime-table-row-background", "--jp-border-color2")
    for variable in theme:
        assert f"var({variable}" in out
    assert "position:sticky" in out and "nth-child(even)" in out
    assert "jp-RenderedHTMLCommon" in out


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1234567, "1,234,567"),
        (3603.1, "3,603.1"),
        (2.0, "2.0"),
        (0.123456789, "0.123457"),
        (1234567.891, "1,234,567.9"),
        (1e20, "1.0000e+20"),
        (float("nan"), "NaN"),
        (Decimal("1234.50"), "1,234.50"),
        (True, "True"),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (dt.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02 03:04:05"),
        (b"\x00\xff", "0x00ff"),
        (None, "NULL"),
    ],
)
def test_dtype_aware_formatting(value: object, shown: str) -> None:
    assert tables.cell_text(value) == shown


def test_plain_text_aligned_and_truncated_without_wrapping() -> None:
    long = "word " * 40
    out = tables.text(["id", "text"], [(5, long), (12345, "b")], footer="2 rows")
    lines = out.splitlines()
    assert lines[0].startswith("    id  text") and lines[1].startswith("------  ----")
    assert lines[2].startswith("     5  word word") and lines[2].endswith("\u2026")
    assert lines[3] == "12,345  b"
    assert max(len(line) for line in lines) <= 60
    assert lines[-1] == "2 rows"


def test_wide_columns_cut_at_a_word_and_show_the_first_sentence_in_text() -> None:
    error = (
        "could not connect to /var/run/postgresql/.s.PGSQL.5432: no such file. "
        + "Is the server running? " * 10
    )
    html = tables.html(["latency", tables.Column("error", wide=True)], [("3603.1 ms", error)])
    cell = re.search(r"<td class='nbinfra-wide' title='[^']*'>([^<]*)</td>", html)
    assert cell is not None
    assert cell.group(1).endswith("\u2026")
    assert cell.group(1)[:-1] in error and error[len(cell.group(1)) - 1] == " "
    assert "/var/run/postgresql/.s.PGSQL.5432" in cell.group(1)  # not cut mid-path
    assert "td{white-space:nowrap}" in html  # short columns never wrap
    text = tables.text(["latency", tables.Column("error", wide=True)], [("3603.1 ms", error)])
    assert text.splitlines()[2].endswith(
        "could not connect to /var/run/postgresql/.s.PGSQL.5432: no such file."
    )


def test_health_marks_are_text_not_emoji() -> None:
    for state in ("ok", "down", "not started", "checking"):
        mark = tables.mark(state)
        assert not EMOJI.search(mark.label)
    assert tables.mark("ok") == "ok" and tables.mark("ok").label == "\u25cf ok"
    out = tables.html(["", "name"], [(tables.mark("down"), "pg")])
    assert "<span class='nbinfra-down'>\u00d7 down</span>" in out


def test_no_emoji_in_sources_or_notebook_outputs() -> None:
    found = []
    paths = [*(ROOT / "nbinfra").rglob("*.py"), *(ROOT / "notebooks").glob("*.ipynb")]
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if EMOJI.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}")
    assert not found, found


def test_result_renders_as_a_table_and_repr_stays_one_line(_shell: TestingShell) -> None:
    result = QueryResult(["a", "b"], [(i, str(i)) for i in range(1_000_000)], elapsed=0.0123)
    assert "\n" not in repr(result)
    data, _ = _shell.display_formatter.format(result)  # no extension loaded
    assert data["text/html"].count("<tr>") == 21
    assert "1,000,000 rows \u00d7 2 columns · showing first 20 · 12.3 ms" in data["text/html"]
    plain = data["text/plain"].splitlines()
    assert plain[0].split() == ["a", "b"] and len(plain) == 2 + 20 + 1


def test_duckdb_result_displays_only_the_head(_shell: TestingShell) -> None:
    from nbinfra import _loop
    from nbinfra.connections.duckdb import DuckDBConnectionManager

    mgr = DuckDBConnectionManager()
    sql = "SELECT range AS n, 'x' || range AS s FROM range(500000)"
    result = _loop.run_sync(mgr.execute_query(sql))
    data, _ = _shell.display_formatter.format(result)
    assert "500,000 rows \u00d7 2 columns" in data["text/html"]
    assert "<td class='nbinfra-num'>19</td>" in data["text/html"]
    assert result._rows is None  # the display fetched 20 rows, not the result
    assert "\n" not in repr(result)
    _loop.run_sync(mgr.aclose())


def test_subclass_results_render_as_the_table_with_the_extension(ip: TestingShell) -> None:
    ip.run_line_magic("config", "NbinfraMagics.display_limit = 3")
    ip.cell("%%conn duckdb -o r\nSELECT range AS n FROM range(1000)")
    data, _ = ip.display_formatter.format(ip.user_ns["r"])
    plain = data["text/plain"].splitlines()
    assert plain[0].strip() == "n" and plain[2:5] == ["0", "1", "2"], plain
    assert plain[-1].startswith("1,000 rows \u00d7 1 column · showing first 3 · ")
    assert data["text/html"].count("<tr>") == 4


def test_listing_table_uses_the_style() -> None:
    table = Table(["a", "n"], [("<x>", 1500)])
    assert "&lt;x&gt;" in table._repr_html_() and "nbinfra-num'>1,500<" in table._repr_html_()
    assert repr(Table(["a"], [])).splitlines()[-1] == "(none)"
