"""The demo notebooks in a real browser: JupyterLab + headless Chromium, driven by Playwright.

JupyterLab serves a copy of notebooks/ (running cells never rewrites the committed ones).
For 05 and 03 the test runs all cells, then uses the widgets like a person would: picks a
provider, moves the context budget slider, pages the results table. Screenshots go to
test-artifacts/. Needs Debian's chromium (.ci/run installs it); Playwright's own browser
download is not used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbinfra.testing import free_port, service_unavailable

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
FAILED = r"/Traceback|\w+Error: /"  # a JS regex literal; stderr also carries notices
RUN_ALL_TIMEOUT = 420_000  # ms; 03 starts an embedded PostgreSQL in a fresh folder


def _chromium() -> str:
    found = ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
    for candidate in found:
        if candidate and os.path.exists(candidate):
            return candidate
    service_unavailable("chromium", "install Debian's chromium (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab on 127.0.0.1 with a token, serving a copy of notebooks/; yields its URL."""
    pytest.importorskip("jupyterlab")
    base = tmp_path_factory.mktemp("lab")
    work = base / "notebooks"
    shutil.copytree(ROOT / "notebooks", work, ignore=shutil.ignore_patterns(".nbinfra", ".*"))
    for path in work.glob("*.ipynb"):  # outputs cleared, so "[n]" prompts mean this run
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        nb["metadata"].pop("widgets", None)
        path.write_text(json.dumps(nb))
    # Lab settings of our own: no news/update popup, nothing from the user's settings.
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # Every cell rendered (no windowing), so widgets below the fold are in the page.
    tracker = base / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        JUPYTERLAB_SETTINGS_DIR=str(base / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTER_PREFER_ENV_PATH="1",  # this environment's kernel, not a user-wide one
    )
    log = (base / "lab.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter", "lab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
            "--LabApp.news_url=", "--ServerApp.port_retries=0", "--allow-root",
        ],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = (base / "lab.log").read_text()[-3000:]
                    pytest.fail(f"JupyterLab did not start:\n{tail}")
                time.sleep(0.5)
        yield f"{url}|{token}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _open(browser: Any, lab: str, notebook: str) -> Any:
    url, token = lab.split("|")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    # a workspace of its own, so no other notebook is restored beside this one
    workspace = notebook.split(".")[0].replace("_", "-")
    page.goto(f"{url}/lab/workspaces/{workspace}/tree/{notebook}?token={token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
    # a notebook without outputs may ask which kernel to start: the one it names
    select = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    with contextlib.suppress(Exception):
        select.wait_for(timeout=15_000)
        select.click()
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    _dismiss_toasts(page)
    return page


def _dismiss_toasts(page: Any) -> None:
    for button in page.locator(".jp-toast-button, .Toastify__close-button").all():
        # a toast that went away by itself is fine
        with contextlib.suppress(Exception):
            button.click(timeout=2_000)


def _run_all(page: Any, name: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    # every cell has run (no "[*]" or "[ ]" prompt left), or one failed (Run All stops there)
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                .map(p => p.textContent);
            if (prompts.length === 0 || prompts.some(t => t.includes('*'))) return false;
            if (prompts.every(t => /\\[\\d+\\]/.test(t))) return true;
            return [...document.querySelectorAll(ERR)].some(e => FAILED.test(e.textContent));
        }""".replace("ERR", json.dumps(STDERR)).replace("FAILED", FAILED),
        timeout=RUN_ALL_TIMEOUT,
    )
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    texts = page.locator(STDERR).all_inner_texts()
    failures = [t for t in texts if re.search(FAILED.strip("/"), t)]
    assert not failures, f"{name}: a cell failed: {failures[0][-800:]}"
    _dismiss_toasts(page)


def _shot(page: Any, name: str, element: Any = None) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (element or page).screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _widget(page: Any, text: str) -> Any:
    """The rendered widget box (a VBox) holding a control whose description is ``text``."""
    label = page.locator(".widget-vbox .widget-label", has_text=re.compile(f"^{text}$")).first
    label.wait_for(state="attached")
    label.scroll_into_view_if_needed()
    return label.locator("xpath=ancestor::div[contains(@class,'widget-vbox')][1]")


@pytest.mark.timeout(900)
def test_llm_notebook_widgets(lab: str, browser: Any) -> None:
    page = _open(browser, lab, "05_llm_and_context.ipynb")
    try:
        _run_all(page, "05_llm_and_context")

        # provider picker: choose openai, %llm's default follows
        picker = _widget(page, "provider")
        picker.scroll_into_view_if_needed()
        select = picker.locator(".widget-dropdown", has_text="provider").locator("select")
        options = select.locator("option").all_inner_texts()
        label = next(o for o in options if o.startswith("openai"))
        select.select_option(label=label)
        expect_status = picker.locator(".widget-html", has_text="%llm now uses")
        page.wait_for_function(
            "el => el.textContent.includes('openai:gpt-4o-mini')",
            arg=expect_status.element_handle(),
        )
        _shot(page, "05-provider-picker", picker)

        # context preview: a smaller budget keeps fewer messages
        preview = _widget(page, "budget")
        preview.scroll_into_view_if_needed()
        summary = preview.locator(".widget-html", has_text=re.compile(r"kept \d+, dropped"))
        before = summary.inner_text()
        _shot(page, "05-context-preview-before", preview)
        # type a budget into the slider's readout, as a person would
        readout = preview.locator(".widget-slider .widget-readout").first
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("60")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "([el, old]) => el.textContent !== old", arg=[summary.element_handle(), before]
        )
        after = summary.inner_text()
        kept = lambda text: int(re.search(r"kept (\d+)", text).group(1))  # noqa: E731
        dropped = lambda text: int(re.search(r"dropped (\d+)", text).group(1))  # noqa: E731
        assert kept(after) < kept(before) and dropped(after) > dropped(before), (before, after)
        _shot(page, "05-context-preview-after", preview)
        _shot(page, "05-notebook")
    except Exception:
        _shot(page, f"{page.url.rsplit('/', 1)[-1].split('?')[0]}-failure")
        raise
    finally:
        page.close()


_RESULTS = ".jp-OutputArea-output .nbinfra-results"

_LAYOUT = """el => {
    const box = node => node.getBoundingClientRect();
    const heads = [...el.querySelectorAll('thead tr.nbinfra-heads th')];
    const filters = [...el.querySelectorAll('thead tr.nbinfra-filters th')];
    const cells = [...el.querySelectorAll('tbody tr:first-child td')];
    const edges = nodes => nodes.map(n => [Math.round(box(n).left), Math.round(box(n).right)]);
    return {
        rows: el.querySelectorAll('thead tr').length,
        heads: edges(heads),
        filters: edges(filters),
        cells: edges(cells),
        inputs: filters.map(th => th.querySelectorAll('input').length),
        sticky: [...heads, ...filters].map(th => getComputedStyle(th).position),
        filterTop: parseFloat(getComputedStyle(filters[0]).top),
        headHeight: box(el.querySelector('thead tr')).height,
    };
}"""


def _column(table: Any, n: int) -> list[str]:
    return table.locator(f"tbody tr td:nth-child({n})").all_inner_texts()


def _until(page: Any, table: Any, script: str, arg: Any = None) -> None:
    """Wait until ``script`` (a JS function of the table's root element and ``arg``) holds."""
    page.wait_for_function(f"([el, arg]) => ({script})(el, arg)", arg=[table.element_handle(), arg])


_INFO_HAS = "(el, text) => el.querySelector('.nbinfra-info').textContent.includes(text)"
_COLUMN_IS = (
    "(el, [n, values]) => JSON.stringify([...el.querySelectorAll(`tbody tr td:nth-child(${n})`)]"
    ".map(td => td.textContent).slice(0, values.length)) === JSON.stringify(values)"
)
_EVERY = (
    "(el, [n, value]) => { const tds = [...el.querySelectorAll(`tbody tr td:nth-child(${n})`)];"
    " return tds.length > 0 && tds.every(td => td.textContent === value); }"
)


@pytest.mark.timeout(900)
def test_connections_notebook_results_table(lab: str, browser: Any, tmp_path: Path) -> None:
    page = _open(browser, lab, "03_connections.ipynb")
    url = lab.split("|")[0]
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    try:
        _run_all(page, "03_connections")
        table = page.locator(_RESULTS).first
        table.wait_for()
        table.scroll_into_view_if_needed()
        info = table.locator(".nbinfra-info")
        assert "1,000,000 rows" in info.inner_text()
        assert "page 1 of 100,000" in info.inner_text()
        assert _column(table, 1)[:2] == ["0", "1"]
        _shot(page, "03-results-table-page1", table)

        # one table: the sort row and the filter row are its <thead>, aligned with its columns
        layout = table.evaluate(_LAYOUT)
        assert layout["rows"] == 2 and layout["inputs"] == [1, 1, 1], layout
        assert layout["heads"] == layout["filters"] == layout["cells"], layout
        assert set(layout["sticky"]) == {"sticky"}, layout
        assert layout["filterTop"] == pytest.approx(layout["headHeight"], abs=1), layout
        style = table.locator("table").evaluate(_TABLE_STYLE)
        assert style["numeric"] == "right" and style["numericHead"] == "right", style
        assert style["text"] == "left" and style["head"] == "sticky", style
        assert style["odd"] != style["even"], style

        table.locator("button.nbinfra-next").click()
        _until(page, table, _INFO_HAS, "page 2 of")
        assert _column(table, 1)[:2] == ["10", "11"]

        # the header cell is the sort control: ascending, descending, unsorted
        score = table.locator("thead th.nbinfra-sort", has_text="score")
        score.click()
        _until(page, table, _INFO_HAS, "page 1 of")
        _until(page, table, _EVERY, [3, "0"])
        assert score.inner_text().strip() == "score \u25b2"
        assert score.get_attribute("aria-sort") == "ascending"
        score.click()
        _until(page, table, _EVERY, [3, "999"])
        assert score.inner_text().strip() == "score \u25bc"
        _shot(page, "03-results-table-sorted", table)
        score.click()
        _until(page, table, _COLUMN_IS, [1, ["0", "1", "2"]])
        assert score.inner_text().strip() == "score"
        assert score.get_attribute("aria-sort") == "none"

        # rows per page
        table.locator("select.nbinfra-per-page").select_option("50")
        _until(page, table, _INFO_HAS, "page 1 of 20,000")
        assert len(_column(table, 1)) == 50

        # the name filter in the header narrows the rows in the engine
        name_filter = table.locator("thead input[data-column='name']")
        name_filter.click()
        page.keyboard.type("ITEM-99999")  # keystrokes, as a person types (no notebook shortcut)
        _until(page, table, _INFO_HAS, "11 rows")
        names = _column(table, 2)
        assert len(names) == 11 and all("item-99999" in n for n in names), names
        _shot(page, "03-results-table-filtered", table)

        # Copy page: the page as TSV on the clipboard
        table.locator("button.nbinfra-copy").click()
        _until(page, table, "el => el.querySelector('.nbinfra-status').textContent !== ''")
        assert table.locator(".nbinfra-status").inner_text() == "copied 11 rows"
        copied = page.evaluate("() => navigator.clipboard.readText()").split("\n")
        assert copied[0] == "id\tname\tscore" and len(copied) == 12, copied
        shown = table.locator("tbody tr").all()
        assert [line.split("\t") for line in copied[1:]] == [
            r.locator("td").all_inner_texts() for r in shown
        ]

        # downloads of the whole filtered result: the browser saves the file
        with page.expect_download() as got:
            table.locator("button.nbinfra-csv").click()
        saved = tmp_path / got.value.suggested_filename
        got.value.save_as(saved)
        lines = saved.read_text().splitlines()
        assert saved.suffix == ".csv" and lines[0] == "id,name,score" and len(lines) == 12, lines
        assert all(",item-99999" in line for line in lines[1:]), lines
        link = table.locator("a.nbinfra-download")
        assert link.inner_text().startswith(saved.name)
        with page.expect_download() as again:  # the link saves it again
            link.click()
        assert again.value.suggested_filename == saved.name
        with page.expect_download() as got:
            table.locator("button.nbinfra-parquet").click()
        parquet = tmp_path / got.value.suggested_filename
        got.value.save_as(parquet)
        duckdb = pytest.importorskip("duckdb")
        count = duckdb.sql(f"SELECT count(*), min(name) FROM '{parquet}'").fetchall()
        assert count == [(11, "item-99999")], count
        _shot(page, "03-results-table-downloaded", table)
        _shot(page, "03-notebook")
    except Exception:
        _shot(page, f"{page.url.rsplit('/', 1)[-1].split('?')[0]}-failure")
        raise
    finally:
        page.close()


def _new_notebook(lab: str, name: str, sources: list[str]) -> None:
    """A notebook with these code cells, written through the server's contents API."""
    url, token = lab.split("|")
    cells = [
        {"cell_type": "code", "source": s, "metadata": {}, "outputs": [], "execution_count": None}
        for s in sources
    ]
    body = {
        "type": "notebook",
        "format": "json",
        "content": {
            "cells": cells,
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        },
    }
    request = urllib.request.Request(
        f"{url}/api/contents/{name}?token={token}",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30):
        pass


def _tab_complete(
    page: Any, editor: Any, match: str, expected: str, *, menu_shot: str | None = None
) -> list[str]:
    """Press Tab in ``editor`` and take the completion ``match``: JupyterLab 4 inserts a lone
    match, or shows it in a menu (then it must be the menu's only item, chosen with Enter).
    Waits until the editor holds ``expected``; the menu items' type labels (none inline)."""
    page.keyboard.press("Tab")
    page.wait_for_function(
        "([el, text, sel]) => el.textContent.includes(text) || document.querySelector(sel)",
        arg=[editor.element_handle(), match, ".jp-Completer-item"],
        timeout=30_000,
    )
    types: list[str] = []
    if page.locator(".jp-Completer-item").count():
        labels = page.locator(".jp-Completer-item .jp-Completer-match").all_inner_texts()
        types = page.locator(".jp-Completer-item .jp-Completer-type").all_inner_texts()
        if menu_shot:
            _shot(page, menu_shot)
        assert labels == [match], labels
        page.keyboard.press("Enter")
    page.wait_for_function(
        "([el, text]) => el.textContent.includes(text)", arg=[editor.element_handle(), expected]
    )
    return types


@pytest.mark.timeout(300)
def test_tab_completes_a_connection_name(lab: str, browser: Any) -> None:
    _new_notebook(lab, "tab_completion.ipynb", ["%load_ext nbinfra", ""])
    page = _open(browser, lab, "tab_completion.ipynb")
    try:
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        cells.nth(0).locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")  # runs %load_ext, moves to the second cell
        page.wait_for_function(
            "el => /\\[1\\]/.test(el.textContent)",
            arg=cells.nth(0).locator(".jp-InputPrompt").element_handle(),
        )
        editor = cells.nth(1).locator(".cm-content")
        editor.click()
        page.keyboard.type("%conn d")
        types = _tab_complete(
            page, editor, "duckdb", "%conn duckdb", menu_shot="tab-completion-menu"
        )
        assert not any("unknown" in t for t in types), types
        assert editor.inner_text().strip() == "%conn duckdb"
        _shot(page, "tab-completion")
    except Exception:
        _shot(page, "tab-completion-failure")
        raise
    finally:
        page.close()


def test_tab_in_a_conn_cell_offers_a_column(lab: str, browser: Any) -> None:
    setup = "%%conn duckdb\nCREATE TABLE orders (order_id INT, amount_total DOUBLE)"
    _new_notebook(lab, "tab_columns.ipynb", ["%load_ext nbinfra", setup, ""])
    page = _open(browser, lab, "tab_columns.ipynb")
    try:
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        cells.nth(0).locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        page.keyboard.press("Shift+Enter")  # the CREATE TABLE cell, then the empty one
        page.wait_for_function(
            "el => /\\[2\\]/.test(el.textContent)",
            arg=cells.nth(1).locator(".jp-InputPrompt").element_handle(),
        )
        editor = cells.nth(2).locator(".cm-content")
        editor.click()
        page.keyboard.type("%%conn duckdb")
        page.keyboard.press("Enter")
        page.keyboard.type("SELECT amount_t")
        _tab_complete(page, editor, "amount_total", "SELECT amount_total")
        _shot(page, "tab-completion-column")
    except Exception:
        _shot(page, "tab-completion-column-failure")
        raise
    finally:
        page.close()


def test_a_plot_computed_in_the_engine_renders_as_an_image(lab: str, browser: Any) -> None:
    plot = "%%conn duckdb --plot hist x\nSELECT sqrt(range) AS x FROM range(100000)"
    _new_notebook(lab, "plot_image.ipynb", ["%load_ext nbinfra", plot])
    page = _open(browser, lab, "plot_image.ipynb")
    try:
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        cells.nth(0).locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        page.keyboard.press("Shift+Enter")
        image = cells.nth(1).locator(".jp-OutputArea-output img")
        image.wait_for(timeout=60_000)
        loaded = "el => el.complete && el.naturalWidth > 0"
        page.wait_for_function(loaded, arg=image.element_handle())
        assert image.get_attribute("src", timeout=5_000).startswith("data:image/png")
        assert not cells.nth(1).locator(".jp-OutputArea-output[data-mime-type*=error]").count()
        _shot(page, "plot-hist", cells.nth(1))
    except Exception:
        _shot(page, "plot-hist-failure")
        raise
    finally:
        page.close()


@pytest.mark.timeout(300)
def test_interrupting_a_long_duckdb_query(lab: str, browser: Any) -> None:
    long_query = "%conn duckdb SELECT sum(hash(range)) FROM range(10000000000)"
    _new_notebook(
        lab, "interrupt.ipynb", ["%load_ext nbinfra", long_query, "print('next cell ran')"]
    )
    page = _open(browser, lab, "interrupt.ipynb")
    try:
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        cells.nth(0).locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")  # %load_ext, then on to the query
        page.wait_for_function(
            "el => /\\[1\\]/.test(el.textContent)",
            arg=cells.nth(0).locator(".jp-InputPrompt").element_handle(),
        )
        page.keyboard.press("Shift+Enter")  # the long query starts
        page.wait_for_function(
            "el => el.textContent.includes('*')",
            arg=cells.nth(1).locator(".jp-InputPrompt").element_handle(),
        )
        page.wait_for_timeout(3_000)  # minutes of work: well under way, progress shown
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Kernel$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Interrupt Kernel$")).click()
        output = cells.nth(1).locator(".jp-OutputArea")
        page.wait_for_function(
            "el => el.textContent.includes('Interrupted: the query was cancelled in DuckDB')",
            arg=output.element_handle(),
            timeout=60_000,
        )
        text = output.inner_text()
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
        assert text.strip().endswith("Interrupted: the query was cancelled in DuckDB"), text
        _shot(page, "interrupt-duckdb")

        cells.nth(2).locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        page.wait_for_function(
            "el => el.textContent.includes('next cell ran')",
            arg=cells.nth(2).locator(".jp-OutputArea").element_handle(),
            timeout=60_000,
        )
        assert "IOPub message rate exceeded" not in page.locator("body").inner_text()
    except Exception:
        _shot(page, "interrupt-duckdb-failure")
        raise
    finally:
        page.close()


_TABLE_STYLE = """el => {
    const rows = [...el.querySelectorAll('tbody tr')];
    const style = node => getComputedStyle(node);
    return {
        numeric: style(rows[0].children[0]).textAlign,
        text: style(rows[0].children[1]).textAlign,
        numericHead: style(el.querySelector('thead th')).textAlign,
        head: style(el.querySelector('thead th')).position,
        wrap: style(rows[0].children[1]).whiteSpace,
        odd: style(rows[0]).backgroundColor,
        even: style(rows[1]).backgroundColor,
        color: style(rows[0].children[1]).color,
        cells: rows[0].innerText,
    };
}"""


def _theme(page: Any, name: str, light: bool) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Settings$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{name}$")).click()
    page.wait_for_function(
        "light => document.body.dataset.jpThemeLight === String(light)", arg=light
    )
    page.wait_for_timeout(500)  # the theme's stylesheet applied


@pytest.mark.timeout(300)
def test_result_table_style_in_light_and_dark(lab: str, browser: Any) -> None:
    query = (
        "%%conn duckdb\nSELECT range * 1000 AS n, 'item-' || range AS name, "
        "range * 1.5 AS price FROM range(6)"
    )
    widget = "nbinfra.widgets.results_table(_conn, page_size=10)"
    odd = "odd = %conn duckdb SELECT NULL::INT AS n, repeat('word ', 60) AS note\nodd.rows"
    cells = ["%load_ext nbinfra", query, widget, odd, "nbinfra.widgets.results_table(odd)"]
    _new_notebook(lab, "table_style.ipynb", cells)
    page = _open(browser, lab, "table_style.ipynb")
    try:
        _run_all(page, "table_style")
        table = page.locator(".jp-OutputArea-output .nbinfra-tbl table").first
        table.wait_for()
        table.scroll_into_view_if_needed()
        light = table.evaluate(_TABLE_STYLE)
        assert light["numeric"] == "right" and light["numericHead"] == "right", light
        assert light["text"] == "left" and light["wrap"] == "nowrap", light
        assert light["head"] == "sticky", light
        assert light["odd"] != light["even"], light  # zebra rows
        assert "1,000" in page.locator(".nbinfra-tbl tbody tr").nth(1).inner_text()
        footer = page.locator(".nbinfra-tbl .nbinfra-foot").first.inner_text()
        assert footer.startswith("6 rows \u00d7 3 columns"), footer
        _shot(page, "table-style-light", page.locator(".jp-OutputArea-output .nbinfra-tbl").first)
        # the results table widget: the same look (its header also holds the filter boxes)
        results = page.locator(_RESULTS).first
        results.wait_for()
        results.scroll_into_view_if_needed()
        wlight = results.locator("table").evaluate(_TABLE_STYLE)
        for key in ("numeric", "numericHead", "text", "head", "wrap", "odd", "even", "color"):
            assert wlight[key] == light[key], (key, wlight, light)
        _shot(page, "results-table-light", results)
        # NULL shown dim; a long value cut, whole in its title (hover)
        null = page.locator(_RESULTS).nth(1).locator("tbody td").first
        assert null.inner_text() == "NULL" and null.locator(".nbinfra-null").count() == 1
        dim = null.locator(".nbinfra-null").evaluate("el => getComputedStyle(el).color")
        assert dim != light["color"], (dim, light)
        note = page.locator(_RESULTS).nth(1).locator("tbody td").nth(1)
        assert note.inner_text().endswith("\u2026") and len(note.inner_text()) <= 120
        assert note.get_attribute("title") == "word " * 60
        _theme(page, "JupyterLab Dark", light=False)
        dark = table.evaluate(_TABLE_STYLE)
        assert dark["numeric"] == "right" and dark["odd"] != dark["even"], dark
        assert dark["color"] != light["color"] and dark["odd"] != light["odd"], (light, dark)
        _shot(page, "table-style-dark", page.locator(".jp-OutputArea-output .nbinfra-tbl").first)
        wdark = results.locator("table").evaluate(_TABLE_STYLE)
        for key in ("numeric", "numericHead", "text", "head", "wrap", "odd", "even", "color"):
            assert wdark[key] == dark[key], (key, wdark, dark)
        _shot(page, "results-table-dark", results)
    except Exception:
        _shot(page, "table-style-failure")
        raise
    finally:
        with contextlib.suppress(Exception):
            _theme(page, "JupyterLab Light", light=True)  # the lab is shared with other tests
        page.close()


_PANEL_SETUP = """\
import pathlib, socket
import ipywidgets, nbinfra
from nbinfra.testing import free_port
%load_ext nbinfra
hung = socket.socket()  # a MongoDB that accepts connections and never answers
hung.bind(("127.0.0.1", 0))
hung.listen(64)
folder = pathlib.Path("health_panel_resources")
folder.mkdir(exist_ok=True)
(folder / "application-db.yaml").write_text(
    "connections:\\n  duckdb:\\n    database: ':memory:'\\n"
    f"  mongodb:\\n    kind: mongodb\\n    url: 'mongodb://127.0.0.1:{hung.getsockname()[1]}/db'\\n"
    "    connect_timeout: 30\\n"
)
(folder / "application-vector.yaml").write_text("connections: {}\\n")
(folder / "application-external.yaml").write_text("connections: {}\\n")
(folder / "application-cache.yaml").write_text(  # no Redis: a refused port, down at once
    f"cache:\\n  backend: memory\\n  redis:\\n    url: redis://127.0.0.1:{free_port()}/0\\n"
)
nbinfra.session.set_default_session(nbinfra.Session(resources=folder))
ipywidgets.HTML("widgets ready")"""

# In the page: when Shift+Enter was pressed, when the panel's mongodb row first showed (and
# painted), what it showed, when it resolved, and when the next cell's "2" came back.
_PANEL_WATCH = """cells => {
    const [panelCell, nextCell] = cells;
    const t = window.__panel = {};
    document.addEventListener('keydown', e => {
        if (e.key === 'Enter' && e.shiftKey && t.pressed === undefined) {
            t.pressed = performance.now();
        }
    }, true);
    const rows = () => panelCell.querySelectorAll('.jp-OutputArea-output .nbinfra-tbl tbody tr');
    const rowOf = name => [...rows()].find(tr => tr.children[1]?.textContent === name);
    const look = () => {
        const now = performance.now();
        const mongo = rowOf('mongodb');
        if (mongo && t.frame === undefined) {
            t.frame = now;
            t.first = mongo.children[0].textContent;
            requestAnimationFrame(() => { t.painted = performance.now(); });
        }
        const checking = mongo && mongo.children[0].textContent.includes('checking');
        if (mongo && !checking && t.resolved === undefined) t.resolved = now;
        const out = nextCell.querySelector('.jp-OutputArea-output');
        if (t.next === undefined && out && out.textContent.trim() === '2') t.next = now;
    };
    new MutationObserver(look).observe(
        document.querySelector('.jp-Notebook'),
        {subtree: true, childList: true, characterData: true, attributes: true},
    );
}"""


@pytest.mark.timeout(300)
def test_health_panel_draws_at_once_with_a_dead_mongodb(lab: str, browser: Any) -> None:
    panel_cell = "import time; t0 = time.perf_counter(); p = nbinfra.widgets.health_panel(); p"
    _new_notebook(lab, "health_panel.ipynb", [_PANEL_SETUP, panel_cell, "1+1"])
    page = _open(browser, lab, "health_panel.ipynb")
    try:
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        cells.nth(0).locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")  # warm-up: kernel up, nbinfra and widgets loaded
        cells.nth(0).locator(".widget-html", has_text="widgets ready").wait_for(timeout=60_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        page.evaluate(_PANEL_WATCH, [cells.nth(1).element_handle(), cells.nth(2).element_handle()])
        cells.nth(1).locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")  # the panel
        page.keyboard.press("Shift+Enter")  # 1+1, queued behind it
        page.wait_for_function(
            "() => window.__panel.resolved !== undefined && window.__panel.next !== undefined"
            " && window.__panel.painted !== undefined",
            timeout=60_000,
        )
        t = page.evaluate("() => window.__panel")
        frame_ms = t["painted"] - t["pressed"]
        resolved_ms = t["resolved"] - t["pressed"]
        next_ms = t["next"] - t["pressed"]
        dom_ms = t["frame"] - t["pressed"]
        print(
            f"health panel: frame {frame_ms:.0f} ms (in the DOM {dom_ms:.0f} ms), mongodb"
            f" resolved {resolved_ms:.0f} ms, next cell {next_ms:.0f} ms"
        )
        assert frame_ms < 500, f"the panel's frame took {frame_ms:.0f} ms to show"
        assert t["first"] == "\u25cc checking\u2026", t
        assert next_ms < resolved_ms, f"1+1 waited for the check ({next_ms:.0f} ms, {t})"

        table = cells.nth(1).locator(".jp-OutputArea-output .nbinfra-tbl table")
        page.wait_for_function(
            "el => !el.textContent.includes('checking')", arg=table.element_handle()
        )
        rows = {
            r[1]: r
            for r in table.evaluate(
                "el => [...el.querySelectorAll('tbody tr')]"
                ".map(tr => [...tr.children].map(td => td.innerText))"
            )
        }
        assert set(rows) == {"duckdb", "mongodb", "memory", "redis"}, rows
        assert rows["duckdb"][0] == "\u25cf ok" and rows["duckdb"][5].startswith("DuckDB"), rows
        mongo = rows["mongodb"]
        assert mongo[0] == "\u00d7 down", mongo
        assert mongo[5].startswith("no answer within 2.5 s") and "\n" not in mongo[5], mongo
        assert rows["redis"][0] == "\u00d7 down" and rows["memory"][0] == "\u25cf ok", rows
        checked = cells.nth(1).locator(".widget-html", has_text="checked ")
        checked.wait_for()
        _shot(page, "health-panel", cells.nth(1))
    except Exception:
        _shot(page, "health-panel-failure")
        raise
    finally:
        page.close()
