"""Decoding rebuilds only registered classes: a shared Redis cannot make us import code."""

from __future__ import annotations

import enum
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

import nbinfra
from nbinfra.cache import register_type
from nbinfra.cache.serializers import JsonSerializer, MsgpackSerializer
from nbinfra.cache.sync import SyncCache
from nbinfra.config import Settings
from nbinfra.errors import RegistrationError, SerializationError
from nbinfra.session import Session, use_session
from nbinfra.testing import RedisServer


@dataclass
class Unregistered:  # defined, never stored or registered in this process
    x: int


@register_type
@dataclass
class Point:
    x: int
    y: int


class Shade(enum.Enum):  # registered in a test, as another process would
    DARK = "dark"


@pytest.fixture
def redis_cache(redis_server: RedisServer) -> Iterator[tuple[SyncCache, redis.Redis]]:
    config = {
        "backend": "redis",
        "redis": {"url": redis_server.url, "socket_timeout": 5, "socket_connect_timeout": 5},
    }
    sess = Session(Settings.from_dict({"cache": config}))
    raw = redis.Redis.from_url(redis_server.url)
    with use_session(sess):
        yield nbinfra.cache("trusted"), raw
    raw.delete(*(raw.keys("trusted:*") or ["trusted:none"]))
    raw.close()
    sess.close()


def _forge(raw: redis.Redis, key: str, value: Any) -> None:
    """What any other client of the shared Redis can write."""
    raw.set(f"trusted:{key}", json.dumps(value))


def test_a_value_naming_a_module_does_not_import_it(
    redis_cache: tuple[SyncCache, redis.Redis],
) -> None:
    cache, raw = redis_cache
    assert "this" not in sys.modules
    _forge(raw, "x", {"__nb__": "enum", "c": "this:x", "v": 1})
    with pytest.raises(SerializationError) as info:
        cache.get("x")
    assert "this" not in sys.modules
    assert str(info.value) == (
        "Key 'x' in cache namespace 'trusted': Refusing to rebuild a cached enum of class "
        "'this:x': it is not a registered type; if you trust it, import it and call "
        "nbinfra.cache.register_type(x)."
    )


def test_an_importable_dataclass_is_not_built(
    redis_cache: tuple[SyncCache, redis.Redis],
) -> None:
    cache, raw = redis_cache
    forged = {"__nb__": "dataclass", "c": "tests.cache.forged:Payload", "v": {"command": "id"}}
    _forge(raw, "dc", forged)
    _forge(raw, "nested", {"ok": [1, forged]})
    for key in ("dc", "nested"):
        with pytest.raises(SerializationError, match=f"^Key '{key}' in cache namespace"):
            cache.get(key)
    with pytest.raises(SerializationError, match=r"^Key 'dc' in cache namespace"):
        cache.get_many(["missing", "dc"])
    assert "tests.cache.forged" not in sys.modules
    assert "NBINFRA_TEST_FORGED_IMPORTED" not in os.environ
    _forge(raw, "local", {"__nb__": "dataclass", "c": f"{__name__}:Unregistered", "v": {"x": 1}})
    with pytest.raises(SerializationError, match="register_type\\(Unregistered\\)"):
        cache.get("local")


def test_registered_types_written_elsewhere_are_rebuilt(
    redis_cache: tuple[SyncCache, redis.Redis],
) -> None:
    cache, raw = redis_cache
    _forge(raw, "p", {"__nb__": "dataclass", "c": f"{__name__}:Point", "v": {"x": 1, "y": 2}})
    assert cache.get("p") == Point(1, 2)
    _forge(raw, "s", {"__nb__": "enum", "c": f"{__name__}:Shade", "v": "dark"})
    with pytest.raises(SerializationError, match="register_type\\(Shade\\)"):
        cache.get("s")
    assert register_type(Shade) is Shade
    assert cache.get("s") is Shade.DARK
    _forge(raw, "bad", {"__nb__": "dataclass", "c": f"{__name__}:Point", "v": {"z": 1}})
    with pytest.raises(SerializationError, match="does not fit its class"):
        cache.get("bad")
    _forge(raw, "liar", {"__nb__": "enum", "c": f"{__name__}:Point", "v": 1})
    with pytest.raises(SerializationError, match="which it is not"):
        cache.get("liar")


def test_values_this_process_stored_read_back(
    redis_cache: tuple[SyncCache, redis.Redis],
) -> None:
    cache, _raw = redis_cache

    @dataclass
    class Local:
        name: str

    cache.set("mine", {"a": Local("n")})
    assert cache.get("mine") == {"a": Local("n")}


@pytest.mark.parametrize(
    "serializer", [JsonSerializer(), MsgpackSerializer()], ids=["json", "msgpack"]
)
def test_both_serializers_refuse_unregistered_classes(serializer: Any) -> None:
    data = serializer.dumps({"k": Point(1, 2)})
    assert serializer.loads(data) == {"k": Point(1, 2)}
    forged = {"__nb__": "namedtuple", "c": "collections:OrderedDict", "v": [1]}
    bad = (
        json.dumps(forged).encode()
        if serializer.name == "json"
        else serializer._msgpack.packb(forged)
    )
    with pytest.raises(SerializationError, match="Refusing to rebuild a cached namedtuple"):
        serializer.loads(bad)


def test_register_type_refuses_what_it_cannot_rebuild() -> None:
    with pytest.raises(RegistrationError, match="enum, dataclass, pydantic model or namedtuple"):
        register_type(int)
    with pytest.raises(RegistrationError):
        register_type(Point(1, 2))  # type: ignore[type-var]
