"""The first Tab on a magic's line in a fresh IPython, against IPython's own first Tab.

Each sample is one new Python process: it creates an ``InteractiveShell`` (not timed),
times ``%load_ext nbinfra``, then times the first completion of one line through the
shell's completer (what a kernel runs for a Tab). nbinfra completes ``%conn d`` (its
matcher loads on that first Tab and reads the settings); the baseline is IPython's first
completion of a Python name (``pri``, answered by Jedi) in the same kind of process.
``asyncio`` is imported beforehand, as it is in every Jupyter kernel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import Comparison

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import asyncio, time
from IPython.core.completer import provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
start = time.perf_counter()
ip.run_line_magic("load_ext", "nbinfra")
loaded = time.perf_counter()
text = {text!r}
with provisionalcompleter():
    found = [c.text for c in ip.Completer.completions(text, len(text))]
done = time.perf_counter()
assert {expect!r} in found, found
print("ELAPSED", loaded - start, done - loaded)
"""

CONTENDERS = {"nbinfra %conn d": ("%conn d", "duckdb"), "IPython + Jedi": ("pri", "print")}


def _sample(text: str, expect: str) -> tuple[float, float]:
    """``(%load_ext seconds, first Tab seconds)`` in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD.format(text=text, expect=expect)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tempfile.gettempdir(),  # the shipped default settings, as for a new user
    )
    for line in out.stdout.splitlines():
        if line.startswith("ELAPSED "):
            load, tab = line.split()[1:]
            return float(load), float(tab)
    raise RuntimeError(f"first Tab on {text!r} failed: {out.stderr.strip()[-500:]}")


def run(smoke: bool = False) -> list[Comparison]:
    rounds = 1 if smoke else 9
    if not smoke:
        for text, expect in CONTENDERS.values():
            _sample(text, expect)  # warm-up: bytecode and OS file cache
    tabs: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    loads: list[float] = []
    for _ in range(rounds):
        for name, (text, expect) in CONTENDERS.items():
            load, tab = _sample(text, expect)
            tabs[name].append(tab)
            if name.startswith("nbinfra"):
                loads.append(load)
    return [
        Comparison(
            area="notebook",
            name="first Tab completion",
            workload="first completion in a fresh IPython process after %load_ext nbinfra",
            samples=tabs,
            nbinfra="nbinfra %conn d",
            baseline="IPython + Jedi",
            max_seconds=0.5,
            unit="s/Tab",
            notes="nbinfra's first Tab imports its completer and reads the settings files "
            "(connection names); later Tabs reuse both (under a millisecond)",
        ),
        Comparison(
            area="notebook",
            name="%load_ext with the completer registered",
            workload="%load_ext nbinfra in a fresh IPython process (shell creation not timed)",
            samples={"nbinfra": loads},
            nbinfra="nbinfra",
            max_seconds=0.05,
            unit="s/load",
            notes="the matcher is registered, its module is imported on the first Tab only",
        ),
    ]
