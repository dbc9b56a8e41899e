"""The shipped cache contract on both built-in providers: memory, and a real private Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from nbinfra.cache.memory import InMemoryCacheProvider
from nbinfra.cache.redis import RedisCacheProvider
from nbinfra.session import Session
from nbinfra.testing import RedisServer
from nbinfra.testing.cache_contract import CacheContract


class TestMemory(CacheContract):
    @pytest.fixture
    async def provider(self, session: Session) -> AsyncIterator[InMemoryCacheProvider]:
        yield InMemoryCacheProvider(max_size=0)


class TestRedis(CacheContract):
    @pytest.fixture
    async def provider(
        self, redis_server: RedisServer, session: Session
    ) -> AsyncIterator[RedisCacheProvider]:
        # Generous timeouts: the machine running tests may be busy; the fault tests set
        # their own short ones.
        found = RedisCacheProvider(url=redis_server.url, socket_timeout=5, socket_connect_timeout=5)
        yield found
        await found.close()
