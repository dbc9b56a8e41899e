"""Caches: in-memory and Redis providers behind ``CacheService``, plus a sync facade.

The seed's names live here (``CacheType``, ``CacheRegistry``, ``CacheFactory``,
``BaseCacheProvider``, ``CacheService``) with ``cached``, ``CacheStats`` and ``MISS``.
The module itself is callable: ``nbinfra.cache("ns", ttl=60)`` returns a ``SyncCache``
(blocking ``get``/``set``/... for notebooks). Providers are imported on first use
(``RedisCacheProvider`` needs ``pip install 'nbinfra[redis]'``). ``register_type(cls)`` lets
cached values of ``cls`` (written by another process) be rebuilt here.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from nbinfra._callable import make_module_callable
from nbinfra._lazy import lazy_attributes
from nbinfra.cache.base import BaseCacheProvider
from nbinfra.cache.decorators import cached
from nbinfra.cache.factory import CacheFactory
from nbinfra.cache.registry import CacheRegistry, CacheType
from nbinfra.cache.service import MISS, CacheService, all_stats
from nbinfra.cache.stats import CacheStats
from nbinfra.cache.trusted import register_type

if TYPE_CHECKING:
    from nbinfra.cache.memory import InMemoryCacheProvider
    from nbinfra.cache.redis import RedisCacheProvider
    from nbinfra.cache.sync import SyncCache
    from nbinfra.session import Session

__all__ = [
    "MISS",
    "BaseCacheProvider",
    "CacheFactory",
    "CacheRegistry",
    "CacheService",
    "CacheStats",
    "CacheType",
    "InMemoryCacheProvider",
    "RedisCacheProvider",
    "SyncCache",
    "all_stats",
    "cache",
    "cached",
    "register_type",
]

_LAZY = {
    "InMemoryCacheProvider": "nbinfra.cache.memory:InMemoryCacheProvider",
    "RedisCacheProvider": "nbinfra.cache.redis:RedisCacheProvider",
    "SyncCache": "nbinfra.cache.sync:SyncCache",
}


def cache(
    namespace: str = "default",
    ttl: float | None = None,
    cache_type: str | Enum | None = None,
    *,
    serializer: str | None = None,
    session: Session | None = None,
) -> SyncCache:
    """A blocking cache for ``namespace`` (what ``nbinfra.cache("ns")`` returns)."""
    from nbinfra.cache.sync import SyncCache

    service = CacheService(
        namespace, default_ttl=ttl, cache_type=cache_type, serializer=serializer, session=session
    )
    return SyncCache(service)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
make_module_callable(__name__, cache)
