"""The seed's snippets, the factory, the decorator, instances and the sync facade."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from unittest.mock import AsyncMock, patch

import pytest

import nbinfra.cache
from nbinfra.cache import (
    MISS,
    CacheFactory,
    CacheRegistry,
    CacheService,
    CacheType,
    all_stats,
    cached,
)
from nbinfra.cache.memory import InMemoryCacheProvider
from nbinfra.config import Settings
from nbinfra.errors import ConfigError, MissingSettingError, UnknownKindError
from nbinfra.registry import BUILTINS, target_of
from nbinfra.session import Session, use_session
from nbinfra.testing import RedisServer

ROOT = Path(__file__).resolve().parents[2]


# -- the seed's two test examples, verbatim but for the import path -------------------
@patch("nbinfra.cache.CacheFactory.create_cache")
async def test_seed_cache_service_with_mocked_factory(mock_factory: AsyncMock) -> None:
    mock_provider = AsyncMock()
    mock_factory.return_value = mock_provider

    cache = CacheService("test")
    await cache.set("key", "value")

    mock_provider.set.assert_called_once()
    args = mock_provider.set.call_args.args
    assert args[0] == "test:key" and args[1] == b'"value"'


async def test_seed_cache_integration(session: Session) -> None:
    cache = CacheService("test", cache_type=CacheType.IN_MEMORY)

    await cache.set("key", "value")
    result = await cache.get("key")

    assert result == "value"


# -- factory and registry ---------------------------------------------------------------
def test_builtin_rows_match_the_registered_classes() -> None:
    from nbinfra.cache.redis import RedisCacheProvider

    rows = BUILTINS["nbinfra.caches"]
    assert list(rows) == sorted(rows)
    assert rows["memory"].target == target_of(InMemoryCacheProvider)
    assert rows["redis"].target == target_of(RedisCacheProvider)
    assert rows["redis"].hint == "pip install 'nbinfra[redis]'"
    assert CacheRegistry.get(CacheType.REDIS) is RedisCacheProvider
    assert CacheRegistry.get("in_memory") is InMemoryCacheProvider  # alias


def test_unknown_kind_suggests_the_nearest(session: Session) -> None:
    with pytest.raises(UnknownKindError, match="Did you mean 'redis'"):
        CacheFactory.create_cache("rediss")


def test_factory_shares_providers_per_session(session: Session) -> None:
    a = CacheFactory.create_cache(CacheType.IN_MEMORY)
    assert CacheFactory.create_cache("memory") is a
    private = CacheFactory.create_cache("memory", max_size=3)
    assert private is not a and isinstance(private, InMemoryCacheProvider)
    assert private.max_size == 3
    other = Session(Settings.from_dict({"cache": {"backend": "memory"}}))
    assert CacheFactory.create_cache(session=other) is not a


async def test_services_of_one_namespace_share_data_and_stats(session: Session) -> None:
    one, two = CacheService("shared"), CacheService("shared")
    await one.set("k", 1)
    assert await two.get("k") == 1
    assert one.stats().hits == two.stats().hits == 1
    await CacheService("another").get("nothing")
    listed = {s.namespace: s for s in all_stats()}
    assert listed["shared"].hits == 1 and listed["another"].misses == 1
    assert listed["shared"].backend == "memory"


def test_backend_from_config_and_unset_variable_raised_only_on_use(
    redis_server: RedisServer,
) -> None:
    settings = Settings.from_dict(
        {
            "cache": {
                "backend": "memory",
                "redis": {"url": redis_server.url, "password": "${NBINFRA_TEST_UNSET_PW}"},
            }
        },
        environ={},
    )
    with Session(settings) as sess:
        svc = CacheService("cfg", session=sess)  # memory: the unset password is not needed
        assert svc.provider.kind == "memory"
        with pytest.raises(MissingSettingError, match="NBINFRA_TEST_UNSET_PW"):
            CacheService("cfg", cache_type="redis", session=sess)


def test_bad_config_names_the_key() -> None:
    settings = Settings.from_dict({"cache": {"redis": {"fallback": "disk"}}})
    with Session(settings) as sess, pytest.raises(ConfigError, match=r"cache\.redis\.fallback"):
        CacheService("x", cache_type="redis", session=sess)


def test_typo_in_cache_section_is_caught() -> None:
    settings = Settings.from_dict({"cache": {"defualt_ttl": 5}})
    with Session(settings) as sess, pytest.raises(ConfigError, match="did you mean 'default_ttl'"):
        CacheService("x", session=sess)


def test_pickle_needs_a_key_and_works_with_one() -> None:
    with (
        Session(Settings.from_dict({"cache": {"serializer": "pickle"}})) as sess,
        pytest.raises(ConfigError, match="pickle_hmac_key"),
    ):
        CacheService("p", session=sess)
    settings = Settings.from_dict({"cache": {"serializer": "pickle", "pickle_hmac_key": "k" * 16}})
    with Session(settings) as sess:
        svc = CacheService("p", session=sess).sync
        svc.set("obj", threading.Event)  # pickle stores what JSON cannot
        assert svc.get("obj") is threading.Event


def test_invalid_arguments(session: Session) -> None:
    with pytest.raises(ValueError, match="namespace"):
        CacheService("")
    with pytest.raises(ValueError, match="default_ttl"):
        CacheService("x", default_ttl=-1)
    with pytest.raises(ValueError, match="ttl must be"):
        nbinfra.cache("x").set("k", 1, ttl=-5)


# -- the sync facade ----------------------------------------------------------------------
def test_callable_module_facade(session: Session) -> None:
    cache = nbinfra.cache("facade", ttl=60)
    assert cache.set("k", {"a": 1})
    assert cache.get("k") == {"a": 1}
    assert cache.get("absent", MISS) is MISS
    assert cache.exists("k") and not cache.exists("absent")
    assert 59 < (cache.ttl("k") or 0) <= 60
    assert cache.incr("n") == 1 and cache.decr("n") == 0
    cache.set_many({"a": 1, "b": 2})
    assert cache.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    assert cache.keys() == ["a", "b", "k", "n"]
    assert cache.delete("a") and cache.delete_many(["b", "zz"]) == 1
    assert cache.get_or_set("lazy", lambda: [1]) == [1]
    assert cache.clear() == 3
    assert cache.keys() == []
    stats = cache.stats()
    assert stats.namespace == "facade" and stats.hits >= 2
    # the facade and the async service share the data
    assert asyncio.run(CacheService("facade").get("lazy", MISS)) is MISS


def test_facade_fast_path_never_touches_the_loop(session: Session) -> None:
    from nbinfra import _loop

    cache = nbinfra.cache("fast")
    with patch.object(_loop, "run_sync", side_effect=AssertionError("loop used")):
        cache.set("k", 1)
        assert cache.get("k") == 1
        assert cache.incr("n") == 1
        assert cache.keys() == ["k", "n"]
        assert cache.get_or_set("g", lambda: 2) == 2


def test_facade_on_redis_goes_through_the_loop(redis_server: RedisServer) -> None:
    settings = Settings.from_dict(
        {
            "cache": {
                "backend": "redis",
                "redis": {"url": redis_server.url, "socket_connect_timeout": 5},
            }
        }
    )
    with Session(settings) as sess:
        cache = nbinfra.cache("facade-redis", session=sess)
        assert cache.service.provider.kind == "redis"
        cache.set("k", (1, 2))
        assert cache.get("k") == (1, 2)
        assert cache.get_or_set("g", lambda: {"x": 1}) == {"x": 1}
        assert cache.keys() == ["g", "k"]
        assert cache.clear() == 2
        assert cache.health().ok


def test_facade_get_or_set_is_single_flight_across_threads(session: Session) -> None:
    cache = nbinfra.cache("threads")
    calls: list[int] = []
    gate = threading.Barrier(8)

    def loader() -> int:
        calls.append(1)
        threading.Event().wait(0.05)
        return 5

    results: list[int] = []

    def worker() -> None:
        gate.wait(5)
        results.append(cache.get_or_set("cold", loader))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert calls == [1] and results == [5] * 8


# -- @cached --------------------------------------------------------------------------------
def test_cached_sync_function(session: Session) -> None:
    calls: list[tuple[int, int]] = []

    @cached(namespace="sq", ttl=60)
    def add(a: int, b: int = 1) -> int:
        calls.append((a, b))
        return a + b

    assert add(2) == 3 and add(2, b=1) == 3 and add(a=2) == 3
    assert add(3) == 4
    assert calls == [(2, 1), (3, 1)]
    assert add.invalidate(2) is True  # type: ignore[attr-defined]
    assert add(2) == 3 and len(calls) == 3


async def test_cached_async_function_with_key_template(session: Session) -> None:
    calls: list[int] = []

    @cached(namespace="users", ttl=60, key="user:{user_id}")
    async def load_user(user_id: int, verbose: bool = False) -> dict[str, int]:
        calls.append(user_id)
        await asyncio.sleep(0.01)
        return {"id": user_id}

    results = await asyncio.gather(*(load_user(7) for _ in range(20)))
    assert results == [{"id": 7}] * 20 and calls == [7]
    assert await CacheService("users").keys() == ["user:7"]
    assert await load_user(7, verbose=True) == {"id": 7}  # same key by template
    assert await load_user.invalidate(7) is True  # type: ignore[attr-defined]


def test_cached_caches_none_and_methods_ignore_self(session: Session) -> None:
    calls: list[int] = []

    class Repo:
        @cached(namespace="repo")
        def find(self, item: int) -> None:
            calls.append(item)

    Repo().find(1)
    Repo().find(1)  # another instance, same arguments: a hit
    assert calls == [1]


def test_cached_key_callable(session: Session) -> None:
    @cached(namespace="kc", key=lambda x, y: f"{x}-{y}")
    def f(x: int, y: int) -> int:
        return x * y

    assert f(2, 3) == 6
    assert nbinfra.cache("kc").keys() == ["2-3"]


# -- pre-configured instances ---------------------------------------------------------------
def test_instances_import_opens_nothing() -> None:
    code = (
        "import sys, socket\n"
        "opened = []\n"
        "real = socket.socket.connect\n"
        "def spy(self, *a): opened.append(a); return real(self, *a)\n"
        "socket.socket.connect = spy\n"
        "from nbinfra.cache.instances import confirmation_cache, signup_cache\n"
        "import nbinfra.session as s\n"
        "assert 'redis' not in sys.modules, 'redis imported'\n"
        "assert s._default is None, 'a session was created'\n"
        "assert not opened, opened\n"
        "print(repr(confirmation_cache))\n"
    )
    env = {"PYTHONPATH": str(ROOT), "NBINFRA_CACHE_BACKEND": "redis", "REDIS_PORT": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "bound on first use" in out.stdout


async def test_instances_bind_to_the_current_session(nbinfra_session: Session) -> None:
    from nbinfra.cache.instances import confirmation_cache, signup_cache

    session = nbinfra_session  # the shipped application-cache.yaml

    await confirmation_cache.set("action_123", {"user": 1})
    assert await confirmation_cache.get("action_123") == {"user": 1}
    svc = confirmation_cache.service()
    assert svc.namespace == "confirmation" and svc.default_ttl == 600
    assert signup_cache.service().default_ttl == 3600
    assert await CacheService("confirmation").get("action_123") == {"user": 1}
    other = Session(session.settings)
    with use_session(other):
        assert await confirmation_cache.get("action_123") is None  # a new session, new data
    other.close()


def test_unknown_instance_name_is_a_clear_error() -> None:
    import nbinfra.cache.instances as instances

    with pytest.raises(AttributeError, match="no attribute 'nope_cache'"):
        _ = instances.nope_cache
    with pytest.raises(ConfigError, match="declared: "):
        instances.CacheInstance("nope_cache").service(Session(Settings.from_dict({})))


def test_import_nbinfra_cache_stays_light() -> None:
    code = (
        "import sys, nbinfra.cache\n"
        "heavy = [m for m in ('redis', 'pydantic', 'msgpack', 'numpy') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.strip() == "[]", out.stderr
