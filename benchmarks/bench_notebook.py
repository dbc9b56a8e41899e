"""``%load_ext`` time in a fresh IPython: nbinfra vs JupySQL vs jupyter-ai.

Each sample is one new Python process that creates an ``InteractiveShell`` (not timed) and
then times ``%load_ext X`` alone. Contenders run interleaved, one process each per round.
jupyter-ai cannot share the main environment (dependency conflicts), so it is installed
once into a side virtual environment under the temp directory; when that cannot be done
(no registry access) it is reported as not measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.harness import Comparison, interleave

ROOT = Path(__file__).resolve().parents[1]
_SIDE_VENV = Path(tempfile.gettempdir()) / "nbinfra-bench-jupyter-ai"

_CHILD = """
import time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
start = time.perf_counter()
ip.run_line_magic("load_ext", {ext!r})
elapsed = time.perf_counter() - start
assert {magic!r} in ip.magics_manager.magics["line"], "extension did not register its magic"
print("ELAPSED", elapsed)
"""


def _side_python() -> Path | None:
    """Python of a side venv with jupyter_ai_magics (created on first use)."""
    python = _SIDE_VENV / "bin" / "python"
    if not python.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(_SIDE_VENV)], check=True, timeout=300)
        except (subprocess.SubprocessError, OSError):
            return None
    probe = subprocess.run(
        [str(python), "-c", "import jupyter_ai_magics"], capture_output=True, timeout=120
    )
    if probe.returncode != 0:
        try:
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "jupyter_ai_magics<3"],
                check=True,
                timeout=1200,
                capture_output=True,
            )
        except (subprocess.SubprocessError, OSError):
            return None
    return python


def _load_time(python: str, ext: str, magic: str) -> float:
    # Bytecode caching on, as in any installed package (the warm-up run writes the .pyc).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [python, "-c", _CHILD.format(ext=ext, magic=magic)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tempfile.gettempdir(),  # no ./resources or pyproject.toml of ours around
    )
    for line in out.stdout.splitlines():
        if line.startswith("ELAPSED "):
            return float(line.split()[1])
    raise RuntimeError(f"%load_ext {ext} failed: {out.stderr.strip()[-500:]}")


def load_ext(smoke: bool) -> list[Comparison]:
    rounds = 2 if smoke else 9
    contenders: dict[str, tuple[str, str, str]] = {
        "nbinfra": (sys.executable, "nbinfra", "llm"),
        "JupySQL": (sys.executable, "sql", "sql"),
    }
    side = None if smoke else _side_python()
    if side is not None:
        contenders["jupyter-ai"] = (str(side), "jupyter_ai_magics", "ai")
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for python, ext, magic in contenders.values():
        _load_time(python, ext, magic)  # warm-up: bytecode and OS file cache
    for _ in range(rounds):
        for name, (python, ext, magic) in contenders.items():
            samples[name].append(_load_time(python, ext, magic))
    out = [
        Comparison(
            area="notebook",
            name="%load_ext vs JupySQL",
            workload="%load_ext in a fresh IPython process (shell creation not timed)",
            samples={k: samples[k] for k in ("nbinfra", "JupySQL")},
            nbinfra="nbinfra",
            baseline="JupySQL",
            max_ratio=0.1,
            unit="s/load",
        )
    ]
    if "jupyter-ai" in samples:
        out.append(
            Comparison(
                area="notebook",
                name="%load_ext vs jupyter-ai",
                workload="%load_ext in a fresh IPython process (jupyter_ai_magics 2.x, side venv)",
                samples={k: samples[k] for k in ("nbinfra", "jupyter-ai")},
                nbinfra="nbinfra",
                baseline="jupyter-ai",
                max_ratio=0.03,
                unit="s/load",
            )
        )
    else:
        out.append(
            Comparison(
                area="notebook",
                name="%load_ext vs jupyter-ai",
                workload="not measured: jupyter_ai_magics could not be installed in a side venv",
                samples={"nbinfra": samples["nbinfra"]},
                unit="s/load",
                notes="smoke run" if smoke else "side venv install failed",
            )
        )
    return out


def facade_cache(smoke: bool) -> list[Comparison]:
    """``nbinfra.cache(ns).get`` vs a bare threadsafe round trip of the same coroutine."""
    import asyncio

    from nbinfra import _loop
    from nbinfra.cache import CacheService
    from nbinfra.cache import cache as open_cache
    from nbinfra.session import Session, use_session
    from nbinfra.testing import RedisServer

    ops = 200 if smoke else 3_000
    rounds = 3 if smoke else 9
    out: list[Comparison] = []
    with tempfile.TemporaryDirectory() as tmp, RedisServer().start() as server:
        (Path(tmp) / "application-cache.yaml").write_text(
            f"cache:\n  backend: memory\n  redis:\n    url: {server.url}\n"
        )
        session = Session(resources=tmp)
        with use_session(session):
            for backend in ("memory", "redis"):
                sync = open_cache("bench", cache_type=backend)
                service = CacheService("bench", cache_type=backend)
                sync.set("k", {"v": 1})
                loop = _loop.get_loop()

                def facade(sync: object = sync) -> None:
                    get = sync.get  # type: ignore[attr-defined]
                    for _ in range(ops):
                        get("k")

                def bare(service: CacheService = service, loop: Any = loop) -> None:
                    for _ in range(ops):
                        asyncio.run_coroutine_threadsafe(service.get("k"), loop).result()

                samples = interleave(
                    {"nbinfra.cache(ns).get": facade, "bare run_coroutine_threadsafe": bare},
                    rounds=rounds,
                    ops=ops,
                )
                out.append(
                    Comparison(
                        area="notebook",
                        name=f"facade call overhead ({backend} cache get)",
                        workload=f"{ops} gets of one key per round, {backend} backend",
                        samples=samples,
                        nbinfra="nbinfra.cache(ns).get",
                        baseline="bare run_coroutine_threadsafe",
                        max_ratio=1.2,
                        unit="s/call",
                        notes="memory: the facade skips the loop hop (fast path)"
                        if backend == "memory"
                        else "both hop onto nbinfra's loop and talk to a real Redis",
                    )
                )
        session.close()
    return out


def facade_llm(smoke: bool) -> list[Comparison]:
    """``nbinfra.llm("fake").generate`` vs a bare threadsafe round trip of the same coroutine."""
    import asyncio

    from nbinfra import _loop
    from nbinfra.llm.sync import llm
    from nbinfra.session import Session, use_session

    ops = 100 if smoke else 2_000
    rounds = 3 if smoke else 9
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "application-llm.yaml").write_text("llm:\n  default: fake\n")
        session = Session(resources=tmp)
        with use_session(session):
            sync = llm("fake")
            provider = sync.llm
            loop = _loop.get_loop()

            def facade() -> None:
                for _ in range(ops):
                    sync.generate("ping")

            def bare() -> None:
                for _ in range(ops):
                    asyncio.run_coroutine_threadsafe(provider.generate("ping"), loop).result()

            samples = interleave(
                {"nbinfra.llm(p).generate": facade, "bare run_coroutine_threadsafe": bare},
                rounds=rounds,
                ops=ops,
            )
        session.close()
    return [
        Comparison(
            area="notebook",
            name="facade call overhead (fake LLM generate)",
            workload=f"{ops} generate calls per round on the offline fake provider",
            samples=samples,
            nbinfra="nbinfra.llm(p).generate",
            baseline="bare run_coroutine_threadsafe",
            max_ratio=1.2,
            unit="s/call",
            notes="same provider coroutine; the difference is the facade's wait in slices",
        )
    ]


def run(smoke: bool = False) -> list[Comparison]:
    return [*load_ext(smoke), *facade_cache(smoke), *facade_llm(smoke)]
