"""A cache kind known only to the registry works end to end.

``tiny`` below is registered the way a plugin registers (the decorator, or an entry point
in group ``nbinfra.caches``) and nothing in ``nbinfra/`` names it: ``nbinfra.cache(...)``,
``CacheFactory.create``, a YAML instance with ``backend: tiny`` and the kind's own settings
(its ``settings_class``), ``%cache use``, Tab completion and the health panel all see it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

import nbinfra
from nbinfra import _loop, registry
from nbinfra.cache import CacheFactory
from nbinfra.cache.base import BaseCacheProvider
from nbinfra.cache.instances import CacheInstance
from nbinfra.cache.memory import InMemoryCacheProvider
from nbinfra.cache.registry import CacheRegistry
from nbinfra.errors import ConfigError
from nbinfra.session import Session, use_session
from tests.notebook.conftest import TestingShell


@dataclass
class TinySettings:
    capacity: int = 100
    label: str = "tiny"


class TinyCacheProvider(BaseCacheProvider):
    """A loop-bound cache (not ``in_process``): every call checks it runs on nbinfra's loop,
    as a provider with real sockets would need."""

    kind = "tiny"
    settings_class = TinySettings

    def __init__(self, settings: TinySettings | None = None, **overrides: Any) -> None:
        base = settings or TinySettings()
        self.settings = TinySettings(**{**base.__dict__, **overrides})
        self._store = InMemoryCacheProvider(max_size=self.settings.capacity)
        self.threads: set[str] = set()

    async def _here(self) -> InMemoryCacheProvider:
        await asyncio.sleep(0)  # a real suspension, as a network call has
        assert asyncio.get_running_loop() is _loop.get_loop()
        self.threads.add(threading.current_thread().name)
        return self._store

    async def get(self, key: str) -> bytes | None:
        return await (await self._here()).get(key)

    async def set(
        self, key: str, value: bytes, ttl: float | None = None, *, nx: bool = False
    ) -> bool:
        return await (await self._here()).set(key, value, ttl, nx=nx)

    async def delete(self, key: str) -> bool:
        return await (await self._here()).delete(key)

    async def exists(self, key: str) -> bool:
        return await (await self._here()).exists(key)

    async def ttl(self, key: str) -> float | None:
        return await (await self._here()).ttl(key)

    async def expire(self, key: str, ttl: float | None) -> bool:
        return await (await self._here()).expire(key, ttl)

    async def incr(self, key: str, delta: int = 1, ttl: float | None = None) -> int:
        return await (await self._here()).incr(key, delta, ttl)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return await (await self._here()).get_many(keys)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        await (await self._here()).set_many(items, ttl)

    async def delete_many(self, keys: Sequence[str]) -> int:
        return await (await self._here()).delete_many(keys)

    async def clear(self, prefix: str) -> int:
        return await (await self._here()).clear(prefix)

    async def scan(self, match: str = "*", *, count: int = 1000) -> AsyncIterator[str]:
        async for key in (await self._here()).scan(match):
            yield key

    async def acquire_lock(self, name: str, ttl: float) -> str | None:
        return await (await self._here()).acquire_lock(name, ttl)

    async def release_lock(self, name: str, token: str) -> bool:
        return await (await self._here()).release_lock(name, token)

    async def ping(self) -> bool:
        await self._here()
        return True

    @property
    def target(self) -> str:
        return f"tiny ({self.settings.label})"


CACHE_YAML = """\
cache:
  backend: memory
  tiny:
    capacity: 7
    label: from-yaml
  instances:
    tiny_cache:
      backend: tiny
      namespace: tn
      ttl: 60
"""


@pytest.fixture(params=["decorator", "entry point"])
def tiny_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    assert "tiny" not in CacheRegistry
    if request.param == "decorator":
        CacheRegistry.register("tiny", TinyCacheProvider)
    else:
        point = EntryPoint("tiny", f"{__name__}:TinyCacheProvider", "nbinfra.caches")
        installed = list(registry._entry_points("nbinfra.caches"))
        monkeypatch.setattr(
            registry,
            "_entry_points",
            lambda group: [*installed, point] if group == "nbinfra.caches" else [],
        )
        monkeypatch.setattr(CacheRegistry, "_entry_points_loaded", False)
    yield "tiny"
    CacheRegistry.unregister("tiny")


@pytest.fixture
def session(tmp_path: Path, tiny_kind: str) -> Iterator[Session]:
    (tmp_path / "application-cache.yaml").write_text(CACHE_YAML)
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        yield fresh
    fresh.close()


def test_facade_and_factory(session: Session) -> None:
    sync = nbinfra.cache("plugin", cache_type="tiny")
    provider = sync.service.provider
    assert type(provider) is TinyCacheProvider
    assert provider.settings == TinySettings(capacity=7, label="from-yaml")  # cache.tiny
    assert sync.set("k", {"v": [1, 2]}) is True
    assert sync.get("k") == {"v": [1, 2]}
    assert sync.get_or_set("cold", lambda: 41 + 1) == 42
    assert sync.keys() == ["cold", "k"]
    assert provider.threads == {"nbinfra-loop"}
    # create(): a kind gives the session's shared provider, a configured name its backend's.
    assert CacheFactory.create("tiny") is provider
    assert CacheFactory.create("tiny_cache") is provider
    assert CacheFactory.create_cache("tiny") is provider  # the seed's name
    private = CacheFactory.create("tiny", capacity=3)
    assert private is not provider and private.settings.capacity == 3  # type: ignore[attr-defined]
    assert "tiny" in CacheFactory.available()


def test_yaml_instance(session: Session) -> None:
    service = CacheInstance("tiny_cache").service()
    assert type(service.provider) is TinyCacheProvider
    assert service.namespace == "tn" and service.default_ttl == 60
    service.sync.set("x", "y")
    assert nbinfra.cache("tn", cache_type="tiny").get("x") == "y"


def test_yaml_rejects_an_unknown_backend(tmp_path: Path, tiny_kind: str) -> None:
    (tmp_path / "application-cache.yaml").write_text(
        "cache:\n  instances:\n    bad:\n      backend: tinny\n"
    )
    fresh = Session(resources=tmp_path)
    with use_session(fresh), pytest.raises(ConfigError) as info:
        CacheInstance("bad").service()
    fresh.close()
    message = str(info.value)
    assert "\n" not in message
    assert "cache.instances.bad.backend" in message and "'tinny'" in message
    assert "registered kinds: " in message and "tiny" in message and "redis" in message
    assert "did you mean 'tiny'" in message


def test_kind_settings_are_validated(tmp_path: Path, tiny_kind: str) -> None:
    (tmp_path / "application-cache.yaml").write_text("cache:\n  tiny:\n    capacity: lots\n")
    fresh = Session(resources=tmp_path)
    with use_session(fresh), pytest.raises(ConfigError, match=r"cache\.tiny\.capacity"):
        nbinfra.cache("x", cache_type="tiny")
    fresh.close()


def test_cache_use_and_completion(ip: TestingShell, session: Session) -> None:
    ip.run_line_magic("cache", "use tiny")
    ip.run_line_magic("cache", "set k 5")
    assert ip.run_line_magic("cache", "get k") == 5
    assert nbinfra.cache("notebook", cache_type="tiny").get("k") == 5
    assert nbinfra.cache("notebook", cache_type="memory").get("k") is None
    ip.run_line_magic("cache", "use tiny_cache")
    ip.run_line_magic("cache", "set j 6")
    assert nbinfra.cache("tn", cache_type="tiny").get("j") == 6
    with pytest.raises(UsageError, match="tiny"):
        ip.run_line_magic("cache", "use tinyy")
    from nbinfra.notebook import complete

    assert "tiny" in complete.cache_backends()


def test_health_panel_lists_the_kind(session: Session) -> None:
    panel = nbinfra.widgets.health_panel(connections=False).wait(60)
    rows = {row[1]: row for row in panel.rows}
    assert rows["tiny"][0] == "ok" and rows["tiny"][3] == "tiny (from-yaml)"
    assert rows["memory"][0] == "ok"
