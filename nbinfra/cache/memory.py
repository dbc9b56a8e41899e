"""In-process cache: TTL (lazy on read + periodic sweep), optional LRU bound, locks.

Values are the serialized bytes ``CacheService`` hands over, so a returned object is always
a fresh copy: mutating it never changes the cache, exactly as with Redis. Every operation
is synchronous underneath (the ``*_sync`` methods) and guarded by one ``threading.Lock``,
so the notebook facade can call it from any thread without hopping to the loop.
"""

from __future__ import annotations

import heapq
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from nbinfra.cache.base import InProcessProvider, ttl_ms
from nbinfra.cache.registry import CacheRegistry
from nbinfra.cache.settings import MemorySettings
from nbinfra.errors import CacheError

__all__ = ["InMemoryCacheProvider", "glob_to_regex"]

_now = time.monotonic


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a Redis glob (``*``, ``?``, ``[abc]``, ``[^a]``, ``[a-z]``, ``\\x``)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = pattern.find("]", i + 2 if i + 1 < n and pattern[i + 1] == "^" else i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                negate = body.startswith("^")
                if negate:
                    body = body[1:]
                body = body.replace("\\", "\\\\")
                out.append(f"[{'^' if negate else ''}{body}]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


@CacheRegistry.register("memory")
class InMemoryCacheProvider(InProcessProvider):
    """A dict with expiry times, LRU order and a size bound, safe across threads.

    ``max_size`` (0 = unbounded) evicts the least recently used key. Expired keys vanish
    on access and are swept at most every ``sweep_interval`` seconds on writes.
    """

    kind = "memory"
    settings_class = MemorySettings

    def __init__(
        self,
        settings: MemorySettings | None = None,
        *,
        max_size: int | None = None,
        sweep_interval: float | None = None,
    ) -> None:
        """``settings`` (``cache.memory``) with ``max_size``/``sweep_interval`` over it;
        without settings, unbounded with a 1 s sweep."""
        if max_size is None:
            max_size = settings.max_size if settings is not None else 0
        if sweep_interval is None:
            sweep_interval = settings.sweep_interval if settings is not None else 1.0
        if max_size < 0:
            raise ValueError(f"max_size must be >= 0 (0 = unbounded), got {max_size}")
        self.max_size = max_size
        self.sweep_interval = sweep_interval
        self._data: OrderedDict[str, tuple[bytes, float]] = OrderedDict()  # value, expires
        self._expiries: list[tuple[float, str]] = []  # heap; stale entries allowed
        self._locks: dict[str, tuple[str, float]] = {}  # name -> token, expires
        self._mutex = threading.Lock()
        self._next_sweep = _now() + sweep_interval
        self.evictions = 0
        self.expirations = 0

    # -- sync core ------------------------------------------------------------------------
    def get_sync(self, key: str) -> bytes | None:
        with self._mutex:
            entry = self._data.get(key)
            if entry is None:
                return None
            if entry[1] and entry[1] <= _now():
                del self._data[key]
                self.expirations += 1
                return None
            if self.max_size:
                self._data.move_to_end(key)
            return entry[0]

    def set_sync(
        self, key: str, value: bytes, ttl: float | None = None, *, nx: bool = False
    ) -> bool:
        ms = ttl_ms(ttl)
        if type(value) is not bytes:
            raise CacheError(f"Cache providers store bytes, got {type(value).__name__}.")
        with self._mutex:
            now = _now()
            if nx:
                current = self._data.get(key)
                if current is not None and not (current[1] and current[1] <= now):
                    return False
            expires = now + ms / 1000 if ms else 0.0
            self._store(key, value, expires)
            if now >= self._next_sweep:
                self._sweep(now)
            return True

    def _store(self, key: str, value: bytes, expires: float) -> None:
        data = self._data
        if key in data:
            data.move_to_end(key)
        data[key] = (value, expires)
        if expires:
            heapq.heappush(self._expiries, (expires, key))
        if self.max_size and len(data) > self.max_size:
            self._sweep(_now())
            while len(data) > self.max_size:
                data.popitem(last=False)
                self.evictions += 1

    def _sweep(self, now: float) -> None:
        heap, data = self._expiries, self._data
        while heap and heap[0][0] <= now:
            expires, key = heapq.heappop(heap)
            entry = data.get(key)
            if entry is not None and entry[1] == expires:
                del data[key]
                self.expirations += 1
        if len(heap) > 2 * len(data) + 64:  # drop stale heap entries (rewritten keys)
            self._expiries = [(e[1], k) for k, e in data.items() if e[1]]
            heapq.heapify(self._expiries)
        self._next_sweep = now + self.sweep_interval

    def purge_expired(self) -> int:
        """Remove every expired key now; returns how many went."""
        with self._mutex:
            before = self.expirations
            self._sweep(_now())
            return self.expirations - before

    def _live(self, key: str, now: float) -> tuple[bytes, float] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] and entry[1] <= now:
            del self._data[key]
            self.expirations += 1
            return None
        return entry

    def delete_sync(self, key: str) -> bool:
        with self._mutex:
            entry = self._data.pop(key, None)
            return entry is not None and not (entry[1] and entry[1] <= _now())

    def exists_sync(self, key: str) -> bool:
        with self._mutex:
            return self._live(key, _now()) is not None

    def ttl_sync(self, key: str) -> float | None:
        with self._mutex:
            now = _now()
            entry = self._live(key, now)
            if entry is None:
                return None
            return entry[1] - now if entry[1] else math.inf

    def expire_sync(self, key: str, ttl: float | None) -> bool:
        ms = ttl_ms(ttl)
        with self._mutex:
            now = _now()
            entry = self._live(key, now)
            if entry is None:
                return False
            expires = now + ms / 1000 if ms else 0.0
            self._data[key] = (entry[0], expires)
            if expires:
                heapq.heappush(self._expiries, (expires, key))
            return True

    def incr_sync(self, key: str, delta: int = 1, ttl: float | None = None) -> int:
        ms = ttl_ms(ttl)
        with self._mutex:
            now = _now()
            entry = self._live(key, now)
            if entry is None:
                current, expires = 0, (now + ms / 1000 if ms else 0.0)
            else:
                try:
                    current = int(entry[0])
                except ValueError:
                    raise CacheError(
                        f"Cannot increment {key!r}: its value is not an integer."
                    ) from None
                expires = entry[1]
            result = current + delta
            self._store(key, str(result).encode(), expires)
            return result

    def get_many_sync(self, keys: Sequence[str]) -> list[bytes | None]:
        with self._mutex:
            now = _now()
            out: list[bytes | None] = []
            for key in keys:
                entry = self._live(key, now)
                if entry is None:
                    out.append(None)
                else:
                    if self.max_size:
                        self._data.move_to_end(key)
                    out.append(entry[0])
            return out

    def set_many_sync(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        ms = ttl_ms(ttl)
        with self._mutex:
            now = _now()
            expires = now + ms / 1000 if ms else 0.0
            for key, value in items.items():
                if type(value) is not bytes:
                    raise CacheError(f"Cache providers store bytes, got {type(value).__name__}.")
                self._store(key, value, expires)
            if now >= self._next_sweep:
                self._sweep(now)

    def delete_many_sync(self, keys: Sequence[str]) -> int:
        with self._mutex:
            now = _now()
            count = 0
            for key in keys:
                entry = self._data.pop(key, None)
                if entry is not None and not (entry[1] and entry[1] <= now):
                    count += 1
            return count

    def clear_sync(self, prefix: str) -> int:
        with self._mutex:
            now = _now()
            doomed = [k for k in self._data if k.startswith(prefix)]
            count = 0
            for key in doomed:
                entry = self._data.pop(key)
                if not (entry[1] and entry[1] <= now):
                    count += 1
            return count

    def keys_sync(self, match: str = "*") -> list[str]:
        regex = None if match == "*" else glob_to_regex(match)
        with self._mutex:
            now = _now()
            return [
                k
                for k, (_v, exp) in self._data.items()
                if not (exp and exp <= now) and (regex is None or regex.match(k))
            ]

    def acquire_lock_sync(self, name: str, ttl: float) -> str | None:
        with self._mutex:
            now = _now()
            held = self._locks.get(name)
            if held is not None and held[1] > now:
                return None
            token = self.new_token()
            self._locks[name] = (token, now + ttl)
            return token

    def release_lock_sync(self, name: str, token: str) -> bool:
        with self._mutex:
            held = self._locks.get(name)
            if held is None or held[0] != token:
                return False
            del self._locks[name]
            return True

    def __len__(self) -> int:
        with self._mutex:
            return len(self._data)

    # -- async contract -------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        return self.get_sync(key)

    async def set(
        self, key: str, value: bytes, ttl: float | None = None, *, nx: bool = False
    ) -> bool:
        return self.set_sync(key, value, ttl, nx=nx)

    async def delete(self, key: str) -> bool:
        return self.delete_sync(key)

    async def exists(self, key: str) -> bool:
        return self.exists_sync(key)

    async def ttl(self, key: str) -> float | None:
        return self.ttl_sync(key)

    async def expire(self, key: str, ttl: float | None) -> bool:
        return self.expire_sync(key, ttl)

    async def incr(self, key: str, delta: int = 1, ttl: float | None = None) -> int:
        return self.incr_sync(key, delta, ttl)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.get_many_sync(keys)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        self.set_many_sync(items, ttl)

    async def delete_many(self, keys: Sequence[str]) -> int:
        return self.delete_many_sync(keys)

    async def clear(self, prefix: str) -> int:
        return self.clear_sync(prefix)

    async def scan(self, match: str = "*", *, count: int = 1000) -> AsyncIterator[str]:
        for key in self.keys_sync(match):
            yield key

    async def acquire_lock(self, name: str, ttl: float) -> str | None:
        return self.acquire_lock_sync(name, ttl)

    async def release_lock(self, name: str, token: str) -> bool:
        return self.release_lock_sync(name, token)

    async def ping(self) -> bool:
        return True

    @property
    def target(self) -> str:
        bound = f"max {self.max_size}" if self.max_size else "unbounded"
        return f"in-process ({bound})"

    def info(self) -> dict[str, Any]:
        return {
            "keys": len(self),
            "max_size": self.max_size,
            "evictions": self.evictions,
            "expirations": self.expirations,
        }

    def __repr__(self) -> str:
        return f"<InMemoryCacheProvider {self.target}, {len(self)} keys>"
