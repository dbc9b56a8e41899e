"""``SyncCache``: the blocking twin of ``CacheService`` for notebooks and scripts.

Every call is the service's own algorithm. A provider with connections (Redis, Memcached)
runs on nbinfra's background loop through ``nbinfra._loop.run_sync``. An in-process one
(``InProcessProvider``, such as memory) is served on the caller's thread through the
service's ``*_blocking`` methods: no loop, no thread hop, a few microseconds per ``get``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar, cast, overload

from nbinfra._loop import run_sync
from nbinfra.cache.service import CacheService
from nbinfra.cache.stats import CacheStats
from nbinfra.errors import CacheError

__all__ = ["SyncCache"]

T = TypeVar("T")
R = TypeVar("R")


class SyncCache:
    """Blocking cache API over a ``CacheService`` (see the module docstring)."""

    def __init__(self, service: CacheService) -> None:
        self.service = service
        self._local = service.in_process

    @property
    def namespace(self) -> str:
        return self.service.namespace

    def get(self, key: str | int, default: Any = None) -> Any:
        if self._local:
            return self.service.get_blocking(key, default)
        return run_sync(self.service.get(key, default))

    def set(self, key: str | int, value: Any, ttl: float | None = None) -> bool:
        if self._local:
            return self.service.set_blocking(key, value, ttl)
        return run_sync(self.service.set(key, value, ttl))

    def add(self, key: str | int, value: Any, ttl: float | None = None) -> bool:
        return self._run(self.service.add(key, value, ttl))

    def delete(self, key: str | int) -> bool:
        return self._run(self.service.delete(key))

    def exists(self, key: str | int) -> bool:
        return self._run(self.service.exists(key))

    def ttl(self, key: str | int) -> float | None:
        return self._run(self.service.ttl(key))

    def expire(self, key: str | int, ttl: float | None) -> bool:
        return self._run(self.service.expire(key, ttl))

    def incr(self, key: str | int, delta: int = 1, ttl: float | None = None) -> int:
        return self._run(self.service.incr(key, delta, ttl))

    def decr(self, key: str | int, delta: int = 1, ttl: float | None = None) -> int:
        return self._run(self.service.decr(key, delta, ttl))

    def get_many(self, keys: Iterable[str | int]) -> dict[str | int, Any]:
        return self._run(self.service.get_many(keys))

    def set_many(self, items: Mapping[str | int, Any], ttl: float | None = None) -> None:
        self._run(self.service.set_many(items, ttl))

    def delete_many(self, keys: Iterable[str | int]) -> int:
        return self._run(self.service.delete_many(keys))

    def keys(self, pattern: str = "*") -> list[str]:
        if self._local:
            return self.service.keys_blocking(pattern)
        return run_sync(self.service.keys(pattern))

    def clear(self) -> int:
        return self._run(self.service.clear())

    @overload
    def get_or_set(
        self,
        key: str | int,
        loader: Callable[[], Awaitable[T]],
        ttl: float | None = None,
        *,
        lock_timeout: float = 30.0,
    ) -> T: ...
    @overload
    def get_or_set(
        self,
        key: str | int,
        loader: Callable[[], T],
        ttl: float | None = None,
        *,
        lock_timeout: float = 30.0,
    ) -> T: ...
    def get_or_set(
        self,
        key: str | int,
        loader: Callable[[], T] | Callable[[], Awaitable[T]],
        ttl: float | None = None,
        *,
        lock_timeout: float = 30.0,
    ) -> T:
        """The cached value, or ``loader()``'s result (run once per cold key, whichever
        thread or loop asks): ``CacheService.get_or_set``, so a coroutine function runs on
        nbinfra's loop and any other callable in a worker thread, on every backend."""
        got = self.service.get_or_set_blocking(key, loader, ttl, lock_timeout=lock_timeout)
        return cast(T, got)

    def stats(self) -> CacheStats:
        return self.service.stats()

    def reset_stats(self) -> None:
        self.service.reset_stats()

    def health(self) -> Any:
        return run_sync(self.service.health())

    def _run(self, coro: Coroutine[Any, Any, R]) -> R:
        if self._local:
            # In-process coroutines never suspend: drive them here instead of on the loop.
            try:
                coro.send(None)
            except StopIteration as stop:
                return cast(R, stop.value)
            coro.close()
            raise CacheError("An in-process cache operation tried to suspend; this is a bug.")
        return run_sync(coro)

    def __repr__(self) -> str:
        return f"<SyncCache {self.namespace!r} on {getattr(self.service.provider, 'kind', '?')}>"
