"""Measure contenders interleaved (A B A B ...) and report medians, spread and targets.

A benchmark module ``benchmarks/bench_<area>.py`` defines ``run(smoke: bool) -> list[Comparison]``.
Each ``Comparison`` names the workload, holds per-contender samples (seconds per operation,
sample ``i`` of every contender from round ``i``) and its targets, judged in one run on the
median of the per-round ratios (or differences), see ``Comparison.ratio_of``:

- ``max_ratio``: ``nbinfra / baseline <= max_ratio`` ("at least 2x faster" is ``0.5``);
- ``also``: more ratio targets, ``{other contender: max ratio}``;
- ``max_excess``: ``nbinfra - baseline <= max_excess`` seconds ("within 1 ms of");
- ``max_seconds``: ``nbinfra <= max_seconds`` seconds per operation ("under 1 ms").

A scaling series is several comparisons named ``"<series> @ <size> <unit>"`` with
``extra["size"]``; the report plots each contender's median against the size.
A contender that could not run is reported with ``not_measured`` (the reason), never dropped.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Check",
    "Comparison",
    "fmt_time",
    "fmt_value",
    "interleave",
    "interleave_async",
    "settle",
]


@dataclass(frozen=True)
class Check:
    """One target judged on one run: what is compared, the figure, the target, the verdict."""

    what: str
    value: str
    target: str
    met: bool | None  # None: reported only, or nothing to judge


@dataclass
class Comparison:
    """One workload measured for several contenders, in one run."""

    area: str
    name: str
    workload: str
    samples: dict[str, list[float]]  # contender -> seconds per operation, one per round
    nbinfra: str | None = None  # contender whose ratio is reported
    baseline: str | None = None
    max_ratio: float | None = None  # target: nbinfra/baseline <= max_ratio
    unit: str = "s/op"
    notes: str = ""
    extra: dict[str, float] = field(default_factory=dict)  # "size" for scaling series
    also: dict[str, float] = field(default_factory=dict)  # contender -> max ratio
    max_excess: float | None = None  # target: nbinfra - baseline <= max_excess seconds
    max_seconds: float | None = None  # target: nbinfra's median <= max_seconds
    not_measured: str = ""  # why a contender is missing from this run
    limits: str = ""  # what limits the figure when a target is missed

    def median(self, contender: str) -> float:
        return statistics.median(self.samples[contender])

    def spread(self, contender: str) -> float:
        """Relative spread: (max - min) / median over the rounds."""
        values = self.samples[contender]
        med = statistics.median(values)
        return (max(values) - min(values)) / med if med else 0.0

    def ratio_to(self, other: str) -> float | None:
        if self.nbinfra is None or other not in self.samples or self.nbinfra not in self.samples:
            return None
        return self.ratio_of(self.nbinfra, other)

    def ratio_of(self, name: str, other: str) -> float | None:
        """``name / other``: the median of the per-round ratios.

        Samples are paired by round (contenders run interleaved, each round once), so a
        round's ratio compares runs made moments apart, and a slow stretch of the machine
        falls on both sides of it; the median then sets aside rounds that one outlier
        spoiled. Unpaired samples (different counts) fall back to the ratio of medians.
        """
        ours, theirs = self.samples[name], self.samples[other]
        if len(ours) == len(theirs) and all(theirs):
            return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
        base = statistics.median(theirs)
        return statistics.median(ours) / base if base else None

    def excess_of(self, name: str, other: str) -> float:
        """``name - other`` in the unit: the median of the per-round differences."""
        ours, theirs = self.samples[name], self.samples[other]
        if len(ours) == len(theirs):
            return statistics.median(a - b for a, b in zip(ours, theirs, strict=True))
        return statistics.median(ours) - statistics.median(theirs)

    @property
    def ratio(self) -> float | None:
        return None if self.baseline is None else self.ratio_to(self.baseline)

    @property
    def met(self) -> bool | None:
        """All targets met (None when there is no target to judge)."""
        verdicts = [c.met for c in self.checks() if c.met is not None]
        return all(verdicts) if verdicts else None

    def checks(self) -> list[Check]:
        """Every target of this comparison (and the plain ratio when there is none)."""
        out: list[Check] = []
        nb = self.nbinfra
        if self.not_measured:
            out.append(Check("not measured", "-", self.not_measured, None))
        if nb is None or nb not in self.samples:
            return out
        if self.baseline is not None:
            ratio = self.ratio
            if ratio is not None and (self.max_ratio is not None or self.max_excess is None):
                target = "report" if self.max_ratio is None else f"<= {self.max_ratio:g}"
                met = None if self.max_ratio is None else ratio <= self.max_ratio
                out.append(Check(f"{nb} / {self.baseline}", _ratio(ratio), target, met))
            if self.max_excess is not None and self.baseline in self.samples:
                excess = self.excess_of(nb, self.baseline)
                out.append(
                    Check(
                        f"{nb} - {self.baseline}",
                        _signed_time(excess),
                        f"<= {fmt_time(self.max_excess)}",
                        excess <= self.max_excess,
                    )
                )
        for other, limit in self.also.items():
            ratio = self.ratio_to(other)
            if ratio is not None:
                out.append(Check(f"{nb} / {other}", _ratio(ratio), f"<= {limit:g}", ratio <= limit))
        if self.max_seconds is not None:
            value = self.median(nb)
            out.append(
                Check(
                    f"{nb} per op",
                    fmt_time(value),
                    f"<= {fmt_time(self.max_seconds)}",
                    value <= self.max_seconds,
                )
            )
        return out


def fmt_value(value: float, unit: str) -> str:
    """A sample in its unit: seconds as times, anything else (instructions) as a count."""
    if unit == "s" or unit.startswith("s/"):
        return fmt_time(value)
    return f"{value:,.0f}"


def fmt_time(seconds: float) -> str:
    magnitude = abs(seconds)
    if magnitude >= 1:
        return f"{seconds:.3f} s"
    if magnitude >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.2f} us"


def _signed_time(seconds: float) -> str:
    return ("+" if seconds >= 0 else "") + fmt_time(seconds)


def _ratio(ratio: float) -> str:
    if ratio < 0.5:
        return f"{ratio:.3g} ({1 / ratio:.3g}x faster)"
    return f"{ratio:.3f}"


def settle() -> None:
    """Collect garbage before a timed sample, then freeze the survivors.

    Frozen objects are left out of later collections, so each one scans only what was
    made since; a full pass over every imported SDK's objects costs about 0.1 s, which
    would dominate a run of thousands of samples. Reference counting still frees them.
    """
    gc.collect()
    gc.freeze()


def interleave(
    contenders: dict[str, Callable[[], object]], *, rounds: int = 7, ops: int = 1, warmup: int = 1
) -> dict[str, list[float]]:
    """Time each contender once per round, in turn; seconds per op for each round."""
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            settle()
            start = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - start) / ops)
    return samples


def _bind(
    run: Callable[[Coroutine[Any, Any, object]], object],
    make: Callable[[], Coroutine[Any, Any, object]],
) -> Callable[[], object]:
    return lambda: run(make())


def interleave_async(
    contenders: dict[str, Callable[[], Coroutine[Any, Any, object]]],
    *,
    rounds: int = 7,
    ops: int = 1,
    warmup: int = 1,
    loop: asyncio.AbstractEventLoop | None = None,
    run: Callable[[Coroutine[Any, Any, object]], object] | None = None,
) -> dict[str, list[float]]:
    """``interleave`` for coroutine functions, all run on one event loop.

    ``run`` runs one coroutine to completion on a loop that is already running in another
    thread (``nbinfra._loop.run_sync`` for nbinfra's own loop); else ``loop``, or a new one.
    """
    own: asyncio.AbstractEventLoop | None = None
    if run is None:
        if loop is None:
            loop = own = asyncio.new_event_loop()
        run = loop.run_until_complete
    runner = run
    try:
        wrapped = {n: _bind(runner, f) for n, f in contenders.items()}
        return interleave(wrapped, rounds=rounds, ops=ops, warmup=warmup)
    finally:
        if own is not None:
            own.close()
