"""Value <-> bytes for the cache: JSON by default, msgpack optional, signed pickle opt-in.

JSON-native values (``str``, ``int``, ``float``, ``bool``, ``None``, lists, ``str``-keyed
dicts) are stored as plain JSON, so other clients can read them and Redis ``INCR`` works on
integers. Everything else is wrapped in a tagged object ``{"__nb__": tag, "v": ...}`` so
``tuple``, ``set``, ``frozenset``, ``bytes``, ``datetime``, ``date``, ``time``,
``timedelta``, ``Decimal``, ``UUID``, enums, non-string dict keys, non-finite floats,
dataclasses and pydantic models come back as the same type. A dict that itself has a
``"__nb__"`` key is escaped the same way, so no value can impersonate a tag.

Dataclasses, enums, namedtuples and pydantic models are rebuilt only from classes in
``nbinfra.cache.trusted``: registered with ``nbinfra.cache.register_type``, or stored by this
process. The decoder never imports a module a value names; any other class is a
``SerializationError``.

Pickle runs only when enabled and every payload is signed (HMAC-SHA256 with a key from
configuration); a payload with a bad signature is refused, never unpickled.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import enum
import hashlib
import hmac
import json
import json.scanner
import math
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from nbinfra._secrets import Secret, reveal
from nbinfra.cache.trusted import class_path, remember_written, trusted_class
from nbinfra.errors import ConfigError, SerializationError

__all__ = [
    "JsonSerializer",
    "MsgpackSerializer",
    "PickleSerializer",
    "Serializer",
    "from_tagged",
    "get_serializer",
    "to_tagged",
]

TAG = "__nb__"
_TAG_BYTES = b'"__nb__"'
_PLAIN_SCALARS = (str, int, bool, type(None))


class Serializer(Protocol):
    """Turns values into bytes and back; ``name`` is what configuration calls it."""

    name: str

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


# -- tagging ---------------------------------------------------------------------------
def _is_plain(value: Any) -> bool:
    """True when ``value`` survives ``json.dumps``/``loads`` unchanged (no tags needed)."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return True
    if t is float:
        return math.isfinite(value)
    if t is list:
        for item in value:  # noqa: SIM110 - a plain loop is faster than all() on this path
            if not _is_plain(item):
                return False
        return True
    if t is dict:
        if TAG in value:
            return False
        for k, item in value.items():  # noqa: SIM110 - see above
            if type(k) is not str or not _is_plain(item):
                return False
        return True
    return False


def _class_path(cls: type) -> str:
    remember_written(cls)
    return class_path(cls)


def to_tagged(value: Any) -> Any:
    """``value`` as JSON-native data, with tagged objects for every other type."""
    if _is_plain(value):
        return value
    t = type(value)
    if t is list:
        return [to_tagged(v) for v in value]
    if t is dict:
        if all(type(k) is str for k in value) and TAG not in value:
            return {k: to_tagged(v) for k, v in value.items()}
        return {TAG: "dict", "v": [[to_tagged(k), to_tagged(v)] for k, v in value.items()]}
    if t is float:
        return {TAG: "float", "v": repr(value)}
    if t is tuple:
        return {TAG: "tuple", "v": [to_tagged(v) for v in value]}
    if t is set or t is frozenset:
        items = [to_tagged(v) for v in value]
        with contextlib.suppress(TypeError):  # mixed types: order does not matter
            items.sort(key=_sort_key)
        return {TAG: t.__name__, "v": items}
    if t is bytes or t is bytearray:
        return {TAG: t.__name__, "v": base64.b64encode(value).decode("ascii")}
    if t is dt.datetime:
        return {TAG: "datetime", "v": value.isoformat()}
    if t is dt.date:
        return {TAG: "date", "v": value.isoformat()}
    if t is dt.time:
        return {TAG: "time", "v": value.isoformat()}
    if t is dt.timedelta:
        return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if t is Decimal:
        return {TAG: "decimal", "v": str(value)}
    if t is uuid.UUID:
        return {TAG: "uuid", "v": str(value)}
    if isinstance(value, enum.Enum):
        return {TAG: "enum", "c": _class_path(t), "v": to_tagged(value.value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            f.name: to_tagged(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init
        }
        return {TAG: "dataclass", "c": _class_path(t), "v": fields}
    dump = getattr(value, "model_dump", None)
    if dump is not None and callable(getattr(t, "model_validate", None)):
        return {TAG: "pydantic", "c": _class_path(t), "v": to_tagged(dump(mode="python"))}
    if isinstance(value, tuple) and hasattr(t, "_fields"):  # a namedtuple
        return {TAG: "namedtuple", "c": _class_path(t), "v": [to_tagged(v) for v in value]}
    # Other subclasses of builtins come back as the builtin (OrderedDict -> dict, ...).
    if isinstance(value, (str, int, float)):  # IntEnum is handled above
        base = next(b for b in (bool, int, float, str) if isinstance(value, b))
        return to_tagged(base(value))
    if isinstance(value, Mapping):
        return to_tagged(dict(value))
    if isinstance(value, (list, tuple)):
        return to_tagged(list(value) if isinstance(value, list) else tuple(value))
    raise SerializationError(
        f"Cannot cache a {t.__module__}.{t.__qualname__} with the JSON serializer: store "
        "plain data, a dataclass or a pydantic model, or enable the pickle serializer."
    )


def _sort_key(item: Any) -> str:
    return json.dumps(item, sort_keys=True)


def _untag(obj: dict[str, Any]) -> Any:
    tag = obj.get(TAG)
    if tag is None:
        return obj
    v = obj.get("v")
    try:
        decoder = _DECODERS[tag]
    except KeyError:
        raise SerializationError(f"Unknown tag {tag!r} in a cached value.") from None
    return decoder(v, obj)


def _rebuild(tag: str, obj: dict[str, Any], v: Any) -> Any:
    """An instance of the trusted class ``obj["c"]`` from its already decoded payload."""
    cls = trusted_class(obj.get("c"), tag)
    try:
        if tag == "dataclass":
            return cls(**v)
        if tag == "pydantic":
            return cls.model_validate(v)
        if tag == "namedtuple":
            return cls(*v)
        return cls(v)
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"A cached {tag} does not fit its class {obj.get('c')!r} ({exc}); the class "
            "changed since it was stored, or another program wrote it. Delete the key."
        ) from exc


def _rebuild_dataclass(v: Any, obj: dict[str, Any]) -> Any:
    return _rebuild("dataclass", obj, {k: from_tagged(x) for k, x in v.items()})


def _rebuild_pydantic(v: Any, obj: dict[str, Any]) -> Any:
    return _rebuild("pydantic", obj, from_tagged(v))


def _rebuild_namedtuple(v: Any, obj: dict[str, Any]) -> Any:
    return _rebuild("namedtuple", obj, [from_tagged(x) for x in v])


def _rebuild_enum(v: Any, obj: dict[str, Any]) -> Any:
    return _rebuild("enum", obj, from_tagged(v))


def _time(v: Any, _obj: dict[str, Any]) -> Any:
    return dt.time.fromisoformat(v)


_DECODERS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "bytearray": lambda v, _o: bytearray(base64.b64decode(v)),
    "bytes": lambda v, _o: base64.b64decode(v),
    "dataclass": _rebuild_dataclass,
    "date": lambda v, _o: dt.date.fromisoformat(v),
    "datetime": lambda v, _o: dt.datetime.fromisoformat(v),
    "decimal": lambda v, _o: Decimal(v),
    "dict": lambda v, _o: {from_tagged(k): from_tagged(x) for k, x in v},
    "enum": _rebuild_enum,
    "float": lambda v, _o: float(v),
    "frozenset": lambda v, _o: frozenset(from_tagged(x) for x in v),
    "namedtuple": _rebuild_namedtuple,
    "pydantic": _rebuild_pydantic,
    "set": lambda v, _o: {from_tagged(x) for x in v},
    "time": _time,
    "timedelta": lambda v, _o: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "tuple": lambda v, _o: tuple(from_tagged(x) for x in v),
    "uuid": lambda v, _o: uuid.UUID(v),
}


def from_tagged(data: Any) -> Any:
    """Inverse of ``to_tagged`` for data that was not decoded with the JSON hook."""
    t = type(data)
    if t is list:
        return [from_tagged(x) for x in data]
    if t is dict:
        if TAG in data:
            return _untag(data)
        return {k: from_tagged(x) for k, x in data.items()}
    return data


def _hook_pairs(obj: dict[str, Any]) -> Any:
    # json's object_hook runs bottom-up, so nested values are already rebuilt: only the
    # tag itself needs decoding here, not its payload.
    if TAG not in obj:
        return obj
    return _untag_prebuilt(obj)


def _untag_prebuilt(obj: dict[str, Any]) -> Any:
    tag, v = obj[TAG], obj.get("v", ())
    if tag == "tuple":
        return tuple(v)
    if tag == "set":
        return set(v)
    if tag == "frozenset":
        return frozenset(v)
    if tag == "dict":
        return {_hashable(k): x for k, x in v}
    if tag in ("dataclass", "enum", "namedtuple", "pydantic"):
        return _rebuild(tag, obj, v)
    return _untag(obj)


def _hashable(key: Any) -> Any:
    # A list can only appear here as a decoded tuple key that the hook already rebuilt.
    return tuple(key) if type(key) is list else key


# -- serializers -----------------------------------------------------------------------
class JsonSerializer:
    """JSON (the default); plain values stay plain JSON, others are tagged."""

    name = "json"

    def __init__(self) -> None:
        self._encode = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode
        plain, tagged = json.JSONDecoder(), json.JSONDecoder(object_hook=_hook_pairs)
        self._decode, self._decode_tagged = plain.decode, tagged.decode
        make_scanner: Any = json.scanner.make_scanner  # typeshed types it as a class
        self._scan = make_scanner(plain)
        self._scan_tagged = make_scanner(tagged)

    def dumps(self, value: Any) -> bytes:
        try:
            if not _is_plain(value):
                value = to_tagged(value)
            return self._encode(value).encode()
        except SerializationError:
            raise
        except (TypeError, ValueError) as exc:  # e.g. a recursive structure
            raise SerializationError(f"Cannot serialize value to JSON: {exc}") from exc
        except RecursionError as exc:
            raise SerializationError("Cannot serialize a self-referencing value.") from exc

    def loads(self, data: bytes) -> Any:
        tagged = _TAG_BYTES in data
        try:
            text = data.decode()
            # The C scanner without the decoder's two whitespace regexes: what we wrote has
            # no padding. Anything else (padding, trailing data) takes the full decoder.
            try:
                obj, end = (self._scan_tagged if tagged else self._scan)(text, 0)
            except StopIteration:
                end = -1
            if end != len(text):
                obj = (self._decode_tagged if tagged else self._decode)(text)
            return obj
        except SerializationError:
            raise
        except (UnicodeDecodeError, ValueError) as exc:
            raise SerializationError(
                f"A cached value is not valid JSON ({exc}); was it written by another "
                "serializer? Delete the key or configure the same serializer."
            ) from exc


class MsgpackSerializer:
    """msgpack (``pip install 'nbinfra[msgpack]'``): smaller and faster for big values."""

    name = "msgpack"

    def __init__(self) -> None:
        try:
            import msgpack
        except ImportError as exc:
            raise ConfigError(
                "cache.serializer is 'msgpack' but msgpack is not installed: "
                "pip install 'nbinfra[msgpack]'"
            ) from exc
        self._msgpack = msgpack

    def dumps(self, value: Any) -> bytes:
        try:
            data = value if _is_plain(value) else to_tagged(value)
            return bytes(self._msgpack.packb(data, use_bin_type=True))
        except SerializationError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(f"Cannot serialize value to msgpack: {exc}") from exc
        except RecursionError as exc:
            raise SerializationError("Cannot serialize a self-referencing value.") from exc

    def loads(self, data: bytes) -> Any:
        try:
            raw = self._msgpack.unpackb(data, raw=False, strict_map_key=True)
        except Exception as exc:
            raise SerializationError(f"A cached value is not valid msgpack ({exc}).") from exc
        return from_tagged(raw)


class PickleSerializer:
    """Pickle, signed: ``NBP1`` + HMAC-SHA256(key, body) + body. Opt-in only."""

    name = "pickle"
    _MAGIC = b"NBP1"
    _DIGEST = 32

    def __init__(self, key: str | Secret | None) -> None:
        plain = reveal(key)
        if not plain:
            raise ConfigError(
                "cache.serializer is 'pickle' but cache.pickle_hmac_key is empty: set it "
                "(e.g. NBINFRA_CACHE_HMAC_KEY) so that only values this app wrote are unpickled."
            )
        self._key = plain.encode()

    def dumps(self, value: Any) -> bytes:
        import pickle

        try:
            body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise SerializationError(f"Cannot pickle value: {exc}") from exc
        mac = hmac.new(self._key, body, hashlib.sha256).digest()
        return self._MAGIC + mac + body

    def loads(self, data: bytes) -> Any:
        import pickle

        head = len(self._MAGIC) + self._DIGEST
        if len(data) < head or not data.startswith(self._MAGIC):
            raise SerializationError("A cached value is not a signed pickle; refusing to load it.")
        mac, body = data[len(self._MAGIC) : head], data[head:]
        expected = hmac.new(self._key, body, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise SerializationError(
                "A cached pickle has a bad signature (other key or tampered); refusing to load it."
            )
        return pickle.loads(body)


def get_serializer(name: str, *, hmac_key: str | Secret | None = None) -> Serializer:
    """The serializer called ``name`` (``json``, ``msgpack`` or ``pickle``)."""
    key = name.strip().lower()
    if key == "json":
        return _JSON
    if key == "msgpack":
        return MsgpackSerializer()
    if key == "pickle":
        return PickleSerializer(hmac_key)
    raise ConfigError(f"Unknown cache serializer {name!r}; use json, msgpack or pickle.")


_JSON = JsonSerializer()
