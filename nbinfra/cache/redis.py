"""Redis cache provider on ``redis.asyncio``: pooled, fail-fast, behind a circuit breaker.

- One client, on nbinfra's loop (asyncio connections belong to the loop that made them).
  A call awaited on any other loop (a notebook's top-level ``await``, a script's
  ``asyncio.run``) is forwarded there through ``nbinfra._loop.run_async``, as connection
  managers do; a key listing crosses once per page of keys, not per key.
- Low socket timeouts and no driver retries: a cache that cannot answer quickly is down.
  Every command goes through ``_call``: the error boundary of ``RedisGuard`` (see
  redis_guard.py) translates driver errors by type and feeds the circuit breaker; while
  the circuit is open, or after a failure, the fallback tier (``fallback: memory``)
  answers instead, or the call fails at once.
- Batches are one round trip (``MGET``, pipelined ``SET PX``); a namespace is cleared with
  ``SCAN MATCH <escaped prefix>*`` + ``UNLINK``, never ``KEYS`` or ``FLUSHDB``.
- URLs: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``redis+sentinel://h1:p1,h2:p2/
  service/db`` and ``redis+cluster://host:port`` (cluster mode also with ``cluster: true``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from nbinfra import _loop
from nbinfra.cache.base import BaseCacheProvider, escape_glob, too_large, ttl_ms
from nbinfra.cache.breaker import CircuitBreaker
from nbinfra.cache.memory import InMemoryCacheProvider
from nbinfra.cache.redis_connect import close_client, describe, make_client
from nbinfra.cache.redis_guard import RedisGuard
from nbinfra.cache.registry import CacheRegistry
from nbinfra.cache.settings import RedisSettings
from nbinfra.errors import CacheError, CacheUnavailableError, ConfigError
from nbinfra.logs import get_logger

__all__ = ["RedisCacheProvider"]

T = TypeVar("T")
log = get_logger(__name__)

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

Command = Callable[[Any], Awaitable[T]]  # runs against the client
Spare = Callable[[InMemoryCacheProvider], Awaitable[T]]  # the same, on the fallback tier


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
        self._mode, address, self._target = describe(cfg)
        self.guard = RedisGuard(
            address,
            self._target,
            failure_threshold=cfg.breaker.failure_threshold,
            reset_timeout=cfg.breaker.reset_timeout,
            fallback=cfg.fallback == "memory",
        )
        # (loop, client, the gate bounding its concurrent commands), made on first use.
        self._home: tuple[asyncio.AbstractEventLoop, Any, asyncio.Semaphore] | None = None
        self._closed = False

    # -- plumbing -------------------------------------------------------------------------
    @property
    def target(self) -> str:
        return self._target

    @property
    def is_cluster(self) -> bool:
        return self._mode == "cluster"

    @property
    def breaker(self) -> CircuitBreaker:
        return self.guard.breaker

    @property
    def fallback(self) -> InMemoryCacheProvider | None:
        """The in-process tier serving calls while Redis is down (``fallback: memory``)."""
        return self.guard.fallback

    @property
    def fallback_ops(self) -> int:
        """How many calls the fallback tier served."""
        return self.guard.fallback_ops

    def _slot(self) -> tuple[Any, asyncio.Semaphore]:
        """The client and its gate (on nbinfra's loop: callers forward to it first)."""
        loop = asyncio.get_running_loop()
        home = self._home
        if home is not None and home[0] is loop:
            return home[1], home[2]
        if self._closed:
            raise CacheError("This Redis cache provider is closed; create a new one.")
        if home is not None:  # made on an earlier loop (stopped at exit, or before a fork)
            log.info("redis cache %s: its event loop stopped; reconnecting", self._target)
        # The gate makes callers queue for a connection instead of failing with "too
        # many connections"; a plain pool under it is cheaper than a blocking pool.
        client, gate = self._make_client(), asyncio.Semaphore(self.settings.max_connections)
        self._home = (loop, client, gate)
        log.info("redis cache connecting to %s", self._target)
        return client, gate

    def _make_client(self) -> Any:
        return make_client(self.settings, self._mode)

    async def _command(self, what: str, key: str, command: Command[T]) -> T:
        """``command(client)`` on nbinfra's loop, under the gate, inside the boundary."""
        if not _loop.in_loop_thread():
            return await _loop.run_async(self._command(what, key, command))
        with self.guard.boundary(what, key):
            client, gate = self._slot()
            async with gate:
                return await command(client)

    async def _call(self, what: str, key: str, command: Command[T], spare: Spare[T]) -> T:
        """``_command``, or ``spare(fallback tier)`` while Redis is down (or an error)."""
        guard = self.guard
        if not guard.allow():
            return await spare(guard.refuse())
        try:
            return await self._command(what, key, command)
        except CacheUnavailableError as exc:
            tier = guard.failover(exc)
            if tier is None:
                raise
        return await spare(tier)

    # -- single keys ----------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        found: bytes | None = await self._call(
            "read", key, lambda c: c.get(key), lambda m: m.get(key)
        )
        return found

    async def set(
        self, key: str, value: bytes, ttl: float | None = None, *, nx: bool = False
    ) -> bool:
        if len(value) > self.settings.max_value_size:
            raise too_large(key, len(value), self.settings.max_value_size)
        ms = ttl_ms(ttl)
        done = await self._call(
            "write",
            key,
            lambda c: c.set(key, value, px=ms, nx=nx),
            lambda m: m.set(key, value, ttl, nx=nx),
        )
        return bool(done)

    async def delete(self, key: str) -> bool:
        n = await self._call("delete", key, lambda c: c.unlink(key), lambda m: m.delete(key))
        return bool(n)

    async def exists(self, key: str) -> bool:
        n = await self._call("look up", key, lambda c: c.exists(key), lambda m: m.exists(key))
        return bool(n)

    async def ttl(self, key: str) -> float | None:
        async def on_redis(client: Any) -> float | None:
            ms = await client.pttl(key)
            if ms == -2:
                return None
            return math.inf if ms == -1 else float(ms) / 1000

        return await self._call("read the TTL of", key, on_redis, lambda m: m.ttl(key))

    async def expire(self, key: str, ttl: float | None) -> bool:
        ms = ttl_ms(ttl)

        async def on_redis(client: Any) -> bool:
            if ms is not None:
                return bool(await client.pexpire(key, ms))
            async with client.pipeline(transaction=False) as pipe:
                pipe.exists(key)
                pipe.persist(key)
                existed, _ = await pipe.execute()
            return bool(existed)

        return await self._call("set the TTL of", key, on_redis, lambda m: m.expire(key, ttl))

    async def incr(self, key: str, delta: int = 1, ttl: float | None = None) -> int:
        ms = ttl_ms(ttl)

        async def on_redis(client: Any) -> int:
            if ms is None:
                return int(await client.incrby(key, delta))
            return int(await client.eval(_INCR_TTL, 1, key, delta, ms))

        return await self._call("increment", key, on_redis, lambda m: m.incr(key, delta, ttl))

    # -- batches --------------------------------------------------------------------------
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        many = "mget_nonatomic" if self._mode == "cluster" else "mget"
        found: list[bytes | None] = await self._call(
            "read", keys[0], lambda c: getattr(c, many)(keys), lambda m: m.get_many(keys)
        )
        return found

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        if not items:
            return
        limit = self.settings.max_value_size
        for key, value in items.items():
            if len(value) > limit:
                raise too_large(key, len(value), limit)
        ms = ttl_ms(ttl)

        async def on_redis(client: Any) -> None:
            if ms is None:
                if self._mode == "cluster":
                    await client.mset_nonatomic(items)
                else:
                    await client.mset(items)
                return
            async with client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, value, px=ms)
                await pipe.execute()

        await self._call("write", next(iter(items)), on_redis, lambda m: m.set_many(items, ttl))

    async def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        n = await self._call(
            "delete", keys[0], lambda c: c.unlink(*keys), lambda m: m.delete_many(keys)
        )
        return int(n)

    # -- namespaces -----------------------------------------------------------------------
    async def clear(self, prefix: str) -> int:
        raw = prefix.encode()
        pattern = escape_glob(prefix) + "*"

        async def on_redis(client: Any) -> int:
            count = 0
            batch: list[bytes] = []
            async for key in client.scan_iter(match=pattern, count=1000):
                if not key.startswith(raw):  # belt and braces: never delete outside prefix
                    continue
                batch.append(key)
                if len(batch) >= _BATCH:
                    count += await client.unlink(*batch)
                    batch = []
            if batch:
                count += await client.unlink(*batch)
            if self.fallback is not None:
                self.fallback.clear_sync(prefix)
            return count

        return await self._call("clear", prefix, on_redis, lambda m: m.clear(prefix))

    async def scan(self, match: str = "*", *, count: int = 1000) -> AsyncIterator[str]:
        pages = self._pages(match, count)
        try:
            while True:
                page = await _loop.run_async(_next(pages))
                if page is None:
                    return
                for key in page:
                    yield key
        finally:
            await _loop.run_async(_close(pages))

    async def _pages(self, match: str, count: int) -> AsyncGenerator[list[str], None]:
        """The keys ``SCAN`` lists, a page of up to ``count`` at a time (on nbinfra's loop)."""
        guard = self.guard
        if not guard.allow():
            yield [key async for key in guard.refuse().scan(match)]
            return
        seen: set[bytes] = set()  # SCAN may return a key twice across rehashes
        page: list[str] = []
        try:
            with guard.boundary("list keys matching", match):
                client = self._slot()[0]  # no gate: the caller works between pages
                async for key in client.scan_iter(match=match, count=count):
                    if key in seen:
                        continue
                    seen.add(key)
                    page.append(key.decode())
                    if len(page) >= count:
                        yield page
                        page = []
        except CacheUnavailableError as exc:
            if guard.failover(exc) is None:
                raise
            # With a fallback the listing ends here: a partial scan is not mixed with it.
        if page:
            yield page

    # -- locks ----------------------------------------------------------------------------
    async def acquire_lock(self, name: str, ttl: float) -> str | None:
        token = self.new_token()

        async def on_redis(client: Any) -> str | None:
            taken = await client.set(name, token.encode(), nx=True, px=ttl_ms(ttl))
            return token if taken else None

        return await self._call("lock", name, on_redis, lambda m: m.acquire_lock(name, ttl))

    async def release_lock(self, name: str, token: str) -> bool:
        fallback = self.fallback
        if fallback is not None and fallback.release_lock_sync(name, token):
            return True
        if not self.guard.allow():
            return False
        try:
            n = await self._command("unlock", name, lambda c: c.eval(_RELEASE, 1, name, token))
        except CacheUnavailableError as exc:
            log.debug("releasing lock %s failed: %s (it expires by itself)", name, exc)
            return False
        return bool(n)

    # -- lifecycle ------------------------------------------------------------------------
    async def ping(self) -> bool:
        return bool(await self._command("ping", "", lambda c: c.ping()))

    async def health(self) -> Any:
        status = await super().health()
        if status.ok:
            try:
                info = await self._command("read server info", "", lambda c: c.info("server"))
            except CacheError:
                return status
            status = replace(status, server_version=f"redis {info.get('redis_version', '?')}")
        return status

    def info(self) -> dict[str, Any]:
        return {"target": self._target, **self.guard.info()}

    async def close(self) -> None:
        self._closed = True
        home, self._home = self._home, None
        if home is None:
            return
        loop, client, _gate = home
        try:
            if loop is _loop.get_loop():  # else its loop stopped and took the sockets along
                await asyncio.wait_for(_loop.run_async(close_client(client)), 2.0)
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - closing
            log.debug("closing redis client failed: %r", exc)

    def __repr__(self) -> str:
        return f"<RedisCacheProvider {self._target} breaker={self.breaker.state}>"


# Coroutines, to cross loops with ``run_async``.
async def _next(pages: AsyncGenerator[list[str], None]) -> list[str] | None:
    """The next page, or ``None`` after the last."""
    try:
        return await anext(pages)
    except StopAsyncIteration:
        return None


async def _close(pages: AsyncGenerator[list[str], None]) -> None:
    await pages.aclose()
