"""Cache benchmarks: nbinfra against raw redis.asyncio, aiocache and cachetools.

Run ``python -m benchmarks.bench_cache`` (``--smoke`` for a quick pass). A private
``redis-server`` is started for the run. Every comparison interleaves its contenders
(A B A B ...) on one event loop, so drift on a shared machine hits all of them alike.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import warnings
from typing import Any

from benchmarks.harness import Comparison, interleave, interleave_async

AREA = "cache"


def _value(i: int) -> dict[str, Any]:
    """A ~1 KB JSON document."""
    return {
        "id": i,
        "name": f"user-{i}",
        "email": f"user{i}@example.com",
        "active": True,
        "score": 12.5 + i,
        "tags": ["alpha", "beta", "gamma", "delta"],
        "address": {"street": "1 Main Street", "city": "Springfield", "zip": "12345"},
        "bio": "x" * 800,
    }


def run(smoke: bool = False) -> list[Comparison]:
    from nbinfra.testing import RedisServer

    with RedisServer() as server, warnings.catch_warnings():
        # aiocache 0.12 calls redis-py APIs deprecated since 5.0 (setex, close).
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"aiocache\.")
        loop = asyncio.new_event_loop()
        try:
            results = _redis_comparisons(server, loop, smoke)
            results += _memory_comparisons(loop, smoke)
        finally:
            loop.close()
    results.append(_facade_comparison(smoke))
    return results


def _session() -> Any:
    from nbinfra.config import Settings
    from nbinfra.session import Session

    return Session(Settings.from_dict({"cache": {"backend": "memory", "default_ttl": 300}}))


def _redis_comparisons(
    server: Any, loop: asyncio.AbstractEventLoop, smoke: bool
) -> list[Comparison]:
    import redis.asyncio as aioredis
    from aiocache import RedisCache
    from aiocache.serializers import JsonSerializer

    from nbinfra.cache import CacheService
    from nbinfra.cache.redis import RedisCacheProvider

    rounds = 3 if smoke else 15
    n_pairs = 50 if smoke else 300
    batch = 200 if smoke else 1000
    values = [_value(i) for i in range(batch)]
    session = _session()
    provider = RedisCacheProvider(url=server.url)
    svc = CacheService("bench", provider=provider, session=session)
    raw = aioredis.Redis.from_url(server.url)
    aio = RedisCache(serializer=JsonSerializer(), endpoint=server.host, port=server.port)
    aio.namespace = "bench-aio"
    dumps, loads = json.dumps, json.loads
    keys = [f"b{i}" for i in range(batch)]
    raw_keys = [f"bench:b{i}" for i in range(batch)]
    items = dict(zip(keys, values, strict=True))

    async def nb_pairs() -> None:
        for i in range(n_pairs):
            await svc.set(f"p{i}", values[i % batch], ttl=300)
            await svc.get(f"p{i}")

    async def raw_pairs() -> None:
        for i in range(n_pairs):
            await raw.set(f"raw:p{i}", dumps(values[i % batch]), ex=300)
            loads(await raw.get(f"raw:p{i}"))

    async def aio_pairs() -> None:
        for i in range(n_pairs):
            await aio.set(f"p{i}", values[i % batch], ttl=300)
            await aio.get(f"p{i}")

    async def nb_set_many() -> None:
        await svc.set_many(items, ttl=300)

    async def raw_set_many() -> None:
        async with raw.pipeline(transaction=False) as pipe:
            for k, v in zip(raw_keys, values, strict=True):
                pipe.set(k, dumps(v), ex=300)
            await pipe.execute()

    async def nb_get_many() -> None:
        got = await svc.get_many(keys)
        assert len(got) == batch

    async def raw_get_many() -> None:
        got = [loads(v) for v in await raw.mget(raw_keys)]
        assert len(got) == batch

    async def nb_sequential() -> None:
        for k in keys:
            await svc.get(k)

    async def close() -> None:
        await svc.clear()
        await raw.aclose()
        await aio.close()
        await provider.close()

    try:
        pairs = interleave_async(
            {"nbinfra": nb_pairs, "redis.asyncio": raw_pairs, "aiocache": aio_pairs},
            rounds=rounds,
            ops=n_pairs,
            loop=loop,
        )
        set_many = interleave_async(
            {"nbinfra": nb_set_many, "redis.asyncio": raw_set_many}, rounds=rounds, loop=loop
        )
        get_many = interleave_async(
            {
                "nbinfra": nb_get_many,
                "redis.asyncio": raw_get_many,
                "nbinfra sequential gets": nb_sequential,
            },
            rounds=rounds,
            loop=loop,
        )
    finally:
        loop.run_until_complete(close())
        session.close()
    workload = "set + get of a ~1 KB JSON value, sequential"
    return [
        Comparison(
            AREA,
            "redis get/set vs raw",
            workload,
            pairs,
            nbinfra="nbinfra",
            baseline="redis.asyncio",
            max_ratio=1.15,
            unit="s/pair",
            notes="raw = redis.asyncio + json.dumps/loads",
        ),
        Comparison(
            AREA,
            "redis get/set vs aiocache",
            workload,
            pairs,
            nbinfra="nbinfra",
            baseline="aiocache",
            max_ratio=1.0,
            unit="s/pair",
            notes="aiocache RedisCache with its JsonSerializer",
        ),
        Comparison(
            AREA,
            f"redis get_many({batch})",
            f"{batch:,} keys of ~1 KB JSON in one call",
            get_many,
            nbinfra="nbinfra",
            baseline="redis.asyncio",
            max_ratio=1.2,
            unit="s/batch",
            notes="raw = MGET + json.loads; 'sequential gets' = one awaited get() per key",
        ),
        Comparison(
            AREA,
            f"redis set_many({batch}) with TTL",
            f"{batch:,} keys of ~1 KB JSON, TTL 300 s",
            set_many,
            nbinfra="nbinfra",
            baseline="redis.asyncio",
            max_ratio=1.2,
            unit="s/batch",
            notes="raw = pipelined SET EX + json.dumps",
        ),
    ]


def _memory_comparisons(loop: asyncio.AbstractEventLoop, smoke: bool) -> list[Comparison]:
    from aiocache import SimpleMemoryCache

    from nbinfra.cache import CacheService, CacheType

    rounds = 3 if smoke else 9
    n = 500 if smoke else 20_000
    session = _session()
    svc = CacheService("mem", cache_type=CacheType.IN_MEMORY, session=session)
    aio = SimpleMemoryCache()
    value = {"id": 1, "name": "user", "tags": ["a", "b"], "score": 1.5}

    async def nb() -> None:
        for i in range(n):
            key = f"k{i & 1023}"
            await svc.set(key, value, ttl=300)
            await svc.get(key)

    async def aio_ops() -> None:
        for i in range(n):
            key = f"k{i & 1023}"
            await aio.set(key, value, ttl=300)
            await aio.get(key)

    samples = interleave_async(
        {"nbinfra": nb, "aiocache": aio_ops}, rounds=rounds, ops=n * 2, loop=loop
    )
    loop.run_until_complete(aio.clear())
    session.close()
    return [
        Comparison(
            AREA,
            "memory set+get vs aiocache",
            "set then get of a small dict, same event loop",
            samples,
            nbinfra="nbinfra",
            baseline="aiocache",
            max_ratio=0.5,
            unit="s/op",
            notes="aiocache SimpleMemoryCache (stores references; nbinfra stores copies)",
        )
    ]


def _facade_comparison(smoke: bool) -> Comparison:
    import cachetools

    import nbinfra.cache

    rounds = 3 if smoke else 9
    n = 2_000 if smoke else 100_000
    session = _session()
    facade = nbinfra.cache("facade", session=session)
    ttl_cache: cachetools.TTLCache[str, Any] = cachetools.TTLCache(maxsize=10_000, ttl=300)
    value = {"id": 1, "name": "user", "tags": ["a", "b"], "score": 1.5}
    for i in range(1024):
        facade.set(f"k{i}", value)
        ttl_cache[f"k{i}"] = value
    keys = [f"k{i & 1023}" for i in range(n)]

    def nb() -> None:
        get = facade.get
        for key in keys:
            get(key)

    def tc() -> None:
        get = ttl_cache.get
        for key in keys:
            get(key)

    samples = interleave({"nbinfra.cache()": nb, "cachetools.TTLCache": tc}, rounds=rounds, ops=n)
    session.close()
    comparison = Comparison(
        AREA,
        "sync facade get vs cachetools",
        "get of a cached small dict from sync code",
        samples,
        nbinfra="nbinfra.cache()",
        baseline="cachetools.TTLCache",
        unit="s/get",
        notes="target: facade < 10 us/get; cachetools returns the stored object, "
        "nbinfra a fresh copy",
    )
    comparison.extra["us/get"] = comparison.median("nbinfra.cache()") * 1e6
    return comparison


def _table(results: list[Comparison]) -> str:
    lines = [
        "| comparison | contender | median | spread | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in results:
        for name in c.samples:
            median = c.median(name)
            shown = f"{median * 1e6:.1f} us" if median < 1e-2 else f"{median * 1e3:.2f} ms"
            is_nb = name == c.nbinfra
            ratio = f"{c.ratio:.3f}" if is_nb and c.ratio is not None else ""
            target = f"<= {c.max_ratio}" if is_nb and c.max_ratio is not None else ""
            met = "" if not is_nb or c.met is None else ("yes" if c.met else "NO")
            if is_nb and "us/get" in c.extra:
                target = "< 10 us/get"
                met = "yes" if c.extra["us/get"] < 10 else "NO"
            cells = [c.name, name, shown, f"{c.spread(name):.0%}", ratio, target, met]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    started = time.perf_counter()
    found = run(smoke="--smoke" in sys.argv)
    print(_table(found))
    print(f"\n({time.perf_counter() - started:.1f} s)")
