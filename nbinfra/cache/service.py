"""``CacheService``: a namespaced, serializing, measured view of a cache provider.

Keys are stored as ``namespace:key``. Values go through the configured serializer (JSON by
default), so what comes back is always a fresh copy and both backends behave the same.
``None`` is a value like any other: a miss returns ``default`` (``None`` unless given) and
``MISS`` can be passed as ``default`` to tell the two apart.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from enum import Enum
from typing import Any, TypeVar, cast, overload

from nbinfra._loop import run_sync
from nbinfra.cache.base import BaseCacheProvider, InProcessProvider, escape_glob
from nbinfra.cache.factory import CacheFactory, cache_config
from nbinfra.cache.flight import Outcome, run_loader, under_lock
from nbinfra.cache.namespaces import MISS, all_stats, shared_state
from nbinfra.cache.serializers import Serializer, get_serializer
from nbinfra.cache.stats import CacheStats, ErrorCount
from nbinfra.config import validate
from nbinfra.errors import CacheError, SerializationError
from nbinfra.session import Session
from nbinfra.session import session as default_session

__all__ = ["MISS", "CacheService", "all_stats"]

T = TypeVar("T")
_perf = time.perf_counter


class CacheService:
    """Namespaced cache API over a provider; the seed's ``CacheService``.

    ``default_ttl`` (seconds; ``0`` = no expiry) defaults to ``cache.default_ttl``;
    ``cache_type`` to ``cache.backend``; ``serializer`` to ``cache.serializer``.
    """

    def __init__(
        self,
        namespace: str,
        default_ttl: float | None = None,
        cache_type: str | Enum | None = None,
        *,
        serializer: str | Serializer | None = None,
        session: Session | None = None,
        provider: BaseCacheProvider | None = None,
    ) -> None:
        if not isinstance(namespace, str) or not namespace:
            raise ValueError(f"A cache namespace must be a non-empty string, got {namespace!r}.")
        if default_ttl is not None and (default_ttl < 0 or not math.isfinite(default_ttl)):
            raise ValueError(f"default_ttl must be >= 0 seconds (0 = no expiry), got {default_ttl}")
        sess = session or default_session()
        config = cache_config(sess)
        self.namespace = namespace
        self.prefix = f"{namespace}:"
        self.default_ttl: float = config.default_ttl if default_ttl is None else default_ttl
        self.session = sess
        if provider is None:
            provider = CacheFactory.create_cache(cache_type, session=sess)
        self.provider = provider
        if serializer is None or isinstance(serializer, str):
            name = serializer or config.serializer
            key = None
            if name == "pickle":
                from nbinfra._secrets import Secret

                path = "cache.pickle_hmac_key"
                key = validate(Secret, sess.settings.get(path, ""), path, sess.settings)
            serializer = get_serializer(name, hmac_key=key)
        self.serializer: Serializer = serializer
        self._dumps = serializer.dumps
        self._loads = serializer.loads
        backend = str(getattr(provider, "kind", "?"))
        shared = shared_state(sess, namespace, config.stats_window, backend)
        self._stats = shared.stats
        self._flights = shared.flights
        self._counted = ErrorCount(shared.stats)  # the error boundary of every call

    # -- helpers --------------------------------------------------------------------------
    def _key(self, key: str | int) -> str:
        if type(key) is str:
            return self.prefix + key
        if isinstance(key, (str, int)) and not isinstance(key, bool):
            return self.prefix + str(key)
        raise TypeError(f"Cache keys are strings (or ints), got {type(key).__name__}: {key!r}")

    def _ttl(self, ttl: float | None) -> float | None:
        return self.default_ttl if ttl is None else ttl

    def _hit(self, data: bytes | None, t0: float, default: Any, k: str) -> Any:
        stats = self._stats
        stats.latency(_perf() - t0)
        if data is None:
            stats.misses += 1
            return default
        with self._counted:
            try:
                value = self._loads(data)
            except SerializationError as exc:
                raise self._unreadable(k, exc) from exc.__cause__
        stats.hits += 1
        return value

    def _unreadable(self, k: str, exc: SerializationError) -> SerializationError:
        """``exc`` from decoding the value at ``k``, with the key named."""
        key = k[len(self.prefix) :] if k.startswith(self.prefix) else k
        return SerializationError(f"Key {key!r} in cache namespace {self.namespace!r}: {exc}")

    # -- single keys ----------------------------------------------------------------------
    async def get(self, key: str | int, default: Any = None) -> Any:
        """The cached value, or ``default`` on a miss (``MISS`` tells a cached ``None``)."""
        k = self._key(key)
        t0 = _perf()
        with self._counted:
            data = await self.provider.get(k)
        return self._hit(data, t0, default, k)

    async def set(self, key: str | int, value: Any, ttl: float | None = None) -> bool:
        """Store ``value`` for ``ttl`` seconds (default ``default_ttl``; ``0`` = forever)."""
        k = self._key(key)
        with self._counted:
            data = self._dumps(value)
            t0 = _perf()
            await self.provider.set(k, data, self._ttl(ttl))
        self._stats.latency(_perf() - t0)
        self._stats.sets += 1
        return True

    async def add(self, key: str | int, value: Any, ttl: float | None = None) -> bool:
        """Store only if ``key`` is absent; True when stored."""
        k = self._key(key)
        with self._counted:
            done = await self.provider.set(k, self._dumps(value), self._ttl(ttl), nx=True)
        if done:
            self._stats.sets += 1
        return bool(done)

    async def delete(self, key: str | int) -> bool:
        """True when the key existed."""
        k = self._key(key)
        with self._counted:
            done = await self.provider.delete(k)
        self._stats.deletes += 1
        return bool(done)

    async def exists(self, key: str | int) -> bool:
        k = self._key(key)
        with self._counted:
            return bool(await self.provider.exists(k))

    async def ttl(self, key: str | int) -> float | None:
        """Seconds left; ``math.inf`` when it never expires; ``None`` when absent."""
        k = self._key(key)
        with self._counted:
            return await self.provider.ttl(k)

    async def expire(self, key: str | int, ttl: float | None) -> bool:
        """New TTL for an existing key (``0``/``None`` = never expire)."""
        k = self._key(key)
        with self._counted:
            return bool(await self.provider.expire(k, ttl))

    async def incr(self, key: str | int, delta: int = 1, ttl: float | None = None) -> int:
        """Atomically add ``delta``; a new key starts at 0 and gets ``ttl`` (or the default)."""
        k = self._key(key)
        with self._counted:
            return await self.provider.incr(k, delta, self._ttl(ttl))

    async def decr(self, key: str | int, delta: int = 1, ttl: float | None = None) -> int:
        return await self.incr(key, -delta, ttl)

    # -- batches --------------------------------------------------------------------------
    async def get_many(self, keys: Iterable[str | int]) -> dict[str | int, Any]:
        """``{key: value}`` for the keys that are cached (one round trip)."""
        wanted = list(keys)
        if not wanted:
            return {}
        full = [self._key(k) for k in wanted]
        t0 = _perf()
        with self._counted:
            values = await self.provider.get_many(full)
        stats = self._stats
        stats.latency(_perf() - t0)
        loads = self._loads
        out: dict[str | int, Any] = {}
        key: str | int = ""
        with self._counted:
            try:
                for key, data in zip(wanted, values, strict=True):
                    if data is not None:
                        out[key] = loads(data)
            except SerializationError as exc:
                raise self._unreadable(self._key(key), exc) from exc.__cause__
        stats.hits += len(out)
        stats.misses += len(wanted) - len(out)
        return out

    async def set_many(self, items: Mapping[str | int, Any], ttl: float | None = None) -> None:
        """Store every item with one TTL (one round trip)."""
        if not items:
            return
        dumps = self._dumps
        prefix = self.prefix
        with self._counted:
            payload = {
                (prefix + k if type(k) is str else self._key(k)): dumps(v) for k, v in items.items()
            }
            t0 = _perf()
            await self.provider.set_many(payload, self._ttl(ttl))
        self._stats.latency(_perf() - t0)
        self._stats.sets += len(payload)

    async def delete_many(self, keys: Iterable[str | int]) -> int:
        """How many of ``keys`` existed."""
        full = [self._key(k) for k in keys]
        with self._counted:
            n = await self.provider.delete_many(full)
        self._stats.deletes += len(full)
        return int(n)

    # -- the namespace --------------------------------------------------------------------
    async def scan(self, pattern: str = "*") -> AsyncIterator[str]:
        """Keys of this namespace matching the Redis glob ``pattern``."""
        cut = len(self.prefix)
        async for full in self.provider.scan(escape_glob(self.prefix) + pattern):
            yield full[cut:]

    async def keys(self, pattern: str = "*") -> list[str]:
        """Every key of this namespace matching ``pattern``, sorted."""
        return sorted([k async for k in self.scan(pattern)])

    async def clear(self) -> int:
        """Delete every key of this namespace (and of nested ``namespace:sub`` ones)."""
        with self._counted:
            return await self.provider.clear(self.prefix)

    # -- compute-once ---------------------------------------------------------------------
    @overload
    async def get_or_set(
        self,
        key: str | int,
        loader: Callable[[], Awaitable[T]],
        ttl: float | None = None,
        *,
        lock_timeout: float = 30.0,
    ) -> T: ...
    @overload
    async def get_or_set(
        self,
        key: str | int,
        loader: Callable[[], T],
        ttl: float | None = None,
        *,
        lock_timeout: float = 30.0,
    ) -> T: ...
    async def get_or_set(
        self,
        key: str | int,
        loader: Callable[[], T] | Callable[[], Awaitable[T]],
        ttl: float | None = None,
        *,
        lock_timeout: float = 30.0,
    ) -> T:
        """The cached value, or ``loader()``'s result stored for ``ttl``.

        Concurrent callers of one cold key run ``loader`` once: callers in this process
        wait for the first one; other processes wait on a lock in the backend (a Redis
        lock for Redis). Loader errors reach every waiter and nothing is cached.

        An ``async def`` loader (or a ``functools.partial`` of one) runs on this loop; any
        other callable runs in a worker thread (``asyncio.to_thread``), so a slow one
        blocks nothing else and may call nbinfra's synchronous API. Whatever awaitable a
        plain function returns is awaited here.
        """
        k = self._key(key)
        t0 = _perf()
        found, value, data = await self._flights.share(
            k, lambda: self._lead(k, loader, ttl, lock_timeout)
        )
        if found:
            return self._hit(data, t0, None, k)  # type: ignore[no-any-return]
        self._stats.misses += 1
        return cast(T, value)

    async def _lead(
        self, k: str, loader: Callable[[], Any], ttl: float | None, lock_timeout: float
    ) -> Outcome:
        """What the first caller of a key does: read it, else load it under the lock."""

        async def load() -> tuple[Any, bytes]:
            value = await run_loader(loader)
            data = self._dumps(value)
            await self.provider.set(k, data, self._ttl(ttl))
            self._stats.sets += 1
            return value, data

        with self._counted:
            data = await self.provider.get(k)
            if data is not None:
                return True, None, data
            return await under_lock(self.provider, k, lock_timeout, load)

    # -- blocking, on the caller's thread (in-process providers) --------------------------
    @property
    def in_process(self) -> bool:
        """True when the provider is an ``InProcessProvider``: the ``*_blocking`` methods
        then serve this namespace on the caller's thread, with no event loop."""
        return isinstance(self.provider, InProcessProvider)

    def _local(self) -> InProcessProvider:
        provider = self.provider
        if isinstance(provider, InProcessProvider):
            return provider
        kind = getattr(provider, "kind", "?")
        raise CacheError(
            f"The {kind} cache provider is not in-process; use the async methods or .sync."
        )

    def get_blocking(self, key: str | int, default: Any = None) -> Any:
        """``get`` on the caller's thread."""
        provider = self._local()
        k = self._key(key)
        t0 = _perf()
        with self._counted:
            data = provider.get_sync(k)
        return self._hit(data, t0, default, k)

    def set_blocking(self, key: str | int, value: Any, ttl: float | None = None) -> bool:
        """``set`` on the caller's thread."""
        provider = self._local()
        k = self._key(key)
        with self._counted:
            data = self._dumps(value)
            t0 = _perf()
            provider.set_sync(k, data, self._ttl(ttl))
        self._stats.latency(_perf() - t0)
        self._stats.sets += 1
        return True

    def keys_blocking(self, pattern: str = "*") -> list[str]:
        """``keys`` on the caller's thread."""
        provider = self._local()
        cut = len(self.prefix)
        with self._counted:
            found = provider.keys_sync(escape_glob(self.prefix) + pattern)
        return sorted(k[cut:] for k in found)

    def get_or_set_blocking(
        self,
        key: str | int,
        loader: Callable[[], Any],
        ttl: float | None = None,
        *,
        lock_timeout: float = 30.0,
    ) -> Any:
        """``get_or_set`` from a thread that runs no event loop: a hit is read on this
        thread; a miss runs ``get_or_set`` itself on nbinfra's loop, so compute-once and
        where the loader runs are the same as from async code, on every backend."""
        if self.in_process:
            k = self._key(key)
            t0 = _perf()
            with self._counted:
                data = self._local().get_sync(k)
            if data is not None:
                return self._hit(data, t0, None, k)
        return run_sync(self.get_or_set(key, loader, ttl, lock_timeout=lock_timeout))

    # -- introspection --------------------------------------------------------------------
    def stats(self) -> CacheStats:
        """Hits, misses, errors and latency percentiles of this namespace (this session)."""
        extra: dict[str, Any] = {}
        info = getattr(self.provider, "info", None)
        if callable(info) and not inspect.iscoroutinefunction(info):
            try:
                extra = dict(info())
            except Exception:  # noqa: BLE001 - stats must not fail
                extra = {}
        return self._stats.snapshot(
            self.namespace, str(getattr(self.provider, "kind", "?")), **extra
        )

    def reset_stats(self) -> None:
        self._stats.reset()

    async def ping(self) -> bool:
        return await self.provider.ping()

    async def health(self) -> Any:
        """A ``HealthStatus`` for the backend."""
        return await self.provider.health()

    @property
    def sync(self) -> Any:
        """This cache with a blocking API (``SyncCache``), for notebooks and scripts."""
        from nbinfra.cache.sync import SyncCache

        return SyncCache(self)

    def __repr__(self) -> str:
        kind = getattr(self.provider, "kind", "?")
        return f"<CacheService {self.namespace!r} on {kind}, default_ttl={self.default_ttl}>"
