"""Connecting to Redis: URL forms, Sentinel and Cluster clients, closing them.

Driver retries are off (``Retry(NoBackoff(), 0)``): the provider's circuit breaker decides
what happens after a failure, and a cache must fail within its socket timeouts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from nbinfra._secrets import mask_url, reveal
from nbinfra.cache.settings import RedisSettings
from nbinfra.errors import ConfigError

__all__ = ["close_client", "describe", "make_client", "parse_sentinel"]


def make_client(cfg: RedisSettings, mode: str) -> Any:
    """A ``redis.asyncio`` client (single, sentinel or cluster) for the current loop."""
    common: dict[str, Any] = {
        "socket_timeout": cfg.socket_timeout,
        "socket_connect_timeout": cfg.socket_connect_timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": cfg.health_check_interval,
    }
    password = reveal(cfg.password) or None
    if mode == "cluster":
        from redis.asyncio.cluster import RedisCluster

        url = cfg.url or f"redis://{cfg.host}:{cfg.port}"
        url = url.replace("redis+cluster://", "redis://").replace("rediss+cluster://", "rediss://")
        common.pop("retry")
        return RedisCluster.from_url(
            url,
            password=password,
            username=cfg.username,
            max_connections=cfg.max_connections,
            **common,
        )
    if mode == "sentinel":
        from redis.asyncio.sentinel import Sentinel

        hosts, service, db, user, pw, use_tls = parse_sentinel(cfg)
        sentinel = Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
            hosts,
            sentinel_kwargs={"socket_timeout": cfg.socket_timeout},
            **common,
        )
        client = sentinel.master_for(
            service,
            db=db,
            username=user or cfg.username,
            password=pw or password,
            ssl=use_tls or cfg.ssl,
        )
        client.nbinfra_sentinels = sentinel.sentinels  # closed with the client
        return client
    # Headroom over the gate for scans, which hold no gate while their caller works.
    pool_opts: dict[str, Any] = {**common, "max_connections": cfg.max_connections + 16}
    tls: dict[str, Any] = {
        "ssl_ca_certs": cfg.ssl_ca_certs,
        "ssl_certfile": cfg.ssl_certfile,
        "ssl_keyfile": cfg.ssl_keyfile,
        "ssl_cert_reqs": cfg.ssl_cert_reqs,
    }
    if cfg.url:
        if cfg.url.lower().startswith("rediss://"):  # the URL says TLS; files come from config
            pool_opts.update({k: v for k, v in tls.items() if v is not None})
        pool = aioredis.ConnectionPool.from_url(cfg.url, **pool_opts)
    else:
        if cfg.ssl:
            tls["connection_class"] = aioredis.SSLConnection
        else:
            tls = {}
        pool = aioredis.ConnectionPool(
            host=cfg.host,
            port=cfg.port,
            db=cfg.db,
            username=cfg.username,
            password=password,
            **tls,
            **pool_opts,
        )
    return aioredis.Redis.from_pool(pool)


async def close_client(client: Any) -> None:
    await client.aclose()
    pool = getattr(client, "connection_pool", None)
    if pool is not None:  # a sentinel client does not own its pool
        await pool.disconnect()
    for sentinel in getattr(client, "nbinfra_sentinels", ()):
        await sentinel.aclose()


def describe(cfg: RedisSettings) -> tuple[str, str, str]:
    """(mode, host:port for errors, masked target for display)."""
    url = cfg.url
    if url:
        scheme = url.split("://", 1)[0].lower()
        if scheme not in {
            "redis",
            "rediss",
            "unix",
            "redis+sentinel",
            "rediss+sentinel",
            "redis+cluster",
            "rediss+cluster",
        }:
            raise ConfigError(
                f"cache.redis.url has scheme {scheme!r}; use redis://, rediss://, unix://, "
                "redis+sentinel:// or redis+cluster://."
            )
        parts = urlsplit(url)
        if scheme == "unix":
            address = parts.path
        else:
            address = parts.netloc.rpartition("@")[2] or "localhost:6379"
        if "sentinel" in scheme or cfg.sentinel_service:
            mode = "sentinel"
        elif "cluster" in scheme or cfg.cluster:
            mode = "cluster"
        else:
            mode = "single"
        return mode, address, mask_url(url)
    mode = "cluster" if cfg.cluster else "single"
    address = f"{cfg.host}:{cfg.port}"
    scheme = "rediss" if cfg.ssl else "redis"
    return mode, address, f"{scheme}://{address}/{cfg.db}"


def parse_sentinel(
    cfg: RedisSettings,
) -> tuple[list[tuple[str, int]], str, int, str | None, str | None, bool]:
    """hosts, service, db, username, password, tls from a ``redis+sentinel://`` URL."""
    if not cfg.url:
        if not cfg.sentinel_service:
            raise ConfigError("cache.redis.sentinel_service is required for Sentinel.")
        return [(cfg.host, cfg.port)], cfg.sentinel_service, cfg.db, None, None, cfg.ssl
    parts = urlsplit(cfg.url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    user, _, pw = userinfo.partition(":")
    hosts: list[tuple[str, int]] = []
    for item in filter(None, hostlist.split(",")):
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "26379")
        hosts.append((host or item, int(port or 26379)))
    path = [p for p in parts.path.split("/") if p]
    service = path[0] if path else cfg.sentinel_service
    if not service:
        raise ConfigError(
            "A redis+sentinel:// URL needs the service name: redis+sentinel://host:26379/mymaster/0"
        )
    db = int(path[1]) if len(path) > 1 else cfg.db
    tls = parts.scheme.lower().startswith("rediss")
    return hosts, service, db, unquote(user) or None, unquote(pw) or None, tls
