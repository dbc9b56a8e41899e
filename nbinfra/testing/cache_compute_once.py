"""``ComputeOnceContract``: ``get_or_set`` on one cache provider, the part of
``CacheContract`` about loaders: one load per cold key however many callers (tasks,
threads, nested loaders), errors and cancellation handed over, plain loaders off every
event loop. ``CacheContract`` includes it; it uses the same ``service`` fixture.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from nbinfra import _loop
from nbinfra.cache import MISS, CacheService

__all__ = ["ComputeOnceContract"]

T = TypeVar("T")


async def _in_thread(fn: Callable[[], T], timeout: float = 30.0) -> T:
    """``fn()`` in a daemon thread of its own, awaited without blocking this loop; a call
    still running after ``timeout`` fails the test (and cannot hang the run)."""
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test
            outcome.append((False, exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    await asyncio.to_thread(thread.join, timeout)
    if not outcome:
        raise AssertionError(f"the call was still running after {timeout} s")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


class ComputeOnceContract:
    """The compute-once tests; see ``CacheContract`` for the fixtures."""

    async def test_get_or_set_loads_once_then_hits(self, service: CacheService) -> None:
        calls: list[int] = []

        async def loader() -> dict[str, int]:
            calls.append(1)
            return {"v": len(calls)}

        assert await service.get_or_set("k", loader, ttl=60) == {"v": 1}
        assert await service.get_or_set("k", loader, ttl=60) == {"v": 1}
        assert calls == [1]
        assert 59 < (await service.ttl("k") or 0) <= 60

    async def test_get_or_set_loader_error_is_not_cached(self, service: CacheService) -> None:
        def boom() -> int:
            raise RuntimeError("loader failed")

        with pytest.raises(RuntimeError, match="loader failed"):
            await service.get_or_set("k", boom)
        assert await service.get_or_set("k", lambda: 7) == 7

    async def test_single_flight_1000_concurrent(self, service: CacheService) -> None:
        calls: list[int] = []

        async def slow_loader() -> list[int]:
            calls.append(1)
            await asyncio.sleep(0.05)
            return [1, 2, 3]

        results = await asyncio.wait_for(
            asyncio.gather(*(service.get_or_set("cold", slow_loader) for _ in range(1000))), 30
        )
        assert calls == [1]
        assert all(r == [1, 2, 3] for r in results)
        results[0].append(4)  # every caller holds its own copy
        assert results[1] == [1, 2, 3]

    async def test_single_flight_error_reaches_every_waiter(self, service: CacheService) -> None:
        async def failing() -> int:
            await asyncio.sleep(0.02)
            raise ValueError("nope")

        outcomes = await asyncio.gather(
            *(service.get_or_set("bad", failing) for _ in range(50)), return_exceptions=True
        )
        assert all(isinstance(o, ValueError) for o in outcomes)
        assert await service.get("bad", MISS) is MISS

    async def test_cancelled_leader_hands_over_to_a_waiter(self, service: CacheService) -> None:
        started = asyncio.Event()
        calls: list[int] = []

        async def loader() -> int:
            calls.append(1)
            started.set()
            await asyncio.sleep(0.1 if len(calls) == 1 else 0)
            return len(calls)

        leader = asyncio.ensure_future(service.get_or_set("k", loader))
        await asyncio.wait_for(started.wait(), 5)
        waiters = [asyncio.ensure_future(service.get_or_set("k", loader)) for _ in range(5)]
        await asyncio.sleep(0.01)
        leader.cancel()
        results = await asyncio.wait_for(asyncio.gather(*waiters), 10)
        assert results == [2] * 5 and calls == [1, 1]  # one waiter took over, once
        with pytest.raises(asyncio.CancelledError):
            await leader

    async def test_sync_loader_may_use_the_sync_api(self, service: CacheService) -> None:
        """A plain-function loader runs off every event loop, so it may call nbinfra's
        synchronous API, which raises ``LoopError`` on nbinfra's own loop."""
        await service.set("side", "from the cache")
        cache = service.sync
        seen: list[Any] = []

        def loader() -> str:
            seen.append(cache.get("side"))  # the cache's sync facade, inside the loader
            seen.append(_loop.run_sync(asyncio.sleep(0, "bridged")))
            seen.append(_loop.in_loop_thread())
            return "loaded"

        assert await _in_thread(lambda: cache.get_or_set("sync", loader)) == "loaded"
        assert seen == ["from the cache", "bridged", False]
        assert await service.get_or_set("async", loader) == "loaded"  # and from async code
        assert seen[3:] == ["from the cache", "bridged", False]
        assert await service.get_many(["sync", "async"]) == {"sync": "loaded", "async": "loaded"}

    async def test_a_slow_sync_loader_blocks_no_other_call(self, service: CacheService) -> None:
        await service.set("other", {"v": 1})
        cache = service.sync
        started = threading.Event()

        def slow() -> str:
            started.set()
            time.sleep(1.0)
            return "slow"

        loading = asyncio.ensure_future(_in_thread(lambda: cache.get_or_set("slow", slow)))
        assert await asyncio.to_thread(started.wait, 10)
        start = time.monotonic()
        assert await _in_thread(lambda: cache.get("other")) == {"v": 1}
        elapsed = time.monotonic() - start
        assert await loading == "slow"
        # A behaviour bound, not a benchmark: the read does not wait for the loader.
        assert elapsed < 0.5, f"a get waited {elapsed:.2f} s behind a 1 s loader"

    async def test_sync_loaders_nest_deeper_than_a_thread_pool(self, service: CacheService) -> None:
        """A loader filling another key through the sync API (a ``@cached`` function
        calling another), many levels deep: each level waits for the next."""
        cache = service.sync
        depth = 40  # asyncio.to_thread's pool has min(32, cores + 4) threads

        def level(n: int) -> int:
            if n == 0:
                return 0
            below: int = cache.get_or_set(f"level{n - 1}", lambda: level(n - 1))
            return below + 1

        top = await _in_thread(lambda: cache.get_or_set(f"level{depth}", lambda: level(depth)))
        assert top == depth
        assert await service.get("level0") == 0 and await service.get("level20") == 20

    async def test_sync_callers_on_many_threads_load_once(self, service: CacheService) -> None:
        """``SyncCache.get_or_set`` from 16 threads at once: one load, one value for all,
        and the plain loader runs on a worker thread, never on a caller's or a loop's."""
        cache = service.sync
        calls: list[tuple[int, bool]] = []
        callers: set[int] = set()
        gate = threading.Barrier(16)

        def loader() -> dict[str, int]:
            calls.append((threading.get_ident(), _loop.in_loop_thread()))
            time.sleep(0.2)
            return {"v": 1}

        def call() -> dict[str, int]:
            callers.add(threading.get_ident())
            gate.wait(10)
            got: dict[str, int] = cache.get_or_set("many", loader)
            return got

        results = await asyncio.gather(*(_in_thread(call) for _ in range(16)))
        assert results == [{"v": 1}] * 16
        assert len(calls) == 1, f"the loader ran {len(calls)} times"
        assert calls[0][0] not in callers and calls[0][1] is False
        assert cache.get_or_set("many", loader) == {"v": 1} and len(calls) == 1
        stats = service.stats()
        assert stats.misses == 1 and stats.hits >= 1
