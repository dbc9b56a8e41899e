"""``CacheContract``: every ``CacheService`` method, run against one cache provider.

A cache kind (built in or a plugin's) proves itself by subclassing the contract and giving
one fixture, ``provider``: an instance of its provider class on a real server, closed
afterwards. The contract supplies ``session`` (a fresh session, memory defaults),
``make_service`` and ``service`` (a ``CacheService`` on ``provider`` in a namespace no
other test uses); a subclass may override any of them. Needs pytest, pytest-asyncio
(``asyncio_mode = "auto"``) and hypothesis::

    from nbinfra.testing.cache_contract import CacheContract

    class TestMyCache(CacheContract):
        @pytest.fixture
        async def provider(self, my_server):
            found = MyCacheProvider(url=my_server.url)
            yield found
            await found.close()
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import math
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbinfra.cache import MISS, CacheService
from nbinfra.cache.base import BaseCacheProvider
from nbinfra.config import Settings
from nbinfra.errors import CacheError
from nbinfra.session import Session, use_session
from nbinfra.testing.cache_compute_once import ComputeOnceContract

__all__ = ["CacheContract"]

T = TypeVar("T")
_counter = itertools.count()


@dataclasses.dataclass
class Point:
    x: int
    y: float
    label: str = ""


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(max_size=64)
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.uuids()
    | st.dates()
    | st.datetimes(timezones=st.none() | st.just(dt.timezone.utc)),
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=8), children, max_size=5)
        | st.dictionaries(st.integers(), children, max_size=3)
        | st.frozensets(st.integers() | st.text(max_size=4), max_size=4)
    ),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a.as_tuple() == b.as_tuple() or (a.is_nan() and b.is_nan())
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


class CacheContract(ComputeOnceContract):
    """The tests (compute-once in ``ComputeOnceContract``); a subclass gives the
    ``provider`` fixture (see the module's docstring)."""

    @pytest.fixture
    def session(self) -> Iterator[Session]:
        """A fresh session whose cache defaults are memory with a 300 s TTL."""
        fresh = Session(Settings.from_dict({"cache": {"backend": "memory", "default_ttl": 300}}))
        with use_session(fresh):
            yield fresh
        fresh.close()

    @pytest.fixture
    def make_service(
        self, provider: BaseCacheProvider, session: Session
    ) -> Callable[..., CacheService]:
        """A CacheService on ``provider`` in a namespace no other test uses."""

        def make(namespace: str | None = None, **kwargs: Any) -> CacheService:
            ns = namespace or f"t{next(_counter)}-{id(provider):x}"
            return CacheService(ns, provider=provider, session=session, **kwargs)

        return make

    @pytest.fixture
    def service(self, make_service: Callable[..., CacheService]) -> CacheService:
        return make_service()

    async def test_get_set_and_default(self, service: CacheService) -> None:
        assert await service.get("missing") is None
        assert await service.get("missing", "fallback") == "fallback"
        assert await service.set("k", {"a": [1, 2, 3]}) is True
        assert await service.get("k") == {"a": [1, 2, 3]}

    async def test_none_is_cacheable_and_distinct_from_a_miss(self, service: CacheService) -> None:
        await service.set("none", None)
        assert await service.get("none", MISS) is None
        assert await service.get("absent", MISS) is MISS
        assert await service.exists("none")
        calls: list[int] = []

        def loader() -> Any:
            calls.append(1)
            return None

        assert await service.get_or_set("none-loaded", loader) is None
        assert await service.get_or_set("none-loaded", loader) is None
        assert calls == [1]  # the cached None is a hit, not a reason to load again

    async def test_returned_values_are_copies(self, service: CacheService) -> None:
        original = {"items": [1, 2]}
        await service.set("k", original)
        original["items"].append(3)  # mutating what was stored...
        first = await service.get("k")
        first["items"].append(99)  # ...or what came back...
        assert await service.get("k") == {"items": [1, 2]}  # ...never changes the cache

    async def test_add_only_when_absent(self, service: CacheService) -> None:
        assert await service.add("k", 1) is True
        assert await service.add("k", 2) is False
        assert await service.get("k") == 1

    async def test_delete_and_exists(self, service: CacheService) -> None:
        await service.set("k", "v")
        assert await service.exists("k")
        assert await service.delete("k") is True
        assert await service.delete("k") is False
        assert not await service.exists("k")
        assert await service.get("k") is None

    async def test_int_keys_are_strings(self, service: CacheService) -> None:
        await service.set(42, "answer")
        assert await service.get("42") == "answer"
        with pytest.raises(TypeError, match="Cache keys are strings"):
            await service.set(("tuple",), 1)  # type: ignore[arg-type]

    async def test_ttl_expiry(self, service: CacheService) -> None:
        await service.set("short", "v", ttl=0.15)
        await service.set("forever", "v", ttl=0)
        remaining = await service.ttl("short")
        assert remaining is not None and 0 < remaining <= 0.15
        assert await service.ttl("forever") == math.inf
        assert await service.ttl("absent") is None
        await asyncio.sleep(0.3)
        assert await service.get("short", MISS) is MISS
        assert not await service.exists("short")
        assert await service.get("forever") == "v"

    async def test_default_ttl_applies(self, make_service: Callable[..., CacheService]) -> None:
        svc = make_service(default_ttl=0.15)
        await svc.set("k", 1)
        assert 0 < (await svc.ttl("k") or 0) <= 0.15
        await asyncio.sleep(0.3)
        assert await svc.get("k", MISS) is MISS

    async def test_expire_changes_and_removes_ttl(self, service: CacheService) -> None:
        await service.set("k", "v", ttl=0)
        assert await service.expire("k", 100) is True
        assert 99 < (await service.ttl("k") or 0) <= 100
        assert await service.expire("k", 0) is True
        assert await service.ttl("k") == math.inf
        assert await service.expire("absent", 10) is False
        await service.expire("k", 0.1)
        await asyncio.sleep(0.25)
        assert not await service.exists("k")

    async def test_incr_decr(self, service: CacheService) -> None:
        assert await service.incr("n") == 1
        assert await service.incr("n", 5) == 6
        assert await service.decr("n", 2) == 4
        assert await service.get("n") == 4  # counters read back as ints
        await service.set("text", "abc")
        with pytest.raises(CacheError, match="not an integer"):
            await service.incr("text")

    async def test_incr_ttl_only_on_new_key(self, service: CacheService) -> None:
        await service.incr("fresh", ttl=100)
        assert 99 < (await service.ttl("fresh") or 0) <= 100
        await service.set("old", 1, ttl=0)
        await service.incr("old", ttl=5)
        assert await service.ttl("old") == math.inf  # an existing key keeps its expiry

    async def test_batches(self, service: CacheService) -> None:
        items: dict[str | int, Any] = {f"k{i}": {"i": i, "none": None} for i in range(50)}
        items["nil"] = None
        await service.set_many(items, ttl=60)
        got = await service.get_many([*items, "absent1", "absent2"])
        assert got == items  # misses are left out; a cached None is kept
        assert 59 < (await service.ttl("k3") or 0) <= 60
        assert await service.delete_many(["k1", "k2", "absent"]) == 2
        assert await service.get_many(["k1", "k2", "k3"]) == {"k3": items["k3"]}
        assert await service.get_many([]) == {}
        await service.set_many({})

    async def test_batch_without_ttl(self, make_service: Callable[..., CacheService]) -> None:
        svc = make_service(default_ttl=0)
        await svc.set_many({"a": 1, "b": 2})
        assert await svc.ttl("a") == math.inf
        assert await svc.get_many(["a", "b"]) == {"a": 1, "b": 2}

    async def test_keys_and_scan_patterns(self, service: CacheService) -> None:
        await service.set_many({"user:1": 1, "user:2": 2, "order:1": 3, "star*": 4})
        assert await service.keys() == ["order:1", "star*", "user:1", "user:2"]
        assert await service.keys("user:*") == ["user:1", "user:2"]
        assert await service.keys("user:?") == ["user:1", "user:2"]
        assert await service.keys("[ou]*:1") == ["order:1", "user:1"]
        assert await service.keys("star\\*") == ["star*"]
        assert sorted([k async for k in service.scan("order*")]) == ["order:1"]

    @pytest.mark.parametrize(
        "victim",
        ["a", "a*", "a?", "a[b]", "[a]", "a\\"],
        ids=["plain", "star", "question", "brackets", "leading-bracket", "backslash"],
    )
    async def test_clear_touches_only_its_namespace(
        self, make_service: Callable[..., CacheService], victim: str
    ) -> None:
        tag = uuid.uuid4().hex[:8]
        names = ["a", "ab", "a*", "a?", "a[b]", "[a]", "ax", "a\\", "b"]
        services = {n: make_service(f"{tag}{n}") for n in names}
        for name, svc in services.items():
            await svc.set_many({"k1": name, "k*?[": name, "k2": name})
        removed = await services[victim].clear()
        assert removed == 3
        for name, svc in services.items():
            expected = {} if name == victim else {"k1": name, "k*?[": name, "k2": name}
            assert await svc.get_many(["k1", "k*?[", "k2"]) == expected, name

    async def test_namespaces_are_isolated(self, make_service: Callable[..., CacheService]) -> None:
        tag = uuid.uuid4().hex[:8]
        one, two = make_service(f"{tag}one"), make_service(f"{tag}two")
        await one.set("k", 1)
        await two.set("k", 2)
        assert (await one.get("k"), await two.get("k")) == (1, 2)
        await one.delete("k")
        assert await two.get("k") == 2
        assert await one.keys() == []

    async def test_rich_types_round_trip(self, service: CacheService) -> None:
        value = {
            "tuple": (1, "two", (3.0,)),
            "set": {1, 2, 3},
            "frozenset": frozenset({"a"}),
            "bytes": b"\x00\xffdata",
            "datetime": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
            "naive": dt.datetime(2024, 5, 1, 12, 30, 1, 5),
            "date": dt.date(2024, 5, 1),
            "time": dt.time(8, 15),
            "delta": dt.timedelta(days=2, seconds=5),
            "decimal": Decimal("3.14159265358979323846"),
            "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "dataclass": Point(1, 2.5, "p"),
            "nonstr_keys": {1: "a", (2, 3): "b", None: "c"},
            "nan_inf": [math.inf, -math.inf],
            "tag_lookalike": {"__nb__": "tuple", "v": [1]},
            "bigint": 2**100,
        }
        await service.set("rich", value)
        back = await service.get("rich")
        assert back == value
        assert type(back["tuple"][2]) is tuple and type(back["frozenset"]) is frozenset
        assert back["datetime"].tzinfo is not None
        nan = await service.get_or_set("nan", lambda: float("nan"))
        assert math.isnan(nan) and math.isnan(await service.get("nan"))

    async def test_pydantic_models_round_trip(self, service: CacheService) -> None:
        from tests.cache.models import Order

        order = Order(id=uuid.uuid4(), items=[("apple", 2)], total=Decimal("4.20"))
        await service.set("order", order)
        back = await service.get("order")
        assert isinstance(back, Order) and back == order

    def test_hypothesis_round_trips(self, provider: BaseCacheProvider, session: Any) -> None:
        loop = asyncio.new_event_loop()
        svc = CacheService(f"hyp-{uuid.uuid4().hex[:6]}", provider=provider, session=session)

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(value=json_values)
        def check(value: Any) -> None:
            async def round_trip() -> Any:
                await svc.set("v", value)
                return await svc.get("v", MISS)

            assert _same(loop.run_until_complete(round_trip()), value)

        try:
            check()
            if hasattr(provider, "close"):
                loop.run_until_complete(provider.close())
        finally:
            loop.close()

    async def test_provider_locks(self, provider: BaseCacheProvider) -> None:
        name = f"lock-{uuid.uuid4().hex}"
        token = await provider.acquire_lock(name, 5)
        assert token is not None
        assert await provider.acquire_lock(name, 5) is None
        assert await provider.release_lock(name, "not-the-owner") is False
        assert await provider.release_lock(name, token) is True
        async with provider.lock(name, ttl=5, wait=1) as held:
            assert held
            assert await provider.acquire_lock(name, 5) is None
        assert await provider.acquire_lock(name, 0.05) is not None
        await asyncio.sleep(0.15)  # an expired lock can be taken again
        assert await provider.acquire_lock(name, 5) is not None

    async def test_stats_count_hits_misses_and_latency(self, service: CacheService) -> None:
        await service.set("k", 1)
        await service.get("k")
        await service.get("k")
        await service.get("absent")
        await service.get_many(["k", "absent"])
        stats = service.stats()
        assert (stats.hits, stats.misses, stats.sets) == (3, 2, 1)
        assert stats.hit_rate == pytest.approx(0.6)
        assert stats.p50_ms is not None and 0 < stats.p50_ms <= (stats.p99_ms or 0)
        assert stats.namespace == service.namespace
        service.reset_stats()
        assert service.stats().hits == 0

    async def test_health_and_ping(self, service: CacheService) -> None:
        assert await service.ping() is True
        status = await service.health()
        assert status.ok and status.kind == service.provider.kind
