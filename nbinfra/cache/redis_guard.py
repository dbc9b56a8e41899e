"""What the Redis provider does when Redis fails: one error boundary, breaker, fallback.

``RedisGuard.boundary`` is the only place a driver exception becomes an nbinfra error, by
its type (``ERRORS``): "Redis is not answering" becomes ``CacheUnavailableError`` and
counts against the circuit breaker; a refused command (``ResponseError``) becomes
``CacheError`` and counts as an answer. Anything else passes unchanged.

While the circuit is open, or when a command failed with ``CacheUnavailableError``,
``refuse``/``failover`` hand out the in-process tier (``fallback: memory``) or raise. The
tier is emptied when the circuit closes, so nothing written during an outage goes stale
next to Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis import exceptions as rexc

from nbinfra.cache.breaker import CLOSED, CircuitBreaker
from nbinfra.cache.memory import InMemoryCacheProvider
from nbinfra.errors import CacheError, CacheUnavailableError
from nbinfra.logs import get_logger

__all__ = ["ERRORS", "RedisGuard"]

log = get_logger(__name__)

# Driver exception -> nbinfra error; the entry for the most specific class wins.
ERRORS: dict[type[BaseException], type[CacheError]] = {
    rexc.ConnectionError: CacheUnavailableError,
    rexc.TimeoutError: CacheUnavailableError,
    asyncio.TimeoutError: CacheUnavailableError,
    OSError: CacheUnavailableError,
    rexc.ResponseError: CacheError,
}


def mapped(exc: BaseException) -> type[CacheError] | None:
    """The nbinfra error ``exc`` becomes, or ``None`` when it passes unchanged."""
    if isinstance(exc, CacheError):
        return None  # already ours (CacheUnavailableError is also an OSError)
    for cls in type(exc).__mro__:
        found = ERRORS.get(cls)
        if found is not None:
            return found
    return None


class RedisGuard:
    """The breaker and fallback tier of one provider, and its error boundary."""

    def __init__(
        self,
        address: str,
        target: str,
        *,
        failure_threshold: int,
        reset_timeout: float,
        fallback: bool,
    ) -> None:
        self.address = address
        self.breaker = CircuitBreaker(
            target,
            failure_threshold=failure_threshold,
            reset_timeout=reset_timeout,
            on_change=self._changed,
        )
        self.fallback: InMemoryCacheProvider | None = (
            InMemoryCacheProvider(max_size=10_000) if fallback else None
        )
        self.fallback_ops = 0

    def allow(self) -> bool:
        """May a command go to Redis now? (The closed circuit answers without a lock.)"""
        breaker = self.breaker
        return breaker._state is CLOSED or breaker.allow()

    @contextmanager
    def boundary(self, what: str, key: str = "") -> Iterator[None]:
        """Translate what the driver raises inside the block; feed the breaker."""
        try:
            yield
        except BaseException as exc:
            to = mapped(exc)
            if to is None:
                raise
            if to is CacheUnavailableError:
                self.breaker.failure()
                raise CacheUnavailableError(
                    f"Redis cache at {self.address} did not answer ({type(exc).__name__}: "
                    f"{exc}). Start Redis, fix cache.redis in application-cache.yaml, or set "
                    "cache.redis.fallback: memory."
                ) from exc
            self.answered()
            raise to(f"Cannot {what} {key!r}: {exc}." if key else f"Cannot {what}: {exc}.") from exc
        self.answered()

    def answered(self) -> None:
        """Redis answered: a failure streak (or an open circuit) ends."""
        breaker = self.breaker
        if breaker._state is not CLOSED or breaker._failures:
            breaker.success()

    def refuse(self) -> InMemoryCacheProvider:
        """The circuit is open: the fallback tier, or an immediate error."""
        if self.fallback is not None:
            self.fallback_ops += 1
            return self.fallback
        raise CacheUnavailableError(
            f"Redis cache at {self.address} is unavailable (circuit open after "
            f"{self.breaker.failure_threshold} consecutive failures; next try in "
            f"{self.breaker.retry_in():.1f} s). Start Redis, fix cache.redis in "
            "application-cache.yaml, or set cache.redis.fallback: memory."
        )

    def failover(self, exc: CacheUnavailableError) -> InMemoryCacheProvider | None:
        """After ``exc`` from the boundary: the fallback tier, or ``None`` to re-raise."""
        if self.fallback is None:
            return None
        self.fallback_ops += 1
        log.debug("redis cache %s failed (%s); served from memory", self.breaker.name, exc)
        return self.fallback

    def info(self) -> dict[str, Any]:
        breaker = self.breaker
        return {
            "breaker": breaker.state,
            "breaker_opened": breaker.opened_count,
            "failures": breaker.failures_total,
            "fallback": "memory" if self.fallback is not None else "none",
            "fallback_ops": self.fallback_ops,
        }

    def _changed(self, old: str, new: str) -> None:
        if new == CLOSED and self.fallback is not None:
            # Data written to memory during the outage would go stale next to Redis.
            self.fallback.clear_sync("")
