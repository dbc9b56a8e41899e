"""Serializers: plain JSON stays plain, tags are unforgeable, pickle is signed."""

from __future__ import annotations

import collections
import datetime as dt
import enum
import json
import threading
import uuid
from decimal import Decimal

import pytest

from nbinfra.cache.serializers import (
    JsonSerializer,
    MsgpackSerializer,
    PickleSerializer,
    get_serializer,
)
from nbinfra.errors import ConfigError, SerializationError


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def test_plain_values_are_plain_json() -> None:
    ser = JsonSerializer()
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": "d"}}
    data = ser.dumps(value)
    assert json.loads(data) == value  # any client can read it
    assert ser.dumps(5) == b"5"  # so Redis INCR works on counters
    assert ser.dumps("é") == '"é"'.encode()


def test_tagged_values_and_a_dict_that_looks_like_a_tag() -> None:
    ser = JsonSerializer()
    value = {
        "__nb__": "bytes",
        "v": "AAAA",
        "enum": Color.RED,
        "int_enum": Level.HIGH,
        "when": dt.time(1, 2, 3),
    }
    back = ser.loads(ser.dumps(value))
    assert back == value and back["enum"] is Color.RED and back["int_enum"] is Level.HIGH


Pair = collections.namedtuple("Pair", "left right")


@pytest.mark.parametrize("name", ["json", "msgpack"])
def test_builtin_subclasses(name: str) -> None:
    ser = get_serializer(name)
    value = {
        "pair": Pair(1, (2, 3)),
        "ordered": collections.OrderedDict(b=1, a=2),
        "counter": collections.Counter("aab"),
    }
    back = ser.loads(ser.dumps(value))
    assert back == value
    assert type(back["pair"]) is Pair and back["pair"].right == (2, 3)
    assert type(back["ordered"]) is dict  # a dict subclass comes back as a dict


def test_unknown_types_fail_clearly() -> None:
    with pytest.raises(SerializationError, match=r"threading\.Event.*pickle"):
        JsonSerializer().dumps({"lock": threading.Event()})
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(SerializationError):
        JsonSerializer().dumps(loop)


def test_corrupt_data_fails_clearly() -> None:
    with pytest.raises(SerializationError, match="not valid JSON"):
        JsonSerializer().loads(b"\x80not json")
    with pytest.raises(SerializationError, match="Unknown tag"):
        JsonSerializer().loads(b'{"__nb__": "rocket", "v": 1}')
    with pytest.raises(SerializationError, match="not a registered type"):
        JsonSerializer().loads(b'{"__nb__": "dataclass", "c": "no.such:Thing", "v": {}}')
    with pytest.raises(SerializationError, match="not a registered type"):
        JsonSerializer().loads(b'{"__nb__": "dataclass", "c": "os:system", "v": {}}')


def test_msgpack_round_trips() -> None:
    ser = get_serializer("msgpack")
    assert isinstance(ser, MsgpackSerializer)
    value = {"t": (1, 2), "b": b"\x00", "d": Decimal("1.1"), "u": uuid.UUID(int=1), "n": None}
    assert ser.loads(ser.dumps(value)) == value
    with pytest.raises(SerializationError):
        ser.loads(b"\xc1")


def test_pickle_is_signed_and_verified() -> None:
    ser = PickleSerializer("a-long-signing-key")
    data = ser.dumps({"obj": Color.RED, "set": {1}})
    assert ser.loads(data) == {"obj": Color.RED, "set": {1}}
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(SerializationError, match="bad signature"):
        ser.loads(tampered)
    with pytest.raises(SerializationError, match="bad signature"):
        PickleSerializer("another-key-entirely").loads(data)
    with pytest.raises(SerializationError, match="not a signed pickle"):
        ser.loads(b"\x80\x04K\x01.")  # a bare pickle is never loaded
    with pytest.raises(ConfigError, match="pickle_hmac_key"):
        get_serializer("pickle")


def test_unknown_serializer_name() -> None:
    with pytest.raises(ConfigError, match="json, msgpack or pickle"):
        get_serializer("yaml")
