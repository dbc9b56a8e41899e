"""Knobs of an ``LLMWireServer`` that every wire format shares, and what the server saw.

Set on the server (``server.latency = 0.1``, ``server.limit = ServerLimit(rpm=1200)``,
``server.chaos = Chaos(seed=7, server_errors=0.05)``); they apply to chat requests:

- ``latency``: seconds each chat answer takes (the handler thread sleeps);
- ``limit``: a token bucket on arrivals (``rpm`` requests a minute, ``burst`` seconds'
  worth saved up); a request over it is answered 429 with ``Retry-After`` saying when the
  next one fits, and does not count against the limit;
- ``chaos``: seeded random faults, each a share of requests: ``rate_limited`` (429 with
  ``retry_after``), ``server_errors`` (500), ``cuts`` (the connection closes mid-answer);
  they come before the limit and do not count against it.

``server.traffic`` records every chat request: ``count``, arrival times, statuses,
``in_flight`` and ``max_in_flight``, and ``window_max(seconds)``, the most arrivals seen in
any window of that length. Tests assert on these counts.
"""

from __future__ import annotations

import bisect
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbinfra.testing import Response
    from nbinfra.testing_llm import Fault

__all__ = ["Chaos", "ServerLimit", "Traffic"]


@dataclass
class ServerLimit:
    """A requests-per-minute limit enforced by the server (a token bucket on arrivals)."""

    rpm: float
    burst: float = 1.0  # seconds' worth of requests that may arrive at once

    def __post_init__(self) -> None:
        self._rate = self.rpm / 60.0
        self._capacity = max(1.0, self._rate * self.burst)
        self._tokens = self._capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    @property
    def capacity(self) -> float:
        return self._capacity

    def admit(self) -> float | None:
        """None when the request fits, else the seconds until one will."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return (1.0 - self._tokens) / self._rate


@dataclass
class Chaos:
    """Seeded random faults, each a share of chat requests (0..1)."""

    seed: int = 0
    rate_limited: float = 0.0
    server_errors: float = 0.0
    cuts: float = 0.0
    retry_after: float | None = 0.1

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def pick(self) -> Fault | None:
        from nbinfra.testing_llm import Fault

        with self._lock:
            roll = self._random.random()
        if roll < self.rate_limited:
            return Fault.rate_limited(self.retry_after)
        roll -= self.rate_limited
        if roll < self.server_errors:
            return Fault.server_error(500)
        roll -= self.server_errors
        if roll < self.cuts:
            return Fault.cut(after=1)
        return None


class Traffic:
    """What a wire server saw of chat requests (module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.arrivals: list[float] = []  # time.monotonic() of each chat request
        self.statuses: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def count(self) -> int:
        return len(self.arrivals)

    def answered(self, status: int) -> int:
        """How many chat requests got ``status``."""
        with self._lock:
            return sum(1 for s in self.statuses if s == status)

    def window_max(self, seconds: float) -> int:
        """The most arrivals in any window of ``seconds`` (a window starts at an arrival)."""
        with self._lock:
            times = sorted(self.arrivals)
        best = 0
        for i, start in enumerate(times):
            best = max(best, bisect.bisect_right(times, start + seconds) - i)
        return best

    def clear(self) -> None:
        with self._lock:
            self.arrivals.clear()
            self.statuses.clear()
            self.max_in_flight = self.in_flight

    def serve(
        self,
        latency: float,
        limit: ServerLimit | None,
        chaos: Chaos | None,
        answer: Callable[[Fault | None], Response],
    ) -> Response:
        """Record the request, apply the knobs, and ``answer`` (with a fault to play)."""
        from nbinfra.testing_llm import Fault

        with self._lock:
            self.arrivals.append(time.monotonic())
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        status = 500
        try:
            fault = chaos.pick() if chaos is not None else None
            if fault is None and limit is not None:
                wait = limit.admit()
                if wait is not None:
                    fault = Fault.rate_limited(round(wait, 3) + 0.001)
            if latency and (fault is None or fault.kind != "status"):
                time.sleep(latency)
            response = answer(fault)
            status = response.status
            return response
        finally:
            with self._lock:
                self.in_flight -= 1
                self.statuses.append(status)
