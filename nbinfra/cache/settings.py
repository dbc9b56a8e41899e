"""Typed views of the ``cache:`` section of ``application-cache.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from nbinfra._secrets import Secret

__all__ = [
    "BreakerSettings",
    "CacheSettings",
    "InstanceSettings",
    "MemorySettings",
    "RedisSettings",
]


@dataclass
class MemorySettings:
    max_size: int = 10_000  # 0 = unbounded
    sweep_interval: float = 1.0


@dataclass
class BreakerSettings:
    failure_threshold: int = 5  # consecutive failures that open the circuit
    reset_timeout: float = 1.0  # seconds open before one probe is let through


@dataclass
class RedisSettings:
    """Either ``url`` (redis://, rediss://, unix://, redis+sentinel://, redis+cluster://)
    or host/port/db/username/password/ssl."""

    url: str | None = None
    host: str = "localhost"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: Secret = field(default_factory=lambda: Secret(""))
    ssl: bool = False
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: Literal["required", "optional", "none"] = "required"
    cluster: bool = False
    sentinel_service: str | None = None  # with sentinel:// URLs or hosts below
    socket_timeout: float = 0.5
    socket_connect_timeout: float = 0.5
    max_connections: int = 64
    health_check_interval: float = 0.0
    fallback: Literal["none", "memory"] = "none"
    lock_timeout: float = 30.0  # seconds a get_or_set loader may hold its Redis lock
    breaker: BreakerSettings = field(default_factory=BreakerSettings)


@dataclass
class InstanceSettings:
    """A pre-configured ``CacheService``: ``cache.instances.<name>``."""

    namespace: str | None = None  # defaults to the instance name
    ttl: float | None = None  # defaults to cache.default_ttl
    backend: Literal["memory", "redis", "default"] = "default"
    serializer: Literal["json", "msgpack", "pickle", "default"] = "default"
    description: str = ""


@dataclass
class CacheSettings:
    backend: str = "memory"
    default_ttl: float = 300.0  # 0 = no expiry
    serializer: Literal["json", "msgpack", "pickle"] = "json"
    pickle_hmac_key: Secret = field(default_factory=lambda: Secret(""))
    stats_window: int = 2048  # latency samples kept per namespace for percentiles
    memory: MemorySettings = field(default_factory=MemorySettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    instances: dict[str, InstanceSettings] = field(default_factory=dict)
