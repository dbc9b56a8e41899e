"""Per-namespace counters and latency percentiles (``cache.stats()``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nbinfra.errors import CacheError

__all__ = ["CacheStats", "ErrorCount", "StatsRecorder"]


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of one namespace's activity; latencies in milliseconds."""

    namespace: str
    backend: str
    hits: int = 0
    misses: int = 0
    sets: int = 0
    deletes: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def p50(self) -> float | None:
        """Median latency in milliseconds (alias of ``p50_ms``)."""
        return self.p50_ms

    @property
    def p95(self) -> float | None:
        return self.p95_ms

    @property
    def p99(self) -> float | None:
        return self.p99_ms

    @property
    def requests(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "backend": self.backend,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
            "sets": self.sets,
            "deletes": self.deletes,
            "errors": self.errors,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            **self.extra,
        }

    def __str__(self) -> str:
        rate = "-" if self.hit_rate is None else f"{self.hit_rate:.0%}"
        lat = "-" if self.p50_ms is None else f"p50 {self.p50_ms:.3f} ms, p99 {self.p99_ms:.3f} ms"
        return (
            f"{self.namespace} ({self.backend}): {self.hits} hits, {self.misses} misses "
            f"({rate}), {self.sets} sets, {self.errors} errors, {lat}"
        )


class StatsRecorder:
    """Mutable counters for one namespace; latencies kept in a fixed ring buffer.

    Counter updates are plain ``+=`` (atomic enough under the GIL for statistics); the
    ring index may race across threads, which can only overwrite one sample.
    """

    __slots__ = ("_i", "_lat", "_window", "deletes", "errors", "hits", "misses", "sets")

    def __init__(self, window: int = 2048) -> None:
        self._window = max(16, window)
        self._lat: list[float] = []
        self._i = 0
        self.hits = self.misses = self.sets = self.deletes = self.errors = 0

    def latency(self, seconds: float) -> None:
        lat = self._lat
        if len(lat) < self._window:
            lat.append(seconds)
        else:
            i = self._i
            lat[i] = seconds
            self._i = (i + 1) % self._window

    def snapshot(self, namespace: str, backend: str, **extra: Any) -> CacheStats:
        values = sorted(self._lat)

        def pct(p: float) -> float | None:
            if not values:
                return None
            idx = min(len(values) - 1, max(0, round(p * (len(values) - 1))))
            return values[idx] * 1000

        return CacheStats(
            namespace=namespace,
            backend=backend,
            hits=self.hits,
            misses=self.misses,
            sets=self.sets,
            deletes=self.deletes,
            errors=self.errors,
            p50_ms=pct(0.50),
            p95_ms=pct(0.95),
            p99_ms=pct(0.99),
            extra=extra,
        )

    def reset(self) -> None:
        self._lat = []
        self._i = 0
        self.hits = self.misses = self.sets = self.deletes = self.errors = 0


class ErrorCount:
    """The service's error boundary: ``with count:`` adds one to ``errors`` when a
    ``CacheError`` leaves the block (and lets it go on)."""

    __slots__ = ("_stats",)

    def __init__(self, stats: StatsRecorder) -> None:
        self._stats = stats

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: object, tb: object) -> None:
        if kind is not None and issubclass(kind, CacheError):
            self._stats.errors += 1
