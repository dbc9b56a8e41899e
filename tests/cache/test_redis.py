"""Redis specifics: configuration, SCAN/UNLINK clears, several processes on one server."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

from nbinfra.cache import CacheService
from nbinfra.cache.redis import RedisCacheProvider
from nbinfra.cache.redis_connect import describe, parse_sentinel
from nbinfra.cache.settings import RedisSettings
from nbinfra.errors import CacheError, CacheUnavailableError, ConfigError
from nbinfra.session import Session
from nbinfra.testing import RedisServer

ROOT = Path(__file__).resolve().parents[2]


def _raw(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url)


async def test_host_port_settings_and_masked_target(
    redis_server: RedisServer, session: Session
) -> None:
    provider = RedisCacheProvider(RedisSettings(host="127.0.0.1", port=redis_server.port, db=2))
    try:
        svc = CacheService("hp", provider=provider, session=session)
        await svc.set("k", 1)
        raw = redis.Redis(host="127.0.0.1", port=redis_server.port, db=2)
        assert raw.get("hp:k") == b"1"
        raw.close()
        assert provider.target == f"redis://127.0.0.1:{redis_server.port}/2"
    finally:
        await provider.close()


def test_url_forms_are_understood_and_passwords_masked() -> None:
    mode, address, target = describe(RedisSettings(url="redis://:s3cr3tpw@cache.local:6380/1"))
    assert (mode, address) == ("single", "cache.local:6380")
    assert "s3cr3tpw" not in target and "cache.local:6380" in target
    assert describe(RedisSettings(url="rediss://h:6379/0"))[0] == "single"
    assert describe(RedisSettings(url="unix:///tmp/redis.sock"))[:2] == (
        "single",
        "/tmp/redis.sock",
    )
    assert describe(RedisSettings(url="redis+cluster://h1:7000"))[0] == "cluster"
    assert describe(RedisSettings(host="h", port=7000, cluster=True))[0] == "cluster"
    sentinel = RedisSettings(url="redis+sentinel://:pw@s1:26379,s2:26380/mymaster/3")
    assert describe(sentinel)[0] == "sentinel"
    hosts, service, db, user, pw, tls = parse_sentinel(sentinel)
    assert hosts == [("s1", 26379), ("s2", 26380)] and service == "mymaster"
    assert (db, user, pw, tls) == (3, None, "pw", False)
    with pytest.raises(ConfigError, match="service name"):
        parse_sentinel(RedisSettings(url="redis+sentinel://s1:26379"))
    with pytest.raises(ConfigError, match="scheme 'http'"):
        RedisCacheProvider(url="http://localhost:6379")


async def test_password_never_in_errors(session: Session) -> None:
    provider = RedisCacheProvider(url="redis://:hunter2-secret@127.0.0.1:1/0")
    try:
        with pytest.raises(Exception) as info:
            await CacheService("pw", provider=provider, session=session).get("k")
        assert "hunter2-secret" not in str(info.value)
        assert "127.0.0.1:1" in str(info.value)
        assert "hunter2-secret" not in repr(provider)
    finally:
        await provider.close()


async def test_a_refused_command_is_a_cache_error_not_an_outage(
    redis_server: RedisServer, session: Session
) -> None:
    provider = RedisCacheProvider(url=redis_server.url, socket_timeout=5, failure_threshold=1)
    svc = CacheService("wrongtype", provider=provider, session=session)
    raw = _raw(redis_server)
    try:
        raw.rpush("wrongtype:list", "a")  # a value the cache cannot read as bytes
        with pytest.raises(CacheError, match=r"Cannot read 'wrongtype:list': WRONGTYPE") as info:
            await svc.get("list")
        assert not isinstance(info.value, CacheUnavailableError)
        assert isinstance(info.value.__cause__, redis.ResponseError)
        # Redis answered: with a threshold of 1 an outage would have opened the circuit.
        assert provider.breaker.state == "closed" and provider.breaker.failures_total == 0
        assert svc.stats().errors == 1
        await svc.set("ok", 1)
        assert await svc.get("ok") == 1
    finally:
        raw.close()
        await provider.close()


def test_one_client_on_nbinfras_loop_serves_every_loop(
    redis_server: RedisServer, session: Session
) -> None:
    import asyncio
    import threading

    from nbinfra import _loop

    provider = RedisCacheProvider(url=redis_server.url, socket_timeout=5, socket_connect_timeout=5)
    svc = CacheService("loops", provider=provider, session=session)
    raw = _raw(redis_server)
    before = {c["id"] for c in raw.client_list()}

    async def use(i: int) -> None:
        await svc.set(f"k{i}", i)
        assert await svc.get(f"k{i}") == i
        assert f"k{i}" in await svc.keys()
        assert await svc.get_or_set(f"g{i}", lambda: i) == i

    try:
        asyncio.run(use(1))  # a script's loop, closed afterwards
        worker = threading.Thread(target=lambda: asyncio.run(use(2)))  # a loop elsewhere
        worker.start()
        worker.join(30)
        svc.sync.set("k3", 3)  # nbinfra's own loop
        asyncio.run(use(4))
        assert svc.sync.keys() == ["g1", "g2", "g4", "k1", "k2", "k3", "k4"]
        opened = [c for c in raw.client_list() if c["id"] not in before]
        assert len(opened) == 1, opened  # one pool, one connection for sequential calls
        asyncio.run(provider.close())  # from yet another loop
        deadline = time.monotonic() + 5  # the server notices a closed socket soon after
        while [c for c in raw.client_list() if c["id"] not in before]:
            assert time.monotonic() < deadline, "the provider's connection stayed open"
            time.sleep(0.01)
    finally:
        _loop.run_sync(provider.close())  # a second close does nothing
        raw.close()


async def test_clear_uses_scan_and_unlink_never_keys_or_flush(
    redis_server: RedisServer, session: Session
) -> None:
    provider = RedisCacheProvider(url=redis_server.url, socket_timeout=5, socket_connect_timeout=5)
    raw = _raw(redis_server)
    try:
        svc = CacheService("bulk", provider=provider, session=session)
        other = CacheService("bulkier", provider=provider, session=session)
        await svc.set_many({f"k{i}": i for i in range(2500)})
        await other.set("k", 1)
        raw.config_resetstat()
        assert await svc.clear() == 2500
        stats = raw.info("commandstats")
        assert "cmdstat_scan" in stats and "cmdstat_unlink" in stats
        assert stats["cmdstat_unlink"]["calls"] >= 5  # batched, not one giant call
        for forbidden in ("cmdstat_keys", "cmdstat_flushdb", "cmdstat_flushall", "cmdstat_del"):
            assert forbidden not in stats
        assert await other.get("k") == 1
    finally:
        raw.close()
        await provider.close()


async def test_batches_are_single_round_trips(redis_server: RedisServer, session: Session) -> None:
    provider = RedisCacheProvider(url=redis_server.url, socket_timeout=5, socket_connect_timeout=5)
    raw = _raw(redis_server)
    try:
        svc = CacheService("rt", provider=provider, session=session)
        raw.config_resetstat()
        await svc.set_many({f"k{i}": i for i in range(1000)}, ttl=60)
        await svc.get_many([f"k{i}" for i in range(1000)])
        stats = raw.info("commandstats")
        assert stats["cmdstat_mget"]["calls"] == 1
        assert stats["cmdstat_set"]["calls"] == 1000  # pipelined SET PX
        assert "cmdstat_get" not in stats
    finally:
        raw.close()
        await provider.close()


def _run_children(code: str, n: int, timeout: float = 60) -> list[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(n)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    return outputs


def test_single_flight_across_four_processes(redis_server: RedisServer) -> None:
    raw = _raw(redis_server)
    raw.delete("sf:go", "sf:loader_calls", "sf:value")
    code = textwrap.dedent(
        f"""
        import asyncio, time, redis
        from nbinfra.cache import CacheService
        from nbinfra.cache.redis import RedisCacheProvider
        from nbinfra.config import Settings
        from nbinfra.session import Session

        URL = {redis_server.url!r}

        async def main():
            session = Session(Settings.from_dict({{"cache": {{}}}}))
            provider = RedisCacheProvider(url=URL, socket_connect_timeout=5, socket_timeout=5)
            svc = CacheService("sf", provider=provider, session=session)
            plain = redis.asyncio.Redis.from_url(URL)
            async def loader():
                await plain.incr("sf:loader_calls")
                await asyncio.sleep(0.3)
                return {{"answer": 42}}
            while not await plain.exists("sf:go"):   # start together
                await asyncio.sleep(0.005)
            results = await asyncio.gather(*(svc.get_or_set("value", loader) for _ in range(250)))
            assert all(r == {{"answer": 42}} for r in results), results[:3]
            await plain.aclose()
            await provider.close()
            print(len(results))

        asyncio.run(main())
        """
    )
    import threading

    threading.Timer(1.5, lambda: raw.set("sf:go", 1)).start()
    outputs = _run_children(code, 4)
    assert outputs == ["250"] * 4
    assert raw.get("sf:loader_calls") == b"1"  # one loader run among 1,000 callers
    raw.close()


def test_value_written_by_one_process_is_read_by_another(
    redis_server: RedisServer, session: Session
) -> None:
    import asyncio
    import datetime as dt
    import uuid
    from decimal import Decimal

    from tests.cache.models import Order

    order = Order(id=uuid.UUID(int=7), items=[("pear", 3)], total=Decimal("9.99"))
    value = {
        "order": order,
        "when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "pair": (1, b"\x00"),
        "tags": {"x", "y"},
    }

    async def write() -> None:
        provider = RedisCacheProvider(
            url=redis_server.url, socket_timeout=5, socket_connect_timeout=5
        )
        await CacheService("xproc", provider=provider, session=session).set("v", value)
        await provider.close()

    asyncio.run(write())
    code = textwrap.dedent(
        f"""
        import datetime as dt, uuid
        from decimal import Decimal
        import nbinfra.cache
        from nbinfra.errors import SerializationError
        from nbinfra.config import Settings
        from nbinfra.session import Session
        from tests.cache.models import Order

        settings = Settings.from_dict(
            {{"cache": {{"backend": "redis",
                        "redis": {{"url": {redis_server.url!r}, "socket_connect_timeout": 5}}}}}}
        )
        with Session(settings) as session:
            cache = nbinfra.cache("xproc", session=session)
            try:
                cache.get("v")
            except SerializationError as exc:
                assert "register_type(Order)" in str(exc), exc
            else:
                raise AssertionError("an unregistered class was rebuilt")
            nbinfra.cache.register_type(Order)  # this reader trusts the writer's class
            got = cache.get("v")
        expected = {{
            "order": Order(id=uuid.UUID(int=7), items=[("pear", 3)], total=Decimal("9.99")),
            "when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
            "pair": (1, b"\\x00"),
            "tags": {{"x", "y"}},
        }}
        print("same" if got == expected else repr(got))
        """
    )
    assert _run_children(code, 1) == ["same"]


def test_sync_facade_get_is_served_on_the_background_loop(redis_server: RedisServer) -> None:
    from nbinfra.config import Settings

    settings = Settings.from_dict(
        {
            "cache": {
                "backend": "redis",
                "redis": {"url": redis_server.url, "socket_connect_timeout": 5},
            }
        }
    )
    with Session(settings) as sess:
        import nbinfra.cache

        cache = nbinfra.cache("loop", session=sess)
        start = time.monotonic()
        for i in range(200):
            cache.set(f"k{i}", i)
            assert cache.get(f"k{i}") == i
        assert time.monotonic() - start < 30  # bounded; speed itself is benchmarked
