"""Redis outages: the circuit breaker, the in-memory fallback and fail-fast errors."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from nbinfra.cache import CacheService
from nbinfra.cache.breaker import CircuitBreaker
from nbinfra.cache.redis import RedisCacheProvider
from nbinfra.errors import CacheUnavailableError
from nbinfra.session import Session
from nbinfra.testing import RedisServer, free_port

THRESHOLD = 5


async def _mixed_op(svc: CacheService, i: int) -> None:
    """One operation of a mixed workload (reads, writes, counters, batches)."""
    key = f"k{i % 200}"
    kind = i % 6
    if kind == 0:
        await svc.set(key, {"i": i, "tags": ["a", "b"]})
    elif kind == 1:
        await svc.get(key)
    elif kind == 2:
        await svc.incr("counter")
    elif kind == 3:
        await svc.get_many([key, f"k{(i + 1) % 200}", f"k{(i + 2) % 200}"])
    elif kind == 4:
        await svc.get_or_set(f"g{i % 50}", lambda: i)
    else:
        await svc.delete(f"k{(i + 100) % 200}")


async def test_sigkill_with_fallback_never_reaches_the_caller(
    redis_server_factory: Callable[[], RedisServer], session: Session
) -> None:
    server = redis_server_factory()
    provider = RedisCacheProvider(
        url=server.url, fallback="memory", failure_threshold=THRESHOLD, reset_timeout=0.2
    )
    svc = CacheService("fault", provider=provider, session=session)
    breaker = provider.breaker
    total, kill_at, restart_at = 12_000, 3_000, 8_000
    failures_at_open: int | None = None
    restarted_at = 0.0
    closed_after: float | None = None
    try:
        for i in range(total):
            if i == kill_at:
                assert breaker.state == "closed" and breaker.failures_total == 0
                server.kill()  # SIGKILL, mid-workload
            if i == restart_at:
                assert breaker.state != "closed"
                server.start()
                restarted_at = time.monotonic()
            await _mixed_op(svc, i)  # must never raise
            if failures_at_open is None and breaker.state != "closed":
                failures_at_open = breaker.failures_total
            if i > restart_at and closed_after is None and breaker.state == "closed":
                closed_after = time.monotonic() - restarted_at
            if i % 500 == 0:
                await asyncio.sleep(0)  # let the loop breathe like a real app
        deadline = time.monotonic() + 5
        while closed_after is None and time.monotonic() < deadline:  # bounded wait
            await _mixed_op(svc, 1)
            if breaker.state == "closed":
                closed_after = time.monotonic() - restarted_at
            await asyncio.sleep(0.01)
        assert failures_at_open == THRESHOLD  # opened after exactly N consecutive failures
        assert breaker.opened_count >= 1
        assert provider.fallback_ops > 1000  # the outage was served from memory
        assert closed_after is not None and closed_after <= 5.0
        # Back on Redis: a write lands in the server, visible to a plain client.
        await svc.set("after", "recovered")
        import redis

        raw = redis.Redis.from_url(server.url)
        try:
            assert raw.get("fault:after") == b'"recovered"'
        finally:
            raw.close()
        assert svc.stats().errors == 0
    finally:
        await provider.close()


async def test_sigkill_without_fallback_fails_fast_naming_host_and_port(
    redis_server_factory: Callable[[], RedisServer], session: Session
) -> None:
    server = redis_server_factory()
    provider = RedisCacheProvider(
        url=server.url, failure_threshold=THRESHOLD, reset_timeout=30, socket_timeout=0.3
    )
    svc = CacheService("nofb", provider=provider, session=session)
    try:
        await svc.set("k", 1)
        server.kill()
        budget = provider.settings.socket_connect_timeout + provider.settings.socket_timeout
        for attempt in range(THRESHOLD + 3):
            start = time.monotonic()
            with pytest.raises(CacheUnavailableError) as info:
                await asyncio.wait_for(svc.get("k"), budget + 2)  # never a hang
            assert time.monotonic() - start <= budget + 0.5
            assert f"127.0.0.1:{server.port}" in str(info.value)
            if attempt >= THRESHOLD:
                assert "circuit open" in str(info.value)
        assert provider.breaker.state == "open"
        assert svc.stats().errors == THRESHOLD + 3
    finally:
        await provider.close()


@contextlib.contextmanager
def blackhole() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) but never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", free_port()))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


async def test_unresponsive_server_times_out_within_the_socket_timeout(session: Session) -> None:
    with blackhole() as port:
        provider = RedisCacheProvider(
            host="127.0.0.1", port=port, socket_timeout=0.2, socket_connect_timeout=0.2
        )
        svc = CacheService("hole", provider=provider, session=session)
        try:
            start = time.monotonic()
            with pytest.raises(CacheUnavailableError, match=f"127.0.0.1:{port}"):
                await asyncio.wait_for(svc.set("k", 1), 5)
            assert time.monotonic() - start <= 0.4 + 0.5
        finally:
            await provider.close()


async def test_unresponsive_server_with_fallback_costs_one_timeout_per_window(
    session: Session,
) -> None:
    with blackhole() as port:
        provider = RedisCacheProvider(
            host="127.0.0.1",
            port=port,
            socket_timeout=0.1,
            socket_connect_timeout=0.1,
            fallback="memory",
            failure_threshold=2,
            reset_timeout=60,
        )
        svc = CacheService("hole-fb", provider=provider, session=session)
        try:
            await svc.set("a", 1)
            await svc.set("b", 2)  # second timeout: the circuit opens
            assert provider.breaker.state == "open"
            start = time.monotonic()
            for i in range(1000):
                await svc.set(f"k{i}", i)
                assert await svc.get(f"k{i}") == i  # served by the memory tier
            # 2,000 calls while open took no socket timeout at all (each would cost 0.1 s)
            assert time.monotonic() - start < 0.1 * 5
        finally:
            await provider.close()


# -- the breaker on its own -----------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_states() -> None:
    clock = Clock()
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "t",
        failure_threshold=3,
        reset_timeout=10,
        clock=clock,
        on_change=lambda a, b: changes.append((a, b)),
    )
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    breaker.success()  # a success resets the count: failures must be consecutive
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now = 9.9
    assert not breaker.allow()
    clock.now = 10.0
    assert breaker.allow() and breaker.state == "half-open"
    assert not breaker.allow()  # only one probe at a time
    breaker.failure()  # the probe failed: open again, for another window
    assert breaker.state == "open" and not breaker.allow()
    clock.now = 20.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()
    assert changes == [
        ("closed", "open"),
        ("open", "half-open"),
        ("half-open", "open"),
        ("open", "half-open"),
        ("half-open", "closed"),
    ]
    assert breaker.rejected == 4


def test_breaker_lost_probe_is_retried() -> None:
    clock = Clock()
    breaker = CircuitBreaker("t", failure_threshold=1, reset_timeout=1, clock=clock)
    breaker.failure()
    clock.now = 1
    assert breaker.allow()  # a probe that never reports back (cancelled)...
    clock.now = 1.5
    assert not breaker.allow()
    clock.now = 2.0
    assert breaker.allow()  # ...does not keep the circuit half-open forever
