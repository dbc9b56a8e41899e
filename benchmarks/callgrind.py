"""Instructions executed per phase of a program, counted by valgrind's callgrind.

Wall-clock and CPU-time ratios on a shared two-core machine move by several percent from
run to run; an instruction count does not (the same program, inputs and hash seed give
the same count to within a few hundredths of a percent). A benchmark that needs the
overhead of a wrapper measured below that noise runs its client under ``count_phases``:

- the program calls ``mark()`` at every phase boundary: it tells the driver and waits;
- the driver asks callgrind to dump (and zero) its counters there (``callgrind_control``);
- phase ``i`` is what ran between marks ``i`` and ``i + 1``; startup before the first mark
  is left out.

Only the client process is counted (a local server runs in its own process). Needs
``valgrind`` on PATH (``available()``); under valgrind a program runs ~50x slower.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["ENV_FLAG", "available", "count_phases", "mark"]

ENV_FLAG = "NBINFRA_BENCH_CALLGRIND_FLAG"
MARK = "@@callgrind-mark@@"
_TOTALS = re.compile(rb"^(?:totals|summary):\s+(\d+)", re.MULTILINE)


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def mark() -> None:
    """A phase boundary (a no-op unless the program runs under ``count_phases``)."""
    flag = os.environ.get(ENV_FLAG)
    if not flag:
        return
    print(MARK, flush=True)
    # Short naps, not one long block: callgrind serves a dump request only while the
    # program runs, and a bare spin would add its own instructions to the phase.
    path = Path(flag)
    while not path.exists():
        time.sleep(0.002)
    path.unlink()


def count_phases(argv: list[str], *, timeout: float = 900.0) -> list[int]:
    """Run ``argv`` (``[python, ...]``) under callgrind; instructions of each phase."""
    with tempfile.TemporaryDirectory(prefix="nbinfra-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        flag = Path(tmp) / "go"
        env = {**os.environ, ENV_FLAG: str(flag), "PYTHONHASHSEED": "0"}
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
        )
        deadline = time.monotonic() + timeout
        # Reading stdout blocks: only killing the program ends a run that hangs.
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        dumps = 0
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.strip() != MARK:
                    continue
                subprocess.run(
                    ["callgrind_control", "--dump", str(proc.pid)],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=60,
                )
                dumps += 1
                _wait_for(Path(f"{out}.{dumps}"), deadline)
                flag.touch()
            if proc.wait(timeout=max(1.0, deadline - time.monotonic())) != 0:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"callgrind run exceeded {timeout:.0f} s")
                raise RuntimeError(f"{argv[-1]!r} under callgrind exited with {proc.returncode}")
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        counts = [_instructions(Path(f"{out}.{i}")) for i in range(1, dumps + 1)]
        counts.append(_instructions(out))  # what ran after the last mark (exit)
    return counts[1:-1]


def _wait_for(path: Path, deadline: float) -> None:
    # callgrind writes the dump file, then its totals line last; wait for a complete file.
    while time.monotonic() < deadline:
        if path.exists() and _TOTALS.search(path.read_bytes()):
            return
        time.sleep(0.05)
    raise TimeoutError(f"callgrind did not write {path.name}")


def _instructions(path: Path) -> int:
    found = _TOTALS.search(path.read_bytes())
    if found is None:
        raise RuntimeError(f"no instruction total in {path.name}")
    return int(found.group(1))


if __name__ == "__main__":  # pragma: no cover - a manual check: two phases of known size
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mark()
        sum(range(1_000_000))
        mark()
        sum(range(2_000_000))
        mark()
    else:
        print(count_phases([sys.executable, "-m", "benchmarks.callgrind", "--child"]))
