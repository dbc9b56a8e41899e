"""In-memory provider details: LRU bound, periodic sweep, glob matching, threads."""

from __future__ import annotations

import threading
import time

import pytest

from nbinfra.cache.memory import InMemoryCacheProvider, glob_to_regex
from nbinfra.errors import CacheError


def test_lru_evicts_the_least_recently_used() -> None:
    cache = InMemoryCacheProvider(max_size=3)
    for k in "abc":
        cache.set_sync(k, b"1")
    cache.get_sync("a")  # a is now the most recent
    cache.set_sync("d", b"1")
    assert cache.keys_sync() == ["c", "a", "d"] or sorted(cache.keys_sync()) == ["a", "c", "d"]
    assert cache.get_sync("b") is None and cache.evictions == 1
    assert len(cache) == 3


def test_expired_keys_are_swept_without_being_read() -> None:
    cache = InMemoryCacheProvider(sweep_interval=0.05)
    for i in range(100):
        cache.set_sync(f"k{i}", b"1", ttl=0.05)
    cache.set_sync("keep", b"1")
    time.sleep(0.12)
    cache.set_sync("trigger", b"1")  # a write after the interval runs the sweep
    assert len(cache) == 2 and cache.expirations == 100
    assert cache.purge_expired() == 0


def test_rewritten_key_keeps_its_new_expiry() -> None:
    cache = InMemoryCacheProvider(sweep_interval=0)
    cache.set_sync("k", b"old", ttl=0.05)
    cache.set_sync("k", b"new", ttl=0)
    time.sleep(0.1)
    cache.purge_expired()
    assert cache.get_sync("k") == b"new"


def test_only_bytes_are_stored() -> None:
    with pytest.raises(CacheError, match="store bytes"):
        InMemoryCacheProvider().set_sync("k", "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_size"):
        InMemoryCacheProvider(max_size=-1)


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("a*", ["a", "abc"], ["ba"]),
        ("a?c", ["abc"], ["ac", "abbc"]),
        ("[ab]x", ["ax", "bx"], ["cx"]),
        ("[^a]x", ["bx"], ["ax"]),
        ("[a-c]", ["b"], ["d"]),
        ("a\\*", ["a*"], ["ab"]),
        ("x[", ["x["], ["xa"]),
    ],
)
def test_glob_matches_like_redis(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = glob_to_regex(pattern)
    assert all(regex.match(m) for m in matches)
    assert not any(regex.match(m) for m in misses)


def test_concurrent_incr_from_threads_is_atomic() -> None:
    cache = InMemoryCacheProvider()

    def work() -> None:
        for _ in range(1000):
            cache.incr_sync("n")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert cache.get_sync("n") == b"4000"
