"""The classes a cached value may rebuild: registered ones, never imported by name.

A tagged value names its class (``{"__nb__": "enum", "c": "pkg.mod:Color", ...}``). The
decoder looks that name up here and nowhere else: it never imports a module, so a value
written by someone else into a shared Redis cannot make a notebook import code or build
an arbitrary class.

A class is trusted when it is registered with ``register_type`` (also usable as a class
decorator), or when this process stored a value of it (it is already imported here).
Another process reading the value registers the class first.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
from typing import Any, TypeVar

from nbinfra.errors import RegistrationError, SerializationError

__all__ = ["class_path", "register_type", "trusted_class"]

T = TypeVar("T", bound=type)

_lock = threading.Lock()
_types: dict[str, type] = {}


def class_path(cls: type) -> str:
    """The name a tagged value stores for ``cls``: ``module:QualName``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _kind(cls: type) -> str | None:
    if issubclass(cls, enum.Enum):
        return "enum"
    if dataclasses.is_dataclass(cls):
        return "dataclass"
    if callable(getattr(cls, "model_validate", None)) and hasattr(cls, "model_dump"):
        return "pydantic"
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return "namedtuple"
    return None


def register_type(cls: T) -> T:
    """Let cached values of ``cls`` (an enum, dataclass, pydantic model or namedtuple) be
    rebuilt in this process. Returns ``cls``, so it works as a class decorator."""
    if not isinstance(cls, type) or _kind(cls) is None:
        raise RegistrationError(
            f"register_type takes an enum, dataclass, pydantic model or namedtuple class, "
            f"got {cls!r}; other values are cached as plain data."
        )
    with _lock:
        _types[class_path(cls)] = cls  # a class redefined in a re-run cell replaces the old
    return cls


def remember_written(cls: type) -> None:
    """A value of ``cls`` is being stored by this process: trust it for reading back."""
    if _types.get(class_path(cls)) is not cls:
        with _lock:
            _types[class_path(cls)] = cls


def trusted_class(path: Any, tag: str) -> Any:
    """The registered class called ``path`` for a value tagged ``tag``; else an error."""
    cls = _types.get(path) if isinstance(path, str) else None
    what = _WORDS.get(tag, tag)
    if cls is None:
        name = str(path).rpartition(":")[2] or "TheClass"
        raise SerializationError(
            f"Refusing to rebuild a cached {what} of class {str(path)[:120]!r}: it is not a "
            f"registered type; if you trust it, import it and call "
            f"nbinfra.cache.register_type({name[:60]})."
        )
    if _kind(cls) != tag:
        raise SerializationError(f"A cached value names {path!r} as {what}, which it is not.")
    return cls


_WORDS = {
    "dataclass": "dataclass",
    "enum": "enum",
    "namedtuple": "namedtuple",
    "pydantic": "pydantic model",
}
