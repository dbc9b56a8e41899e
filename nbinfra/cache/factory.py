"""``CacheFactory``: providers from configuration, shared per session."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Literal

from nbinfra._bounds import AtLeastOne
from nbinfra._reads import note, unrecorded
from nbinfra._secrets import MaskedRepr
from nbinfra.cache.base import BaseCacheProvider
from nbinfra.cache.registry import CacheRegistry
from nbinfra.cache.settings import MemorySettings, RedisSettings, Ttl
from nbinfra.config import Settings
from nbinfra.errors import ConfigError
from nbinfra.session import Session
from nbinfra.session import session as default_session

__all__ = ["CacheConfig", "CacheFactory", "cache_config"]

_STATE_KEY = "cache.config"


@dataclass
class CacheConfig(MaskedRepr):
    """The top of ``cache:``; backend sections are validated only when used, so an unset
    ``${REDIS_PASSWORD}`` cannot break a notebook that only uses the memory cache."""

    __extra_field__ = "sections"

    backend: str = "memory"
    default_ttl: Ttl = 300.0
    serializer: Literal["json", "msgpack", "pickle"] = "json"
    stats_window: AtLeastOne = 2048
    sections: dict[str, Any] = field(default_factory=dict)


def cache_config(session: Session | None = None) -> CacheConfig:
    """The validated ``cache:`` settings of ``session`` (validated again after they change)."""
    sess = session or default_session()
    return sess.memo(_STATE_KEY, lambda: _load_config(sess.settings))


def _load_config(settings: Settings) -> CacheConfig:
    with unrecorded():  # the backend sections are read by the providers that use them
        found = settings.section("cache", CacheConfig)
        _check_sections(found, settings)
    note(*(f"cache.{f.name}" for f in fields(CacheConfig) if f.name != "sections"))
    return found


_SECTIONS = frozenset({"instances", "memory", "pickle_hmac_key", "redis"})


def _check_sections(config: CacheConfig, settings: Settings) -> None:
    """Catch typos among the keys validated later (``defualt_ttl``, ``rediss``)."""
    known = _SECTIONS | set(CacheRegistry.kinds())
    for key in config.sections:
        if key not in known:
            fields = sorted(known | {"backend", "default_ttl", "serializer", "stats_window"})
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"cache.{key} in {settings.origin('cache.' + key)}: unknown setting "
                f"(allowed: {', '.join(fields)}){hint}"
            )


def _kind(cache_type: str | Enum | None, config: CacheConfig) -> str:
    value = cache_type if cache_type is not None else config.backend
    raw = value.value if isinstance(value, Enum) else str(value)
    return CacheRegistry._resolve(raw.strip().lower())


def build_provider(kind: str, settings: Settings, **overrides: Any) -> BaseCacheProvider:
    """A new provider of ``kind`` configured from ``settings`` (plus ``overrides``)."""
    cls: type[Any] = CacheRegistry.get(kind)
    provider: BaseCacheProvider
    if kind == "memory":
        mem = settings.section("cache.memory", MemorySettings)
        opts: dict[str, Any] = {"max_size": mem.max_size, "sweep_interval": mem.sweep_interval}
        opts.update(overrides)
        provider = cls(**opts)
    elif kind == "redis":
        provider = cls(settings.section("cache.redis", RedisSettings), **overrides)
    else:
        raw = settings.get(f"cache.{kind}", {}) or {}
        provider = cls(**{**raw, **overrides})
    return provider


class CacheFactory:
    """Creates cache providers (the seed's name; tests patch ``create_cache``)."""

    @staticmethod
    def create_cache(
        cache_type: str | Enum | None = None,
        *,
        session: Session | None = None,
        **overrides: Any,
    ) -> BaseCacheProvider:
        """The provider for ``cache_type`` (default: ``cache.backend`` in config).

        Without ``overrides`` the provider is shared by everything in the session (so two
        ``CacheService`` objects of one namespace see the same data) and closed with it.
        With ``overrides`` (``url=...``, ``max_size=...``) a new private provider is
        returned; the caller closes it.
        """
        sess = session or default_session()
        kind = _kind(cache_type, cache_config(sess))
        if overrides:
            return build_provider(kind, sess.settings, **overrides)
        return sess.get("cache", kind, lambda: build_provider(kind, sess.settings))

    @staticmethod
    def available() -> list[str]:
        """Every known cache kind."""
        return CacheRegistry.kinds()
