"""The results table's front end (an ES module) cuts cells and writes TSV as the kernel does.

Runs the module's own functions under Node (skipped where there is no ``node``); the
browser test drives the rest of it in JupyterLab.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from nbinfra.notebook import tables
from nbinfra.notebook.results_widget import page_tsv

MODULE = Path(tables.__file__).with_name("results_table.js")
VALUES = [
    "short",
    "word " * 40,
    "a" * 300,
    "one, two; three: " * 12,
    "line\nbreak\tand tab " * 10,
    "x" * 119,
    "y" * 120,
    "z" * 121,
]


def _node(script: str) -> object:
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node to run the front end's module")
    program = f"const m = await import({json.dumps(MODULE.as_uri())});\n{script}"
    out = subprocess.run(
        [node, "--input-type=module", "-e", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def test_cells_are_cut_as_the_table_style_cuts_them() -> None:
    script = f"console.log(JSON.stringify([m.MAX_HTML, {json.dumps(VALUES)}.map(m.shortened)]))"
    width, got = _node(script)  # type: ignore[misc]
    assert width == tables.MAX_HTML
    assert got == [tables.shorten(v, tables.MAX_HTML) for v in VALUES]


def test_the_copied_page_is_the_kernels_tsv() -> None:
    columns = ["id", "note\tx"]
    cells = [["1", "a\tb\r\nc"], [None, "plain"], ["3", None]]
    script = f"console.log(JSON.stringify(m.tsv({json.dumps(columns)}, {json.dumps(cells)})))"
    assert _node(script) == page_tsv(columns, cells)
