"""``%conn list`` on the shipped defaults, in a fresh IPython: the first call and a warm one.

Each sample is one new Python process in an empty working directory (the shipped default
settings, as for a new user; no URL or key in the environment), so nothing embedded has
been started. It loads the extension (not timed), then times the first ``%conn list``
(imports of the drivers it checks included) and a second one right after it. Every check
runs at once under its own short bound, refused ports answer at once (TCP is probed before
the driver), and local engines that are not open yet are listed as "not started".

There is no peer with such a listing; the figures from before the concurrent checks are
in the notes (5 s and more on the same defaults).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import Comparison

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import asyncio, time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "nbinfra")
start = time.perf_counter()
first = ip.run_line_magic("conn", "list")
middle = time.perf_counter()
warm = ip.run_line_magic("conn", "list")
done = time.perf_counter()
assert len(first.rows) == len(warm.rows) >= 5, first.rows
print("ELAPSED", middle - start, done - middle, len(first.rows))
"""

# what would point a connection somewhere else than the defaults
_OURS = re.compile(r"(_URL|_API_KEY|_TOKEN|_ENDPOINT|_HOST)$|^NBINFRA_|^AWS_|^PG")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sample(extra: dict[str, str]) -> tuple[float, float]:
    """``(first call seconds, warm call seconds)`` in a fresh process."""
    env = {k: v for k, v in os.environ.items() if not _OURS.search(k)}
    env.update(extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryDirectory(prefix="nbinfra-bench-list-") as cwd:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            cwd=cwd,
        )
    for line in out.stdout.splitlines():
        if line.startswith("ELAPSED "):
            first, warm = line.split()[1:3]
            return float(first), float(warm)
    raise RuntimeError(f"%conn list failed: {out.stderr.strip()[-500:]}")


def run(smoke: bool = False) -> list[Comparison]:
    rounds = 1 if smoke else 7
    # a Redis may be listening on this machine's default port; the second contender
    # points the one connection that reaches a server by default at a closed port
    closed = {"REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0"}
    variants = {"defaults": {}, "defaults, nothing listening": closed}
    if not smoke:
        _sample({})  # warm-up: bytecode and OS file cache
    firsts: dict[str, list[float]] = {name: [] for name in variants}
    warms: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, extra in variants.items():
            first, warm = _sample(extra)
            firsts[name].append(first)
            warms[name].append(warm)
    common = "every check at once, each under its own bound; TCP probed before the driver"
    return [
        Comparison(
            area="notebook",
            name="%conn list, first call",
            workload="first %conn list in a fresh IPython on the shipped defaults",
            samples=firsts,
            nbinfra="defaults, nothing listening",
            max_seconds=3.0,
            unit="s/list",
            notes=f"{common}; includes importing the drivers it checks (5-12 s before)",
        ),
        Comparison(
            area="notebook",
            name="%conn list, warm",
            workload="a second %conn list right after the first, same process",
            samples=warms,
            nbinfra="defaults, nothing listening",
            max_seconds=1.0,
            unit="s/list",
            notes=f"{common} (5.0-8.3 s before)",
        ),
    ]
