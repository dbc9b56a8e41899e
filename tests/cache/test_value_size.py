"""A value over ``cache.redis.max_value_size`` is refused before it is sent, naming both sizes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

import nbinfra
from nbinfra.config import Settings
from nbinfra.errors import SerializationError
from nbinfra.session import Session, use_session
from nbinfra.testing import RedisServer


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.delete(*(client.keys("size:*") or ["size:none"]))
    client.close()


def _session(server: RedisServer, **redis_settings: Any) -> Session:
    config = {"url": server.url, "socket_timeout": 5, "socket_connect_timeout": 5}
    return Session(
        Settings.from_dict({"cache": {"backend": "redis", "redis": {**config, **redis_settings}}})
    )


def test_default_limit_refuses_a_big_value_without_writing(
    redis_server: RedisServer, raw: redis.Redis
) -> None:
    sess = _session(redis_server)
    with use_session(sess):
        cache = nbinfra.cache("size")
        big = "x" * (101 * 1024 * 1024)
        with pytest.raises(SerializationError) as info:
            cache.set("big", big)
        del big
        cache.set("small", "ok")  # the connection is still fine
        assert cache.get("small") == "ok"
    sess.close()
    assert str(info.value) == (
        "Cannot cache 'size:big': the value is 101.0 MB (105906178 bytes), over the limit of "
        "100.0 MB (104857600 bytes) (cache.redis.max_value_size). Store it elsewhere (a file, "
        "S3) and cache a reference, or raise cache.redis.max_value_size."
    )
    assert raw.exists("size:big") == 0


def test_configured_limit_applies_to_set_and_set_many(
    redis_server: RedisServer, raw: redis.Redis
) -> None:
    sess = _session(redis_server, max_value_size=1000)
    with use_session(sess):
        cache = nbinfra.cache("size")
        cache.set("fits", "y" * 900)
        with pytest.raises(SerializationError, match="is 2002 bytes, over the limit of 1000 bytes"):
            cache.set("over", "y" * 2000)
        with pytest.raises(SerializationError, match="'size:b'"):
            cache.set_many({"a": 1, "b": "z" * 5000})
    sess.close()
    assert raw.exists("size:fits") == 1
    assert raw.exists("size:over", "size:a", "size:b") == 0  # nothing half-written
