"""Cache fixtures: one provider per kind, real Redis from nbinfra.testing."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from nbinfra.cache import CacheService
from nbinfra.cache.base import BaseCacheProvider
from nbinfra.cache.memory import InMemoryCacheProvider
from nbinfra.config import Settings
from nbinfra.session import Session, use_session
from nbinfra.testing import RedisServer

_counter = itertools.count()


def settings_for(**cache: Any) -> Settings:
    """Settings whose ``cache:`` section is ``cache`` (instances keep the shipped ones)."""
    return Settings.from_dict({"cache": cache})


@pytest.fixture
def session() -> Iterator[Session]:
    fresh = Session(settings_for(backend="memory", default_ttl=300))
    with use_session(fresh):
        yield fresh
    fresh.close()


@pytest.fixture(params=["memory", "redis"])
async def provider(
    request: pytest.FixtureRequest, session: Session
) -> AsyncIterator[BaseCacheProvider]:
    if request.param == "memory":
        yield InMemoryCacheProvider(max_size=0)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    from nbinfra.cache.redis import RedisCacheProvider

    # Generous timeouts: the machine running tests may be busy; the fault tests set
    # their own short ones.
    redis_provider = RedisCacheProvider(url=server.url, socket_timeout=5, socket_connect_timeout=5)
    yield redis_provider
    await redis_provider.close()


@pytest.fixture
def make_service(provider: BaseCacheProvider, session: Session) -> Callable[..., CacheService]:
    """A CacheService on ``provider`` in a namespace no other test uses."""

    def make(namespace: str | None = None, **kwargs: Any) -> CacheService:
        ns = namespace or f"t{next(_counter)}-{id(provider):x}"
        return CacheService(ns, provider=provider, session=session, **kwargs)

    return make


@pytest.fixture
def service(make_service: Callable[..., CacheService]) -> CacheService:
    return make_service()
