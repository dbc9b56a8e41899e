"""``SyncCache``: the blocking twin of ``CacheService`` for notebooks and scripts.

Redis (and any other provider) runs on nbinfra's background loop through
``nbinfra._loop.run_sync``. The in-memory provider is pure Python, so its calls are made
directly on the caller's thread: no loop, no thread hop, a few microseconds per ``get``.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar, cast, overload

from nbinfra._loop import run_sync
from nbinfra.cache.base import escape_glob
from nbinfra.cache.memory import InMemoryCacheProvider
from nbinfra.cache.service import CacheService
from nbinfra.cache.stats import CacheStats
from nbinfra.errors import CacheError

__all__ = ["SyncCache"]

T = TypeVar("T")
R = TypeVar("R")
_perf = time.perf_counter


class SyncCache:
    """Blocking cache API over a ``CacheService`` (see the module docstring)."""

    def __init__(self, service: CacheService) -> None:
        self.service = service
        provider = service.provider
        self._mem = provider if isinstance(provider, InMemoryCacheProvider) else None

    @property
    def namespace(self) -> str:
        return self.service.namespace

    def get(self, key: str | int, default: Any = None) -> Any:
        mem = self._mem
        if mem is None:
            return run_sync(self.service.get(key, default))
        svc = self.service
        k = svc.prefix + key if type(key) is str else svc._key(key)
        t0 = _perf()
        return svc._hit(mem.get_sync(k), t0, default, k)

    def set(self, key: str | int, value: Any, ttl: float | None = None) -> bool:
        mem = self._mem
        if mem is None:
            return run_sync(self.service.set(key, value, ttl))
        svc = self.service
        k = svc.prefix + key if type(key) is str else svc._key(key)
        with svc._counted:
            data = svc._dumps(value)
        t0 = _perf()
        mem.set_sync(k, data, svc.default_ttl if ttl is None else ttl)
        stats = svc._stats
        stats.latency(_perf() - t0)
        stats.sets += 1
        return True

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
        mem = self._mem
        if mem is None:
            return run_sync(self.service.keys(pattern))
        cut = len(self.service.prefix)
        found = mem.keys_sync(escape_glob(self.service.prefix) + pattern)
        return sorted(k[cut:] for k in found)

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
        """The cached value, or ``loader()``'s result (run once per cold key).

        A plain function runs on the calling thread; a coroutine function on the loop.
        """
        mem = self._mem
        if mem is None or inspect.iscoroutinefunction(loader):
            got = run_sync(self.service.get_or_set(key, loader, ttl, lock_timeout=lock_timeout))
            return cast(T, got)
        return cast(T, self._get_or_set_local(mem, key, loader, ttl, lock_timeout))

    def _get_or_set_local(
        self,
        mem: InMemoryCacheProvider,
        key: str | int,
        loader: Callable[[], Any],
        ttl: float | None,
        lock_timeout: float,
    ) -> Any:
        svc = self.service
        k = svc._key(key)
        t0 = _perf()
        data = mem.get_sync(k)
        if data is not None:
            return svc._hit(data, t0, None, k)
        lock = f"nbinfra:lock:{k}"
        deadline = time.monotonic() + lock_timeout
        delay = 0.0005
        token = mem.acquire_lock_sync(lock, lock_timeout)
        while token is None:  # another thread is loading it
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
            data = mem.get_sync(k)
            if data is not None:
                return svc._hit(data, t0, None, k)
            if time.monotonic() >= deadline:
                break
            token = mem.acquire_lock_sync(lock, lock_timeout)
        try:
            data = mem.get_sync(k)
            if data is not None:
                return svc._hit(data, t0, None, k)
            value = loader()
            if inspect.isawaitable(value):
                value = run_sync(_await(value))
            with svc._counted:
                data = svc._dumps(value)
            mem.set_sync(k, data, svc._ttl(ttl))
            svc._stats.misses += 1
            svc._stats.sets += 1
            return value
        finally:
            if token is not None:
                mem.release_lock_sync(lock, token)

    def stats(self) -> CacheStats:
        return self.service.stats()

    def reset_stats(self) -> None:
        self.service.reset_stats()

    def health(self) -> Any:
        return run_sync(self.service.health())

    def _run(self, coro: Coroutine[Any, Any, R]) -> R:
        if self._mem is not None:
            # Memory coroutines never suspend: drive them here instead of on the loop.
            try:
                coro.send(None)
            except StopIteration as stop:
                return cast(R, stop.value)
            coro.close()
            raise CacheError("An in-memory cache operation tried to suspend; this is a bug.")
        return run_sync(coro)

    def __repr__(self) -> str:
        return f"<SyncCache {self.namespace!r} on {getattr(self.service.provider, 'kind', '?')}>"


async def _await(value: Awaitable[T]) -> T:
    return await value
