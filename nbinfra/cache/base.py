"""The provider contract every cache backend implements (async, bytes in, bytes out).

Providers store opaque ``bytes`` under full keys (``namespace:key``); serialization,
namespaces, defaults and stats live in ``CacheService``. A miss is ``None`` here because
a stored value is never ``None`` (it is always bytes).

TTLs are seconds (floats allowed); ``None`` or ``0`` means "no expiry".
"""

from __future__ import annotations

import abc
import asyncio
import math
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from nbinfra.errors import CacheError, InvalidOptionError, SerializationError

__all__ = ["BaseCacheProvider", "InProcessProvider", "LockTimeout", "escape_glob", "too_large"]


class LockTimeout(CacheError, TimeoutError):
    """A cache lock could not be taken within the wait time."""


_GLOB_SPECIAL = frozenset("*?[]\\")


def escape_glob(text: str) -> str:
    """``text`` with Redis glob characters escaped, to match it literally."""
    if not _GLOB_SPECIAL.intersection(text):
        return text
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in text)


def ttl_ms(ttl: float | None) -> int | None:
    """``ttl`` seconds as whole milliseconds (at least 1), or ``None`` for no expiry."""
    if ttl is None or ttl == 0:
        return None
    if ttl < 0 or not math.isfinite(ttl):
        raise InvalidOptionError(
            f"ttl must be a positive number of seconds or 0 (no expiry), got {ttl!r}."
        )
    return max(1, int(ttl * 1000))


def too_large(
    key: str, size: int, limit: int, setting: str = "cache.redis.max_value_size"
) -> SerializationError:
    """The error for a value over a backend's size limit, refused before it is sent."""
    return SerializationError(
        f"Cannot cache {key!r}: the value is {_size(size)}, over the limit of {_size(limit)} "
        f"({setting}). Store it elsewhere (a file, S3) and cache a reference, or raise "
        f"{setting}."
    )


def _size(n: int) -> str:
    if n < 1024 * 1024:
        return f"{n} bytes"
    return f"{n / (1024 * 1024):.1f} MB ({n} bytes)"


class BaseCacheProvider(abc.ABC):
    """Async key/value store with TTLs, batches, prefix clear, scans and locks.

    What differs by kind is a class attribute, read through ``CacheRegistry``:

    - ``settings_class``: the dataclass ``cache.<kind>`` in ``application-cache.yaml`` is
      validated into; the factory then builds ``cls(settings, **overrides)``. Left ``None``,
      the raw section is passed as keywords: ``cls(**section, **overrides)``.
    - ``in_process``: True for a pure in-process store that any thread or event loop may
      call directly (no sockets); such a provider subclasses ``InProcessProvider``. False
      (the default): the provider's connections live on nbinfra's loop, and calls awaited
      from another loop are bridged there.
    """

    kind: str = ""
    settings_class: ClassVar[type[Any] | None] = None
    in_process: ClassVar[bool] = False

    # -- single keys --------------------------------------------------------------------
    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value, or ``None`` on a miss."""

    @abc.abstractmethod
    async def set(
        self, key: str, value: bytes, ttl: float | None = None, *, nx: bool = False
    ) -> bool:
        """Store ``value``; with ``nx`` only when absent. True when written."""

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """True when the key existed."""

    @abc.abstractmethod
    async def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    async def ttl(self, key: str) -> float | None:
        """Seconds left; ``math.inf`` when the key never expires; ``None`` when absent."""

    @abc.abstractmethod
    async def expire(self, key: str, ttl: float | None) -> bool:
        """Set a new TTL (``None``/``0`` removes the expiry). False when the key is absent."""

    @abc.abstractmethod
    async def incr(self, key: str, delta: int = 1, ttl: float | None = None) -> int:
        """Add ``delta`` to an integer value (absent = 0); ``ttl`` applies to a new key."""

    async def decr(self, key: str, delta: int = 1) -> int:
        return await self.incr(key, -delta)

    # -- batches ------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values in the order of ``keys`` (``None`` for misses), in one round trip."""

    @abc.abstractmethod
    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None: ...

    @abc.abstractmethod
    async def delete_many(self, keys: Sequence[str]) -> int:
        """How many of ``keys`` existed."""

    # -- whole namespaces ---------------------------------------------------------------
    @abc.abstractmethod
    async def clear(self, prefix: str) -> int:
        """Delete every key starting with ``prefix`` (taken literally); returns the count."""

    @abc.abstractmethod
    def scan(self, match: str = "*", *, count: int = 1000) -> AsyncIterator[str]:
        """Iterate keys matching the Redis glob ``match``, without blocking the server."""

    # -- locks ----------------------------------------------------------------------------
    @abc.abstractmethod
    async def acquire_lock(self, name: str, ttl: float) -> str | None:
        """Take lock ``name`` for at most ``ttl`` seconds; a token, or ``None`` if held."""

    @abc.abstractmethod
    async def release_lock(self, name: str, token: str) -> bool:
        """Release ``name`` if ``token`` still owns it."""

    @asynccontextmanager
    async def lock(
        self, name: str, *, ttl: float = 30.0, wait: float | None = 30.0
    ) -> AsyncIterator[str]:
        """Hold lock ``name`` inside ``async with``; raises ``LockTimeout`` after ``wait``."""
        deadline = None if wait is None else time.monotonic() + wait
        delay = 0.001
        while True:
            token = await self.acquire_lock(name, ttl)
            if token is not None:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise LockTimeout(f"Could not take cache lock {name!r} within {wait} s.")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            yield token
        finally:
            await self.release_lock(name, token)

    # -- lifecycle ------------------------------------------------------------------------
    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the backend answers."""

    async def health(self) -> Any:
        """A ``HealthStatus`` for this backend."""
        from nbinfra.connections.types import HealthStatus

        start = time.perf_counter()
        try:
            ok = await self.ping()
            error = None
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            ok, error = False, str(exc)
        return HealthStatus(
            ok=ok,
            kind=self.kind,
            target=self.target,
            latency=time.perf_counter() - start,
            error=error,
            checked_at=time.time(),
        )

    @property
    def target(self) -> str:
        """Where the data lives, safe to show (no credentials)."""
        return self.kind

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections; the provider may not be used afterwards."""

    @staticmethod
    def new_token() -> str:
        return secrets.token_hex(16)


class InProcessProvider(BaseCacheProvider):
    """A provider that is a data structure in this process, synchronous underneath.

    Its async methods never suspend, and three blocking twins let ``CacheService``'s
    ``*_blocking`` methods (and so ``SyncCache``) serve reads and writes on the caller's
    thread, with no event loop in between. Every method is safe across threads.
    """

    in_process = True

    @abc.abstractmethod
    def get_sync(self, key: str) -> bytes | None:
        """``get`` without a loop."""

    @abc.abstractmethod
    def set_sync(
        self, key: str, value: bytes, ttl: float | None = None, *, nx: bool = False
    ) -> bool:
        """``set`` without a loop."""

    @abc.abstractmethod
    def keys_sync(self, match: str = "*") -> list[str]:
        """The live keys matching the glob ``match``, without a loop."""
