"""Typed views of the ``cache:`` section of ``application-cache.yaml``."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from nbinfra._bounds import (
    AtLeastOne,
    NonNegativeFloat,
    NonNegativeInt,
    Port,
    PositiveFloat,
    Range,
)
from nbinfra._secrets import MaskedRepr, Secret

__all__ = [
    "BreakerSettings",
    "CacheSettings",
    "InstanceSettings",
    "MemorySettings",
    "RedisSettings",
    "Ttl",
]

# Seconds a value lives; 0 = no expiry.
Ttl = Annotated[float, Range(ge=0, note="0 = no expiry")]


@dataclass
class MemorySettings(MaskedRepr):
    max_size: Annotated[int, Range(ge=0, note="0 = unbounded")] = 10_000
    sweep_interval: PositiveFloat = 1.0


@dataclass
class BreakerSettings(MaskedRepr):
    failure_threshold: AtLeastOne = 5  # consecutive failures that open the circuit
    reset_timeout: NonNegativeFloat = 1.0  # seconds open before one probe is let through


@dataclass
class RedisSettings(MaskedRepr):
    """Either ``url`` (redis://, rediss://, unix://, redis+sentinel://, redis+cluster://)
    or host/port/db/username/password/ssl."""

    url: str | None = None
    host: str = "localhost"
    port: Port = 6379
    db: NonNegativeInt = 0
    username: str | None = None
    password: Secret = field(default_factory=lambda: Secret(""))
    ssl: bool = False
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: Literal["required", "optional", "none"] = "required"
    cluster: bool = False
    sentinel_service: str | None = None  # with sentinel:// URLs or hosts below
    socket_timeout: PositiveFloat = 0.5
    socket_connect_timeout: PositiveFloat = 0.5
    max_connections: AtLeastOne = 64
    max_value_size: AtLeastOne = 100 * 1024 * 1024  # bytes; bigger values are refused
    health_check_interval: NonNegativeFloat = 0.0
    fallback: Literal["none", "memory"] = "none"
    lock_timeout: PositiveFloat = 30.0  # seconds a get_or_set loader may hold its Redis lock
    breaker: BreakerSettings = field(default_factory=BreakerSettings)


@dataclass
class InstanceSettings(MaskedRepr):
    """A pre-configured ``CacheService``: ``cache.instances.<name>``."""

    namespace: str | None = None  # defaults to the instance name
    ttl: Ttl | None = None  # defaults to cache.default_ttl
    backend: str = "default"  # a registered cache kind, or the default backend
    serializer: Literal["json", "msgpack", "pickle", "default"] = "default"
    description: str = ""

    def __check_fields__(self) -> tuple[str, str] | None:
        return check_kind("backend", self.backend)


def check_kind(name: str, kind: str) -> tuple[str, str] | None:
    """``(field, problem)`` when ``kind`` is neither ``default`` nor a registered cache kind."""
    from nbinfra.cache.registry import CacheRegistry

    if kind == "default" or kind in CacheRegistry:
        return None
    known = CacheRegistry.kinds()
    close = difflib.get_close_matches(kind.strip().lower(), known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return name, (
        f"unknown cache kind {kind!r}; registered kinds: {', '.join(known)} (or default){hint}"
    )


@dataclass
class CacheSettings(MaskedRepr):
    """The whole ``cache:`` section; each kind's own section (``cache.redis``) is kept raw in
    ``kinds`` and validated into that provider's ``settings_class`` when it is built."""

    __extra_field__ = "kinds"

    backend: str = "memory"
    default_ttl: Ttl = 300.0
    serializer: Literal["json", "msgpack", "pickle"] = "json"
    pickle_hmac_key: Secret = field(default_factory=lambda: Secret(""))
    stats_window: AtLeastOne = 2048  # latency samples kept per namespace for percentiles
    instances: dict[str, InstanceSettings] = field(default_factory=dict)
    kinds: dict[str, Any] = field(default_factory=dict)
