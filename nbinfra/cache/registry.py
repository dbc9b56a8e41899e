"""Cache kinds: the ``CacheType`` enum and the ``CacheRegistry`` (cheap to import)."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from nbinfra.registry import Registry

if TYPE_CHECKING:
    from nbinfra.cache.base import BaseCacheProvider

__all__ = ["CacheRegistry", "CacheType"]


class CacheType(str, Enum):
    """The built-in cache kinds (the seed's names)."""

    IN_MEMORY = "memory"
    REDIS = "redis"

    def __str__(self) -> str:
        return self.value


CacheRegistry: Registry[BaseCacheProvider] = Registry(
    "cache",
    group="nbinfra.caches",
    base="nbinfra.cache.base:BaseCacheProvider",
    aliases={"in_memory": "memory", "inmemory": "memory", "local": "memory"},
)
