"""Redis cache provider on ``redis.asyncio``: pooled, fail-fast, behind a circuit breaker.

- One connection pool per event loop (asyncio connections belong to the loop that made
  them), so the notebook's loop, nbinfra's background loop and a script's ``asyncio.run``
  each talk to Redis directly, without hopping between threads.
- Low socket timeouts and no driver retries: a cache that cannot answer quickly is down.
  After ``failure_threshold`` consecutive failures the circuit opens; calls then fail at
  once (or, with ``fallback: memory``, are served by an in-process tier) until one probe
  per ``reset_timeout`` succeeds. The in-process tier is dropped when Redis is back.
- Batches are one round trip (``MGET``, pipelined ``SET PX``); a namespace is cleared with
  ``SCAN MATCH <escaped prefix>*`` + ``UNLINK``, never ``KEYS`` or ``FLUSHDB``.
- URLs: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``redis+sentinel://h1:p1,h2:p2/
  service/db`` and ``redis+cluster://host:port`` (cluster mode also with ``cluster: true``).
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from redis import exceptions as rexc

from nbinfra.cache.base import BaseCacheProvider, escape_glob, too_large, ttl_ms
from nbinfra.cache.breaker import CLOSED, CircuitBreaker
from nbinfra.cache.memory import InMemoryCacheProvider
from nbinfra.cache.redis_connect import close_client, describe, make_client
from nbinfra.cache.registry import CacheRegistry
from nbinfra.cache.settings import RedisSettings
from nbinfra.errors import CacheError, CacheUnavailableError, ConfigError
from nbinfra.logs import get_logger

__all__ = ["RedisCacheProvider"]

log = get_logger(__name__)

# Failures that mean "Redis is not answering" (they trip the breaker).
_DOWN = (rexc.ConnectionError, rexc.TimeoutError, OSError, asyncio.TimeoutError)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_INCR_TTL = """
local existed = redis.call('exists', KEYS[1])
local value = redis.call('incrby', KEYS[1], ARGV[1])
if existed == 0 then redis.call('pexpire', KEYS[1], ARGV[2]) end
return value
"""
_BATCH = 500  # keys per UNLINK during a namespace clear


@CacheRegistry.register("redis")
class RedisCacheProvider(BaseCacheProvider):
    """Redis-backed provider; see the module docstring for behaviour under failure."""

    kind = "redis"
    settings_class = RedisSettings

    def __init__(self, settings: RedisSettings | None = None, **overrides: Any) -> None:
        base = settings or RedisSettings()
        breaker_opts = {
            k: overrides.pop(k) for k in ("failure_threshold", "reset_timeout") if k in overrides
        }
        try:
            cfg = replace(base, **overrides)
        except TypeError as exc:
            raise ConfigError(f"Unknown Redis cache option: {exc}") from None
        if breaker_opts:
            cfg.breaker = replace(cfg.breaker, **breaker_opts)
        self.settings = cfg
        self._mode, self._address, self._target = describe(cfg)
        self.breaker = CircuitBreaker(
            self._target,
            failure_threshold=cfg.breaker.failure_threshold,
            reset_timeout=cfg.breaker.reset_timeout,
            on_change=self._breaker_changed,
        )
        self.fallback: InMemoryCacheProvider | None = (
            InMemoryCacheProvider(max_size=10_000) if cfg.fallback == "memory" else None
        )
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[Any, asyncio.Semaphore]
        ] = weakref.WeakKeyDictionary()
        self._last: tuple[Any, Any, Any] = (None, None, None)
        self.fallback_ops = 0
        self._closed = False

    # -- plumbing -------------------------------------------------------------------------
    @property
    def target(self) -> str:
        return self._target

    @property
    def is_cluster(self) -> bool:
        return self._mode == "cluster"

    def _slot(self) -> tuple[Any, asyncio.Semaphore]:
        """This loop's client and the gate bounding its concurrent commands."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last[0] is loop:
            return last[1], last[2]
        found = self._clients.get(loop)
        if found is None:
            if self._closed:
                raise CacheError("This Redis cache provider is closed; create a new one.")
            # The gate makes callers queue for a connection instead of failing with "too
            # many connections"; a plain pool under it is cheaper than a blocking pool.
            found = (self._make_client(), asyncio.Semaphore(self.settings.max_connections))
            self._clients[loop] = found
            log.info("redis cache connecting to %s", self._target)
        self._last = (loop, *found)
        return found

    def _client(self) -> Any:
        return self._slot()[0]

    def _make_client(self) -> Any:
        return make_client(self.settings, self._mode)

    def _refuse(self) -> InMemoryCacheProvider:
        """The breaker is open: the fallback tier, or an immediate error."""
        if self.fallback is not None:
            self.fallback_ops += 1
            return self.fallback
        raise CacheUnavailableError(
            f"Redis cache at {self._address} is unavailable (circuit open after "
            f"{self.breaker.failure_threshold} consecutive failures; next try in "
            f"{self.breaker.retry_in():.1f} s). Start Redis, fix cache.redis in "
            "application-cache.yaml, or set cache.redis.fallback: memory."
        )

    def _failed(self, exc: BaseException) -> InMemoryCacheProvider:
        """Record a failure; the fallback tier, or the translated error."""
        self.breaker.failure()
        if self.fallback is not None:
            self.fallback_ops += 1
            log.debug("redis cache %s failed (%r); served from memory", self._target, exc)
            return self.fallback
        raise CacheUnavailableError(
            f"Redis cache at {self._address} did not answer ({type(exc).__name__}: {exc}). "
            "Start Redis, fix cache.redis in application-cache.yaml, or set "
            "cache.redis.fallback: memory."
        ) from exc

    def _ok(self) -> None:
        breaker = self.breaker
        if breaker._state is not CLOSED or breaker._failures:
            breaker.success()

    def _breaker_changed(self, old: str, new: str) -> None:
        if new == CLOSED and self.fallback is not None:
            # Data written to memory during the outage would go stale next to Redis.
            self.fallback.clear_sync("")

    # -- single keys ----------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        if self.breaker._state is not CLOSED and not self.breaker.allow():
            return await self._refuse().get(key)
        try:
            client, gate = self._slot()
            async with gate:
                data = await client.get(key)
        except _DOWN as exc:
            return await self._failed(exc).get(key)
        self._ok()
        return data  # type: ignore[no-any-return]

    async def set(
        self, key: str, value: bytes, ttl: float | None = None, *, nx: bool = False
    ) -> bool:
        if len(value) > self.settings.max_value_size:
            raise too_large(key, len(value), self.settings.max_value_size)
        ms = ttl_ms(ttl)
        if self.breaker._state is not CLOSED and not self.breaker.allow():
            return await self._refuse().set(key, value, ttl, nx=nx)
        try:
            client, gate = self._slot()
            async with gate:
                done = await client.set(key, value, px=ms, nx=nx)
        except _DOWN as exc:
            return await self._failed(exc).set(key, value, ttl, nx=nx)
        self._ok()
        return bool(done)

    async def delete(self, key: str) -> bool:
        if not self.breaker.allow():
            return await self._refuse().delete(key)
        try:
            client, gate = self._slot()
            async with gate:
                n = await client.unlink(key)
        except _DOWN as exc:
            return await self._failed(exc).delete(key)
        self._ok()
        return bool(n)

    async def exists(self, key: str) -> bool:
        if not self.breaker.allow():
            return await self._refuse().exists(key)
        try:
            client, gate = self._slot()
            async with gate:
                n = await client.exists(key)
        except _DOWN as exc:
            return await self._failed(exc).exists(key)
        self._ok()
        return bool(n)

    async def ttl(self, key: str) -> float | None:
        if not self.breaker.allow():
            return await self._refuse().ttl(key)
        try:
            client, gate = self._slot()
            async with gate:
                ms = await client.pttl(key)
        except _DOWN as exc:
            return await self._failed(exc).ttl(key)
        self._ok()
        if ms == -2:
            return None
        if ms == -1:
            return math.inf
        return float(ms) / 1000

    async def expire(self, key: str, ttl: float | None) -> bool:
        ms = ttl_ms(ttl)
        if not self.breaker.allow():
            return await self._refuse().expire(key, ttl)
        client, gate = self._slot()
        try:
            async with gate:
                if ms is None:
                    async with client.pipeline(transaction=False) as pipe:
                        pipe.exists(key)
                        pipe.persist(key)
                        existed, _ = await pipe.execute()
                    done = bool(existed)
                else:
                    done = bool(await client.pexpire(key, ms))
        except _DOWN as exc:
            return await self._failed(exc).expire(key, ttl)
        self._ok()
        return done

    async def incr(self, key: str, delta: int = 1, ttl: float | None = None) -> int:
        ms = ttl_ms(ttl)
        if not self.breaker.allow():
            return await self._refuse().incr(key, delta, ttl)
        client, gate = self._slot()
        try:
            async with gate:
                if ms is None:
                    value = await client.incrby(key, delta)
                else:
                    value = await client.eval(_INCR_TTL, 1, key, delta, ms)
        except _DOWN as exc:
            return await self._failed(exc).incr(key, delta, ttl)
        except rexc.ResponseError as exc:
            self._ok()
            raise CacheError(
                f"Cannot increment {key!r}: its value is not an integer ({exc})."
            ) from exc
        self._ok()
        return int(value)

    # -- batches --------------------------------------------------------------------------
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        if not self.breaker.allow():
            return await self._refuse().get_many(keys)
        client, gate = self._slot()
        try:
            async with gate:
                if self._mode == "cluster":
                    values = await client.mget_nonatomic(keys)
                else:
                    values = await client.mget(keys)
        except _DOWN as exc:
            return await self._failed(exc).get_many(keys)
        self._ok()
        return values  # type: ignore[no-any-return]

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        if not items:
            return
        limit = self.settings.max_value_size
        for key, value in items.items():
            if len(value) > limit:
                raise too_large(key, len(value), limit)
        ms = ttl_ms(ttl)
        if not self.breaker.allow():
            return await self._refuse().set_many(items, ttl)
        client, gate = self._slot()
        try:
            async with gate:
                if ms is None:
                    if self._mode == "cluster":
                        await client.mset_nonatomic(items)
                    else:
                        await client.mset(items)
                else:
                    async with client.pipeline(transaction=False) as pipe:
                        for key, value in items.items():
                            pipe.set(key, value, px=ms)
                        await pipe.execute()
        except _DOWN as exc:
            return await self._failed(exc).set_many(items, ttl)
        self._ok()

    async def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        if not self.breaker.allow():
            return await self._refuse().delete_many(keys)
        try:
            client, gate = self._slot()
            async with gate:
                n = await client.unlink(*keys)
        except _DOWN as exc:
            return await self._failed(exc).delete_many(keys)
        self._ok()
        return int(n)

    # -- namespaces -----------------------------------------------------------------------
    async def clear(self, prefix: str) -> int:
        if not self.breaker.allow():
            return await self._refuse().clear(prefix)
        client, gate = self._slot()
        raw = prefix.encode()
        pattern = escape_glob(prefix) + "*"
        count = 0
        batch: list[bytes] = []
        try:
            async with gate:
                async for key in client.scan_iter(match=pattern, count=1000):
                    if not key.startswith(raw):  # belt and braces: never delete outside prefix
                        continue
                    batch.append(key)
                    if len(batch) >= _BATCH:
                        count += await client.unlink(*batch)
                        batch = []
                if batch:
                    count += await client.unlink(*batch)
        except _DOWN as exc:
            return await self._failed(exc).clear(prefix)
        self._ok()
        if self.fallback is not None:
            self.fallback.clear_sync(prefix)
        return count

    async def scan(self, match: str = "*", *, count: int = 1000) -> AsyncIterator[str]:
        if not self.breaker.allow():
            async for key in self._refuse().scan(match):
                yield key
            return
        client = self._client()
        seen: set[bytes] = set()  # SCAN may return a key twice across rehashes
        try:
            async for key in client.scan_iter(match=match, count=count):
                if key in seen:
                    continue
                seen.add(key)
                yield key.decode()
        except _DOWN as exc:
            self._failed(exc)  # raises without a fallback; partial scans are not mixed
            return
        self._ok()

    # -- locks ----------------------------------------------------------------------------
    async def acquire_lock(self, name: str, ttl: float) -> str | None:
        if not self.breaker.allow():
            return await self._refuse().acquire_lock(name, ttl)
        token = self.new_token()
        try:
            client, gate = self._slot()
            async with gate:
                ok = await client.set(name, token.encode(), nx=True, px=ttl_ms(ttl))
        except _DOWN as exc:
            return await self._failed(exc).acquire_lock(name, ttl)
        self._ok()
        return token if ok else None

    async def release_lock(self, name: str, token: str) -> bool:
        if self.fallback is not None and self.fallback.release_lock_sync(name, token):
            return True
        if not self.breaker.allow():
            return False
        try:
            client, gate = self._slot()
            async with gate:
                n = await client.eval(_RELEASE, 1, name, token)
        except _DOWN as exc:
            self.breaker.failure()
            log.debug("releasing lock %s failed: %r (it expires by itself)", name, exc)
            return False
        self._ok()
        return bool(n)

    # -- lifecycle ------------------------------------------------------------------------
    async def ping(self) -> bool:
        try:
            client, gate = self._slot()
            async with gate:
                ok = await client.ping()
        except _DOWN as exc:
            self.breaker.failure()
            raise CacheUnavailableError(
                f"Redis cache at {self._address} did not answer ({type(exc).__name__}: {exc})."
            ) from exc
        self._ok()
        return bool(ok)

    async def health(self) -> Any:
        status = await super().health()
        if status.ok:
            try:
                client, gate = self._slot()
                async with gate:
                    info = await client.info("server")
                version = f"redis {info.get('redis_version', '?')}"
                status = replace(status, server_version=version)
            except (*_DOWN, rexc.ResponseError):
                pass
        return status

    def info(self) -> dict[str, Any]:
        return {
            "target": self._target,
            "breaker": self.breaker.state,
            "breaker_opened": self.breaker.opened_count,
            "failures": self.breaker.failures_total,
            "fallback": "memory" if self.fallback is not None else "none",
            "fallback_ops": self.fallback_ops,
        }

    async def close(self) -> None:
        self._closed = True
        current = asyncio.get_running_loop()
        clients = list(self._clients.items())
        self._clients.clear()
        self._last = (None, None, None)
        for loop, (client, _gate) in clients:
            try:
                if loop is current:
                    await close_client(client)
                elif loop.is_running() and not loop.is_closed():
                    fut = asyncio.run_coroutine_threadsafe(close_client(client), loop)
                    await asyncio.wait_for(asyncio.wrap_future(fut), 2.0)
                # A closed loop took its sockets with it; nothing to do.
            except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - closing
                log.debug("closing redis client failed: %r", exc)

    def __repr__(self) -> str:
        return f"<RedisCacheProvider {self._target} breaker={self.breaker.state}>"
