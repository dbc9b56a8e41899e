"""Parse time of a magic line: nbinfra's parser vs IPython's ``var_expand``, 1k to 100k chars.

For each magic the same line (options, then text full of ``{braces}``, ``$`` and quotes,
repeated to the length) goes to

- nbinfra: the magic's ``parse(line)``, and that followed by the fill-in nbinfra applies to
  what it kept (``{field}`` in a ``%llm`` prompt, the ``:name`` binds of a ``%conn`` query,
  ``$name`` in a ``%cache`` KEY). Nothing runs: no provider, cache or database is touched;
- IPython: ``InteractiveShell.var_expand(line)``, which every magic line went through before
  nbinfra's magics were ``@no_var_expand``.

Targets: under 10 ms at 100k characters, and linear: a line 10x longer takes at most 15x as
long (quadratic would be 100x). IPython's expansion is quadratic; at 100k it is run once in a
child process and stopped after ``_PEER_LIMIT`` seconds.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import Comparison, interleave

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1_000, 10_000, 100_000)
_PEER_LIMIT = 60.0  # seconds for one var_expand of a 100k line in the child
# The user's variables the lines refer to.
NAMESPACE: dict[str, Any] = {
    "doc": type("Doc", (), {"title": "Q3 report"})(),
    "team": {"lead": "Ada"},
    "x": 1,
    "word": "hello",
}

# Each line: its magic, the options, then a piece repeated to the line's length. Every field
# in the pieces resolves, so IPython's expansion does its whole work instead of giving up
# early. Its time depends on the text: a line without "$" is its worst case.
LINES: dict[str, tuple[str, str, str]] = {
    "%llm": (
        "%llm",
        "-p fake -t 0.2 --max-tokens 200 -o answer ",
        "Summarise {doc.title} for {team['lead']}: it's about $word, not {{braces}}; ",
    ),
    "%llm prose": ("%llm", "-p fake ", "Summarise the report for the team in plain words; "),
    "%cache": ("%cache", "-n notes set summary [", "'it''s $word', \"x {x} y\", 1.5, $x, "),
    "%conn": (
        "%conn",
        "-o rows --limit 10 duckdb SELECT * FROM t WHERE ",
        "v = :x AND s = 'it''s {x}' OR w = $word /* a note */ OR ",
    ),
}


def make_line(label: str, size: int) -> str:
    """``size`` characters: the head, whole pieces, then spaces (no field is cut in two)."""
    _magic, head, piece = LINES[label]
    return (head + piece * ((size - len(head)) // len(piece))).ljust(size)


PARSE, FILL = "nbinfra parse", "nbinfra parse + fill-in"
PEER = "IPython var_expand"


def contenders() -> dict[str, dict[str, Callable[[str], object]]]:
    """Per magic: its ``parse(line)`` alone, and followed by nbinfra's own fill-in."""
    from nbinfra.notebook import cache_magic, conn_magic, llm_magic
    from nbinfra.notebook.interpolate import interpolate, sql_bind_names

    def llm_fill(line: str) -> object:
        return interpolate(llm_magic.parse(line).prompt, NAMESPACE)

    def cache_fill(line: str) -> object:  # KEY's $name; SET's VALUE is read when it runs
        parsed = cache_magic.parse(line)
        return [cache_magic.expand(t.value, NAMESPACE) for t in parsed.argv[:1]], parsed.rest

    def conn_fill(line: str) -> object:  # the :name binds the query sends as parameters
        return sql_bind_names(conn_magic.parse(line).query)

    return {
        "%llm": {PARSE: llm_magic.parse, FILL: llm_fill},
        "%cache": {PARSE: cache_magic.parse, FILL: cache_fill},
        "%conn": {PARSE: conn_magic.parse, FILL: conn_fill},
    }


def _shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns.update(NAMESPACE)
    return shell


_CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from benchmarks.bench_parse import _shell, make_line
shell = _shell()
line = make_line({label!r}, {size})
start = time.perf_counter()
shell.var_expand(line)
print("ELAPSED", time.perf_counter() - start)
"""


def _peer_once(label: str, size: int) -> tuple[float | None, str]:
    """One ``var_expand`` of the line in a child process, stopped after ``_PEER_LIMIT``."""
    code = _CHILD.format(root=str(ROOT), label=label, size=size)
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=_PEER_LIMIT + 30,  # the child's start-up (IPython import) is not timed
            cwd=tempfile.gettempdir(),
        )
    except subprocess.TimeoutExpired:
        return None, f"IPython var_expand: stopped after {_PEER_LIMIT:g} s at {size:,} chars"
    for row in out.stdout.splitlines():
        if row.startswith("ELAPSED "):
            elapsed = float(row.split()[1])
            if elapsed <= _PEER_LIMIT:
                return elapsed, ""
            return None, f"IPython var_expand: {elapsed:.0f} s at {size:,} chars (over the limit)"
    return None, f"IPython var_expand failed: {out.stderr.strip()[-300:]}"


def _ops(size: int) -> int:
    return max(1, 200_000 // size)  # about the same characters per sample at every size


def _repeat(fn: Callable[[str], object], line: str, ops: int) -> Callable[[], None]:
    def timed() -> None:
        for _ in range(ops):
            fn(line)

    return timed


def _peer_samples(
    shell: Any, label: str, lines: dict[int, str], smoke: bool
) -> tuple[dict[int, list[float]], dict[int, str]]:
    """``var_expand`` per size: in process up to 10k, once in a child (time-limited) at 100k."""
    peer: dict[int, list[float]] = {}
    why: dict[int, str] = {}
    for size, line in lines.items():
        if smoke and size > SIZES[0]:
            why[size] = f"{PEER}: smoke run (measured in the full run)"
        elif size == SIZES[-1]:
            sample, why[size] = _peer_once(label, size)
            if sample is not None:
                peer[size] = [sample]
        else:
            rounds = 1 if size >= 10_000 or smoke else 3
            peer[size] = interleave(
                {PEER: lambda line=line: shell.var_expand(line)}, rounds=rounds, warmup=0
            )[PEER]
    return peer, why


def run(smoke: bool = False) -> list[Comparison]:
    rounds = 2 if smoke else 9
    shell = _shell()
    out: list[Comparison] = []
    every = contenders()
    for label, (magic, _head, _piece) in LINES.items():
        lines = {size: make_line(label, size) for size in SIZES}
        # Both contenders at every size interleaved in one run: paired rounds for the ratios.
        timed = interleave(
            {
                f"{name} @ {size}": _repeat(fn, lines[size], _ops(size))
                for size in SIZES
                for name, fn in every[magic].items()
            },
            rounds=rounds,
        )
        ours = {
            (name, size): [s / _ops(size) for s in timed[f"{name} @ {size}"]]
            for size in SIZES
            for name in every[magic]
        }
        peer, why = _peer_samples(shell, label, lines, smoke)
        for size in SIZES:
            samples = {name: ours[name, size] for name in every[magic]}
            if size in peer:
                samples[PEER] = peer[size]
            out.append(
                Comparison(
                    area="parse",
                    name=f"{label} line @ {size:,} chars",
                    workload=f"one {size:,}-character {label} line ({_ops(size)} per round); "
                    "the peer expands the same line",
                    samples=samples,
                    nbinfra=PARSE,
                    baseline=PEER if size in peer else None,
                    max_seconds=0.01 if size == SIZES[-1] else None,
                    unit="s/line",
                    extra={"size": float(size)},
                    not_measured=why.get(size, ""),
                    notes=f"{FILL}: the parse, then what nbinfra fills in ({_FILLS[magic]})",
                )
            )
        for small, big in itertools.pairwise(SIZES):
            for name in every[magic]:
                out.append(
                    Comparison(
                        area="parse",
                        name=f"{label} {name.removeprefix('nbinfra ')}, 10x longer line "
                        f"({small:,} -> {big:,} chars)",
                        workload="time per line at the longer size over the shorter one, "
                        "paired by round (linear: about 10; quadratic: about 100)",
                        samples={
                            f"{big:,} chars": ours[name, big],
                            f"{small:,} chars": ours[name, small],
                        },
                        nbinfra=f"{big:,} chars",
                        baseline=f"{small:,} chars",
                        max_ratio=15.0,
                        unit="s/line",
                        notes=_peer_ratio(peer, small, big),
                    )
                )
    return out


_FILLS = {
    "%llm": "{field} lookups in the prompt",
    "%cache": "$name in KEY",
    "%conn": "the :name binds of the query",
}


def _peer_ratio(peer: dict[int, list[float]], small: int, big: int) -> str:
    if small in peer and big in peer:
        import statistics

        ratio = statistics.median(peer[big]) / statistics.median(peer[small])
        return f"IPython var_expand on the same lines: {ratio:,.0f}x for 10x the length."
    return "IPython var_expand: not measured at both sizes in this run."
