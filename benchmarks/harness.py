"""Measure contenders interleaved (A B A B ...) and report medians, spread and ratios.

A benchmark module ``benchmarks/bench_<area>.py`` defines ``run(smoke: bool) -> list[Comparison]``.
Each ``Comparison`` names the workload, holds per-contender samples (seconds per operation)
and optionally a target: ``nbinfra`` / ``baseline`` must be <= ``max_ratio`` (or >= when
``min_ratio`` is given, e.g. "at least 2x faster" is ``max_ratio=0.5``).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["Comparison", "interleave", "interleave_async"]


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
    extra: dict[str, float] = field(default_factory=dict)  # absolute targets, e.g. "us/get"

    def median(self, contender: str) -> float:
        return statistics.median(self.samples[contender])

    def spread(self, contender: str) -> float:
        """Relative spread: (max - min) / median over the rounds."""
        values = self.samples[contender]
        med = statistics.median(values)
        return (max(values) - min(values)) / med if med else 0.0

    @property
    def ratio(self) -> float | None:
        if self.nbinfra is None or self.baseline is None:
            return None
        base = self.median(self.baseline)
        return self.median(self.nbinfra) / base if base else None

    @property
    def met(self) -> bool | None:
        ratio = self.ratio
        if ratio is None or self.max_ratio is None:
            return None
        return ratio <= self.max_ratio


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
            gc.collect()
            start = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - start) / ops)
    return samples


def interleave_async(
    contenders: dict[str, Callable[[], Awaitable[object]]],
    *,
    rounds: int = 7,
    ops: int = 1,
    warmup: int = 1,
    loop: asyncio.AbstractEventLoop | None = None,
) -> dict[str, list[float]]:
    """``interleave`` for coroutine functions, all run on one event loop."""
    own = loop is None
    run_loop = loop or asyncio.new_event_loop()
    try:
        wrapped = {n: (lambda f=f: run_loop.run_until_complete(f())) for n, f in contenders.items()}
        return interleave(wrapped, rounds=rounds, ops=ops, warmup=warmup)
    finally:
        if own:
            run_loop.close()
