"""Memcached as an nbinfra cache backend, on ``aiomcache``.

Registered through the ``nbinfra.caches`` entry point as kind ``memcached``; configure it
under ``cache.memcached`` (``url: memcached://host:11211`` or ``host``/``port``).

Memcached keeps whole seconds of expiry and has no TTL query, no key listing command
and no conditional delete, so:

- every value carries a small envelope with its exact expiry time: reads honour sub-second
  TTLs and ``ttl()`` answers; memcached's own expiry (rounded up) frees the memory;
- ``set(nx=True)``, ``expire``, ``incr`` and locks are compare-and-swap loops (``gets`` +
  ``cas``), so they stay atomic across processes; a released lock is overwritten with an
  expired tombstone under its CAS token, never deleted blindly;
- ``scan``/``clear`` list keys with ``lru_crawler metadump hash`` (memcached 1.6.10+; the
  LRU walk ``metadump all`` before that), then keep the ones still alive;
- keys are UTF-8 with spaces, control characters, non-ASCII bytes and ``%`` written as
  ``%XX``, which keeps prefixes intact; an encoded key over 250 bytes is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import struct
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from urllib.parse import unquote_to_bytes, urlsplit

from nbinfra.cache.base import BaseCacheProvider, too_large, ttl_ms
from nbinfra.cache.memory import glob_to_regex
from nbinfra.errors import CacheError, CacheUnavailableError, ConfigError, SerializationError

__all__ = ["MemcachedCacheProvider", "MemcachedSettings", "decode_key", "encode_key"]

T = TypeVar("T")

MAX_KEY = 250  # memcached's limit, in bytes
_MAGIC = b"nb\x01"
_HEADER = struct.Struct(">d")  # absolute expiry, unix seconds; 0.0 = never
_PREFIX = len(_MAGIC) + _HEADER.size
_RELATIVE_LIMIT = 30 * 24 * 3600  # memcached reads a larger exptime as a unix timestamp
_BATCH = 100  # keys per multi-key get
_CAS_TRIES = 64


@dataclass
class MemcachedSettings:
    """``cache.memcached`` in ``application-cache.yaml``."""

    url: str | None = None  # memcached://host:port; overrides host and port
    host: str = "localhost"
    port: int = 11211
    pool_size: int = 8  # connections per event loop
    timeout: float = 1.0  # seconds per operation; a cache that cannot answer is down
    max_value_size: int = 1000 * 1000  # bytes; memcached's default item limit is 1 MB

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"cache.memcached.port must be 1-65535, got {self.port}.")
        if self.pool_size < 1 or self.timeout <= 0 or self.max_value_size < 1:
            raise ConfigError(
                "cache.memcached: pool_size and max_value_size must be at least 1 and "
                "timeout above 0."
            )


def encode_key(key: str) -> bytes:
    """``key`` as a memcached key: UTF-8, unsafe bytes and ``%`` as ``%XX``."""
    raw = key.encode()
    if raw.isascii() and b"%" not in raw and all(32 < b < 127 for b in raw):
        return raw
    return b"".join(bytes((b,)) if 32 < b < 127 and b != 0x25 else b"%%%02X" % b for b in raw)


def decode_key(raw: bytes) -> str:
    """The inverse of ``encode_key``."""
    return unquote_to_bytes(raw).decode()


def _address(settings: MemcachedSettings) -> tuple[str, int]:
    if not settings.url:
        return settings.host, settings.port
    parts = urlsplit(settings.url)
    if parts.scheme != "memcached" or not parts.hostname:
        raise ConfigError(
            f"cache.memcached.url must look like memcached://host:11211, got {settings.url!r}."
        )
    return parts.hostname, parts.port or 11211


class MemcachedCacheProvider(BaseCacheProvider):
    """A memcached server behind the cache provider contract (see the module docstring)."""

    kind = "memcached"
    settings_class: ClassVar[type[MemcachedSettings]] = MemcachedSettings

    def __init__(self, settings: MemcachedSettings | None = None, **overrides: Any) -> None:
        try:
            self.settings = dataclasses.replace(settings or MemcachedSettings(), **overrides)
        except TypeError as exc:
            raise ConfigError(f"Unknown memcached cache option: {exc}") from None
        self.host, self.port = _address(self.settings)
        # aiomcache's pool holds streams of the loop that opened them: one client per loop.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._closed = False

    @property
    def target(self) -> str:
        return f"memcached://{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"<MemcachedCacheProvider {self.target}>"

    # -- plumbing -------------------------------------------------------------------------
    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            if self._closed:
                raise CacheError("This memcached cache provider is closed; create a new one.")
            import aiomcache

            client = aiomcache.Client(
                self.host, self.port, pool_size=self.settings.pool_size, pool_minsize=1
            )
            self._clients[loop] = client
        return client

    async def _run(self, what: str, op: Callable[[Any], Awaitable[T]]) -> T:
        """``op(client)`` under the timeout, behind the one error boundary.

        The operation is shielded: a command cut off mid-reply would leave its pooled
        connection out of step, so a timed-out or cancelled one finishes (or fails) in the
        background instead.
        """
        task = asyncio.ensure_future(op(self._client()))
        try:
            with self._boundary(what):
                return await asyncio.wait_for(asyncio.shield(task), self.settings.timeout)
        finally:
            if not task.done():
                task.add_done_callback(_retrieve)

    @contextlib.contextmanager
    def _boundary(self, what: str) -> Iterator[None]:
        from aiomcache.exceptions import ClientException, ValidationException

        try:
            yield
        except CacheError:
            raise  # already ours (a CacheUnavailableError is also an OSError)
        except (TimeoutError, asyncio.TimeoutError):
            raise CacheUnavailableError(
                f"Memcached at {self.host}:{self.port} did not answer {what} within "
                f"{self.settings.timeout:g} s; check the server or raise "
                "cache.memcached.timeout."
            ) from None
        except (OSError, EOFError) as exc:  # refused, reset, closed mid-reply
            raise CacheUnavailableError(
                f"Memcached at {self.host}:{self.port} is unavailable ({what}: "
                f"{type(exc).__name__}). Start memcached or fix cache.memcached in "
                "application-cache.yaml."
            ) from exc
        except ValidationException as exc:
            raise CacheError(f"Memcached refused the {what}: {exc}") from exc
        except ClientException as exc:
            if "too large" in str(exc):
                raise SerializationError(
                    f"Memcached refused a value as too large ({what}); lower "
                    "cache.memcached.max_value_size to match the server's -I limit."
                ) from exc
            raise CacheError(f"Memcached {what} failed: {exc}") from exc

    def _key(self, key: str) -> bytes:
        raw = encode_key(key)
        if len(raw) > MAX_KEY:
            raise CacheError(
                f"Cache key {key[:40]!r}... is {len(raw)} bytes as a memcached key, over "
                f"memcached's {MAX_KEY}; use a shorter namespace or key."
            )
        return raw

    def _pack(self, key: str, value: bytes, expires: float) -> bytes:
        if type(value) is not bytes:
            raise CacheError(f"Cache providers store bytes, got {type(value).__name__}.")
        limit = self.settings.max_value_size
        if len(value) > limit:
            raise too_large(key, len(value), limit, "cache.memcached.max_value_size")
        return _MAGIC + _HEADER.pack(expires) + value

    # -- single keys --------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        k = self._key(key)
        data = await self._run("get", lambda c: c.get(k))
        return _live(data, time.time())[0]

    async def set(
        self, key: str, value: bytes, ttl: float | None = None, *, nx: bool = False
    ) -> bool:
        k = self._key(key)
        expires = _expires(ttl)
        data = self._pack(key, value, expires)
        exptime = _exptime(expires)
        if not nx:
            return bool(await self._run("set", lambda c: c.set(k, data, exptime)))
        return await self._run("add", lambda c: _add(c, k, data, exptime))

    async def delete(self, key: str) -> bool:
        k = self._key(key)

        async def op(c: Any) -> bool:
            alive = _live(await c.get(k), time.time())[0] is not None
            return bool(await c.delete(k)) and alive

        return await self._run("delete", op)

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def ttl(self, key: str) -> float | None:
        k = self._key(key)
        data = await self._run("ttl", lambda c: c.get(k))
        now = time.time()
        value, expires = _live(data, now)
        if value is None:
            return None
        return expires - now if expires else math.inf

    async def expire(self, key: str, ttl: float | None) -> bool:
        k = self._key(key)
        expires = _expires(ttl)

        async def op(c: Any) -> bool:
            for _ in range(_CAS_TRIES):
                data, token = await c.gets(k)
                value = _live(data, time.time())[0]
                if value is None:
                    return False
                if await c.cas(k, self._pack(key, value, expires), token, _exptime(expires)):
                    return True
            raise _contended(key)

        return await self._run("expire", op)

    async def incr(self, key: str, delta: int = 1, ttl: float | None = None) -> int:
        k = self._key(key)
        new_expires = _expires(ttl)

        async def op(c: Any) -> int:
            for _ in range(_CAS_TRIES):
                data, token = await c.gets(k)
                value, expires = _live(data, time.time())
                if value is None:
                    fresh = self._pack(key, str(delta).encode(), new_expires)
                    if await _add(c, k, fresh, _exptime(new_expires)):
                        return delta
                    continue
                try:
                    result = int(value) + delta
                except ValueError:
                    raise CacheError(
                        f"Cannot increment {key!r}: its value is not an integer."
                    ) from None
                packed = self._pack(key, str(result).encode(), expires)
                if await c.cas(k, packed, token, _exptime(expires)):
                    return result
            raise _contended(key)

        return await self._run("incr", op)

    # -- batches ------------------------------------------------------------------------
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        encoded = [self._key(k) for k in keys]
        unique = list(dict.fromkeys(encoded))

        async def op(c: Any) -> dict[bytes, Any]:
            found: dict[bytes, Any] = {}
            for start in range(0, len(unique), _BATCH):
                chunk = unique[start : start + _BATCH]
                found.update(zip(chunk, await c.multi_get(*chunk), strict=True))
            return found

        found = await self._run("get_many", op)
        now = time.time()
        return [_live(found.get(k), now)[0] for k in encoded]

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        if not items:
            return
        expires = _expires(ttl)
        exptime = _exptime(expires)
        packed = [(self._key(k), self._pack(k, v, expires)) for k, v in items.items()]

        async def op(c: Any) -> None:
            # Concurrent sets share the pool's connections (memcached has no multi-set).
            await asyncio.gather(*(c.set(k, data, exptime) for k, data in packed))

        await self._run("set_many", op)

    async def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        unique = list(dict.fromkeys(keys))
        values = await self.get_many(unique)
        encoded = [self._key(k) for k in unique]

        async def op(c: Any) -> None:
            await asyncio.gather(*(c.delete(k) for k in encoded))

        await self._run("delete_many", op)
        return sum(v is not None for v in values)

    # -- whole namespaces ---------------------------------------------------------------
    async def clear(self, prefix: str) -> int:
        doomed = [k for k in await self._listed() if k.startswith(prefix)]
        return await self.delete_many(doomed)

    async def scan(self, match: str = "*", *, count: int = 1000) -> AsyncIterator[str]:
        regex = None if match == "*" else glob_to_regex(match)
        candidates = [k for k in await self._listed() if regex is None or regex.match(k)]
        for start in range(0, len(candidates), count):
            chunk = candidates[start : start + count]
            for key, value in zip(chunk, await self.get_many(chunk), strict=True):
                if value is not None:
                    yield key

    async def _listed(self) -> list[str]:
        """Every key the server holds now (``lru_crawler metadump``)."""

        async def dump(_client: Any) -> list[bytes]:
            for _ in range(50):
                lines = await self._metadump(b"hash")
                if lines == [b"ERROR"]:  # before 1.6.10: walk the LRUs (may miss moved keys)
                    lines = await self._metadump(b"all")
                if lines is not None:
                    return lines
                await asyncio.sleep(0.01)  # another crawl is running
            raise CacheUnavailableError(
                f"Memcached at {self.host}:{self.port} kept answering BUSY to key listing."
            )

        lines = await self._run("scan", dump)
        keys: list[str] = []
        for line in lines:
            field = line.split(b" ", 1)[0]
            if field.startswith(b"key="):
                with contextlib.suppress(UnicodeDecodeError):  # not written by nbinfra
                    keys.append(decode_key(unquote_to_bytes(field[4:])))
        return keys

    async def _metadump(self, what: bytes) -> list[bytes] | None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(b"lru_crawler metadump " + what + b"\r\n")
            await writer.drain()
            lines: list[bytes] = []
            while True:
                line = await reader.readline()
                if not line:
                    raise EOFError("connection closed during metadump")
                if line == b"END\r\n":
                    return lines
                if line.startswith(b"BUSY"):
                    return None
                if line == b"ERROR\r\n" and what == b"hash":
                    return [b"ERROR"]
                if line.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
                    raise CacheError(
                        f"Memcached at {self.host}:{self.port} cannot list keys "
                        f"({line.decode(errors='replace').strip()}); scan and clear need "
                        "memcached 1.4.31+ with the LRU crawler enabled."
                    )
                lines.append(line)
        finally:
            writer.close()

    # -- locks ----------------------------------------------------------------------------
    async def acquire_lock(self, name: str, ttl: float) -> str | None:
        token = self.new_token()
        taken = await self.set(name, token.encode(), ttl, nx=True)
        return token if taken else None

    async def release_lock(self, name: str, token: str) -> bool:
        k = self._key(name)
        tombstone = _MAGIC + _HEADER.pack(1.0)  # expired long ago: reads as absent

        async def op(c: Any) -> bool:
            data, cas = await c.gets(k)
            if _live(data, time.time())[0] != token.encode():
                return False
            return bool(await c.cas(k, tombstone, cas, 1))

        return await self._run("release_lock", op)

    # -- lifecycle ------------------------------------------------------------------------
    async def ping(self) -> bool:
        await self._run("ping", lambda c: c.version())
        return True

    async def close(self) -> None:
        self._closed = True
        clients, self._clients = dict(self._clients), weakref.WeakKeyDictionary()
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, client in clients.items():
            if loop is current:
                await client.close()
            elif loop.is_running():
                asyncio.run_coroutine_threadsafe(client.close(), loop)


# -- module helpers -----------------------------------------------------------------------
def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark the outcome of an abandoned (timed-out) operation as seen."""
    if not task.cancelled():
        task.exception()


def _expires(ttl: float | None) -> float:
    ms = ttl_ms(ttl)
    return time.time() + ms / 1000 if ms else 0.0


def _exptime(expires: float) -> int:
    """Memcached's exptime for an absolute expiry: whole seconds, rounded up, plus one."""
    if not expires:
        return 0
    seconds = math.ceil(expires - time.time()) + 1
    return max(1, seconds) if seconds <= _RELATIVE_LIMIT else math.ceil(expires) + 1


def _live(data: bytes | None, now: float) -> tuple[bytes | None, float]:
    """(value, absolute expiry) of a stored item; ``None`` when absent or expired."""
    if data is None:
        return None, 0.0
    if not data.startswith(_MAGIC) or len(data) < _PREFIX:
        return data, 0.0  # written by another client: memcached's own expiry applies
    (expires,) = _HEADER.unpack_from(data, len(_MAGIC))
    if expires and expires <= now:
        return None, 0.0
    return data[_PREFIX:], expires


async def _add(client: Any, key: bytes, data: bytes, exptime: int) -> bool:
    """Store when absent, treating an expired envelope as absent (atomic via CAS)."""
    for _ in range(_CAS_TRIES):
        if await client.add(key, data, exptime):
            return True
        current, token = await client.gets(key)
        if current is None:
            continue  # it went meanwhile: try add again
        if _live(current, time.time())[0] is not None:
            return False
        if await client.cas(key, data, token, exptime):
            return True
    raise CacheError(f"Memcached key {key[:40]!r} changed too often to be added; try again.")


def _contended(key: str) -> CacheError:
    return CacheError(f"Cache key {key!r} changed too often to be updated atomically; try again.")
