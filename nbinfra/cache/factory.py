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
from nbinfra.cache.settings import InstanceSettings, Ttl
from nbinfra.config import Settings
from nbinfra.errors import ConfigError
from nbinfra.session import Session
from nbinfra.session import session as default_session

__all__ = ["CacheConfig", "CacheFactory", "build_provider", "cache_config", "create"]

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


_SECTIONS = frozenset({"instances", "pickle_hmac_key"})  # besides one section per kind


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


def _kind(kind_or_name: str | Enum | None, sess: Session, settings: Settings) -> str:
    """The registered kind for a kind, a configured instance name or ``None`` (the default)."""
    if kind_or_name is None:
        value: str = (
            cache_config(sess).backend
            if settings is sess.settings
            else _load_config(settings).backend
        )
    else:
        value = kind_or_name.value if isinstance(kind_or_name, Enum) else str(kind_or_name)
    key = value.strip().lower()
    if key not in CacheRegistry and kind_or_name is not None:
        spec = settings.section("cache.instances", dict[str, InstanceSettings]).get(value)
        if spec is not None:  # a configured name: its backend
            return _kind(None if spec.backend == "default" else spec.backend, sess, settings)
    return CacheRegistry._resolve(key)


def build_provider(kind: str, settings: Settings, **overrides: Any) -> BaseCacheProvider:
    """A new provider of ``kind`` configured from ``cache.<kind>`` in ``settings``.

    The section is validated into the class's ``settings_class`` (then
    ``cls(settings, **overrides)``), or passed as keywords when it has none.
    """
    cls: type[Any] = CacheRegistry.get(kind)
    path = f"cache.{kind}"
    schema = getattr(cls, "settings_class", None)
    if schema is not None:
        provider: BaseCacheProvider = cls(settings.section(path, schema), **overrides)
        return provider
    raw = settings.get(path, {}) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} in {settings.origin(path)}: expected a mapping of settings.")
    provider = cls(**{**raw, **overrides})
    return provider


def create(
    kind_or_name: str | Enum | None = None,
    *,
    settings: Settings | None = None,
    session: Session | None = None,
    **overrides: Any,
) -> BaseCacheProvider:
    """The cache provider for a kind (``redis``), a configured instance name
    (``session_cache``: its backend) or ``None`` (``cache.backend``).

    Without ``settings`` or ``overrides`` the provider is shared by everything in the
    session (so two ``CacheService`` objects of one namespace see the same data) and closed
    with it. With ``settings`` (a ``Settings`` read instead of the session's) or
    ``overrides`` (``url=...``, ``max_size=...``) a new private provider is returned; the
    caller closes it.
    """
    sess = session or default_session()
    source = settings if settings is not None else sess.settings
    kind = _kind(kind_or_name, sess, source)
    if overrides or settings is not None:
        return build_provider(kind, source, **overrides)
    return sess.get("cache", kind, lambda: build_provider(kind, sess.settings))


class CacheFactory:
    """Creates cache providers: ``create`` (one shape with the other factories) and the
    seed's ``create_cache`` (tests patch that name; ``CacheService`` creates through it)."""

    registry = CacheRegistry
    create = staticmethod(create)
    create_cache = staticmethod(create)

    @staticmethod
    def available() -> list[str]:
        """Every known cache kind."""
        return CacheRegistry.kinds()
