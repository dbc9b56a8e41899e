"""Client-side rate limits for many LLM calls: token buckets, a shared gate, AIMD.

``AdaptiveLimiter`` holds, for one provider and model, a request bucket (requests per
minute) and a token bucket (tokens per minute), each refilled continuously and holding at
most ``burst`` seconds' worth, so in any window of ``T`` seconds at most
``rate * T + burst`` requests leave. Every caller of ``acquire`` waits its turn in order.

A rate-limit answer (HTTP 429) slows the whole batch, not one row:

- the **gate** closes until the provider's ``Retry-After`` has passed (else an
  exponential backoff), and nobody sends meanwhile; the buckets keep refilling, so a short
  wait costs no throughput;
- the **rate** is cut (multiplicative decrease, x0.5; the burst shrinks with it) only when
  429s are frequent (an exponentially weighted share of recent answers above 30 %): an
  occasional 429 only closes the gate, while a limit lower than configured (a key shared
  with another process) is found quickly. A 429 to a request sent before the last cut
  causes no further cut (one cut per round trip). Each success adds back a little
  (additive increase, about 5 % of the configured rate per second), up to that rate;
- the **window** of requests in flight, unlimited until 429s are frequent, is then halved
  (once per round trip) and grows by one per window of answers, as TCP's congestion
  window does: it paces a server whose limit is not configured, and a reopened gate lets
  a few requests go rather than every waiting worker at once.

Limits come from ``llm.providers.<kind>.rpm``/``tpm`` (or the model's entry under
``models:``), overridable per call. Pure asyncio; no SDK.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

__all__ = ["AdaptiveLimiter", "Limits", "TokenBucket"]

PRESSURE_WEIGHT = 0.05  # EWMA weight of one answer in the 429 share (~20 answers of memory)
PRESSURE_CUT = 0.3  # share of 429s above which the rate is cut
CUT_FACTOR = 0.5
RECOVER_PER_SECOND = 0.05  # share of the configured rate regained per second of successes
MIN_SHARE = 0.02  # the rate is never cut below this share of the configured one
MAX_WINDOW = 4096.0  # a window grown this far is no limit again


@dataclass(frozen=True)
class Limits:
    """Requests and tokens per minute (``None``: unlimited) and the burst, in seconds."""

    rpm: float | None = None
    tpm: float | None = None
    burst: float = 1.0

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be a positive number per minute, got {value!r}.")
        if not self.burst > 0:
            raise ValueError(f"burst must be a positive number of seconds, got {self.burst!r}.")


class TokenBucket:
    """``rate`` units a second, at most ``capacity`` saved up; takes may go into debt."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_time(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` (at most a full bucket) can be taken."""
        self._refill(now)
        need = min(amount, self.capacity)
        if self.tokens >= need:
            return 0.0
        return (need - self.tokens) / self.rate

    def take(self, amount: float, now: float) -> None:
        self._refill(now)
        self.tokens -= amount


class AdaptiveLimiter:
    """The buckets, gate and adaptive rate of one provider and model (module docstring)."""

    def __init__(self, limits: Limits, *, backoff: float = 0.5, max_backoff: float = 30.0) -> None:
        self.limits = limits
        self.backoff = backoff
        self.max_backoff = max_backoff
        now = time.monotonic()
        self.max_rate = limits.rpm / 60.0 if limits.rpm else None
        self.requests = (
            TokenBucket(self.max_rate, self.max_rate * limits.burst) if self.max_rate else None
        )
        tps = limits.tpm / 60.0 if limits.tpm else None
        self.tokens = TokenBucket(tps, tps * limits.burst) if tps else None
        self.gate_until = now
        self.pressure = 0.0
        self.last_cut = now
        self.limited = 0  # 429s seen
        self.cuts = 0  # times the rate was cut
        self._streak = 0  # 429s in a row without a Retry-After
        self._lock = asyncio.Lock()
        # How many may be in flight: unlimited until a 429, then halved per round trip and
        # grown by one per window of answers (TCP's congestion window), so a reopened gate
        # lets a few requests go, not every waiting worker at once.
        self.window = math.inf
        self.in_flight = 0
        self.last_halving = now
        self._freed = asyncio.Event()

    @property
    def rate(self) -> float | None:
        """Requests a second allowed now (``None``: unlimited)."""
        return self.requests.rate if self.requests is not None else None

    async def acquire(self, tokens: int = 0) -> float:
        """Wait until one request of ``tokens`` may be sent (callers are served in order);
        returns the time it may go (``time.monotonic()``), for ``rate_limited``."""
        async with self._lock:
            while True:
                now = time.monotonic()
                wait = self.gate_until - now
                if self.requests is not None:
                    wait = max(wait, self.requests.wait_time(1, now))
                if self.tokens is not None and tokens:
                    wait = max(wait, self.tokens.wait_time(tokens, now))
                if wait <= 0 and self.in_flight >= self.window:
                    self._freed.clear()
                    await self._freed.wait()  # a request in flight must end first
                    continue
                if wait <= 0:
                    if self.requests is not None:
                        self.requests.take(1, now)
                    if self.tokens is not None and tokens:
                        self.tokens.take(tokens, now)
                    self.in_flight += 1
                    return now
                await asyncio.sleep(wait)

    def release(self) -> None:
        """A request that ``acquire`` let go has ended (answered or not)."""
        self.in_flight -= 1
        self._freed.set()

    def debit(self, tokens: int) -> None:
        """Count ``tokens`` more against the token bucket (an answer longer than reserved)."""
        if self.tokens is not None and tokens > 0:
            self.tokens.take(tokens, time.monotonic())

    def succeeded(self) -> None:
        self._streak = 0
        if self.window != math.inf:  # +1 request in flight per window's worth of answers
            self.window += 1.0 / self.window
            if self.window > MAX_WINDOW:
                self.window = math.inf
        self.pressure *= 1 - PRESSURE_WEIGHT
        bucket, top = self.requests, self.max_rate
        if bucket is not None and top is not None and bucket.rate < top:
            # +RECOVER_PER_SECOND of the top rate per second at the current rate.
            bucket.rate = min(top, bucket.rate + top * RECOVER_PER_SECOND / bucket.rate)
            bucket.capacity = max(1.0, bucket.rate * self.limits.burst)

    def rate_limited(self, retry_after: float | None, sent: float | None = None) -> float:
        """Record a 429 to a request sent at ``sent``; close the gate; maybe cut the rate.

        Returns the gate's wait. Only a request sent after the last cut can cause another
        (one cut per round trip, as in TCP's congestion control).
        """
        now = time.monotonic()
        self.limited += 1
        self.pressure = self.pressure * (1 - PRESSURE_WEIGHT) + PRESSURE_WEIGHT
        if retry_after is None:
            self._streak += 1
            wait = min(self.backoff * 2.0 ** (self._streak - 1), self.max_backoff)
        else:
            wait = min(max(retry_after, 0.0), self.max_backoff)
        self.gate_until = max(self.gate_until, now + wait)
        if self.pressure > PRESSURE_CUT and (sent is None or sent >= self.last_halving):
            # The requests in flight at once were too many: half as many (at least one).
            self.window = max(1.0, min(self.window, self.in_flight + 1.0) / 2)
            self.last_halving = now
        bucket, top = self.requests, self.max_rate
        if (
            bucket is not None
            and top is not None
            and self.pressure > PRESSURE_CUT
            and (sent is None or sent >= self.last_cut)
        ):
            bucket.rate = max(top * MIN_SHARE, bucket.rate * CUT_FACTOR)
            bucket.capacity = max(1.0, bucket.rate * self.limits.burst)
            bucket.tokens = min(bucket.tokens, 0.0)
            self.last_cut = now
            self.cuts += 1
        return wait

    def __repr__(self) -> str:
        rate = "unlimited" if self.rate is None else f"{self.rate * 60:.0f} rpm"
        return f"<AdaptiveLimiter {rate} limited={self.limited} cuts={self.cuts}>"
