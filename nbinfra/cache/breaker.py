"""A circuit breaker: stop calling a backend that keeps failing, probe it now and then.

closed --N consecutive failures--> open --reset_timeout--> half-open (one probe)
half-open --probe succeeds--> closed;  half-open --probe fails--> open again.

While open, ``allow()`` answers False at once, so an outage costs one timeout per window
instead of one per call. Thread-safe (plain state under a lock); not tied to any loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from nbinfra.logs import get_logger

__all__ = ["CircuitBreaker"]

log = get_logger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    """Counts consecutive failures; see the module docstring for the states."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started = 0.0
        self.opened_count = 0  # how many times the circuit opened
        self.failures_total = 0
        self.rejected = 0  # calls refused while open

    @property
    def state(self) -> str:
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_in(self) -> float:
        """Seconds until the next probe is allowed (0 when closed)."""
        if self._state == CLOSED:
            return 0.0
        return max(0.0, self._opened_at + self.reset_timeout - self._clock())

    def allow(self) -> bool:
        """May the caller try the backend now? (True for the one half-open probe.)"""
        if self._state == CLOSED:  # the hot path takes no lock
            return True
        with self._lock:
            now = self._clock()
            if self._state == OPEN and now - self._opened_at >= self.reset_timeout:
                self._set(HALF_OPEN)
                self._probe_started = now
                return True
            if self._state == HALF_OPEN and now - self._probe_started >= self.reset_timeout:
                self._probe_started = now  # the previous probe never reported back
                return True
            self.rejected += 1
            return False

    def success(self) -> None:
        if self._state == CLOSED and not self._failures:
            return
        with self._lock:
            self._failures = 0
            if self._state != CLOSED:
                self._set(CLOSED)

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            self.failures_total += 1
            if self._state == HALF_OPEN or (
                self._state == CLOSED and self._failures >= self.failure_threshold
            ):
                self._opened_at = self._clock()
                self.opened_count += 1
                self._set(OPEN)

    def reset(self) -> None:
        with self._lock:
            self._failures = 0
            self._set(CLOSED)

    def _set(self, state: str) -> None:
        old, self._state = self._state, state
        if old == state:
            return
        if state == OPEN:
            log.warning(
                "cache circuit %s opened after %d consecutive failures; retrying in %.1f s",
                self.name,
                self._failures,
                self.reset_timeout,
            )
        else:
            log.info("cache circuit %s is %s", self.name, state)
        if self._on_change is not None:
            self._on_change(old, state)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name} {self._state}, {self._failures} failures>"
