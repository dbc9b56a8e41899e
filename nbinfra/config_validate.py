"""Validating a settings subtree into a dataclass schema (``Settings.section``).

Strings from the environment are coerced (``"6379"`` -> ``6379``, ``"yes"`` -> ``True``,
comma-separated lists), ``nbinfra._bounds`` ranges are checked, unknown keys get a
did-you-mean, and every message names the file and the key path. An ``Unset`` (a required
``${VAR}`` whose variable is not set) raises here, when a component uses the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from nbinfra._bounds import Range
from nbinfra._secrets import Secret
from nbinfra.errors import ConfigError, MissingSettingError

if TYPE_CHECKING:
    from nbinfra.config import Settings

__all__ = ["Unset", "validate"]

D = TypeVar("D")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@dataclasses.dataclass(frozen=True)
class Unset:
    """A required ``${VAR}`` whose variable is unset; raises when a component uses it."""

    var: str
    file: str
    path: str

    def error(self) -> MissingSettingError:
        return MissingSettingError(self.var, self.file, self.path)


_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}


def validate(schema: type[D], value: Any, path: str, settings: Settings | None = None) -> D:
    """Validate ``value`` into ``schema`` (a dataclass), naming file and key on failure."""
    return typing.cast(D, _check(schema, value, path, settings))


def _fail(settings: Settings | None, path: str, problem: str) -> ConfigError:
    origin = settings.origin(path) if settings is not None else "settings"
    return ConfigError(f"{path or '(top level)'} in {origin}: {problem}")


def _describe(value: Any) -> str:
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"{text!r}"
    return type(value).__name__


def _check(tp: Any, value: Any, path: str, settings: Settings | None) -> Any:
    if isinstance(value, Unset):
        raise value.error()
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Annotated:
        base, *extras = get_args(tp)
        checked = _check(base, value, path, settings)
        for bound in extras:
            if isinstance(bound, Range) and checked is not None and not bound.allows(checked):
                kind = "an integer" if base is int else "a number"
                shown = value if isinstance(value, (int, float)) else checked
                problem = f"{shown!r} is out of range; allowed: {bound.describe(kind)}"
                raise _fail(settings, path, problem)
        return checked
    if origin is Union or origin is types.UnionType:
        args = get_args(tp)
        if type(None) in args and (value is None or value == ""):
            return None
        options = [a for a in args if a is not type(None)]
        errors: list[str] = []
        for option in options:
            try:
                return _check(option, value, path, settings)
            except MissingSettingError:
                raise
            except ConfigError as exc:
                errors.append(str(exc))
        if len(options) == 1:
            raise ConfigError(errors[0])
        names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
        raise _fail(settings, path, f"expected {names}, got {_describe(value)}")
    if origin is Literal:
        allowed = get_args(tp)
        if value in allowed:
            return value
        text = ", ".join(repr(a) for a in allowed)
        close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise _fail(settings, path, f"must be one of {text}, got {_describe(value)}{hint}")
    if origin in (list, tuple) or tp in (list, tuple):
        if value is None:
            value = []
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):  # comma-separated strings come from the environment
            raise _fail(settings, path, f"expected a list, got {_describe(value)}")
        item_args = get_args(tp)
        item: Any = item_args[0] if item_args else Any
        items = [_check(item, v, f"{path}[{i}]", settings) for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise _fail(settings, path, f"expected a mapping, got {_describe(value)}")
        args = get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return {k: _check(vt, v, _join(path, k), settings) for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _check_dataclass(tp, value, path, settings)
    if tp is Secret:
        if isinstance(value, Secret):
            return value
        if value is None:
            return Secret("")
        if not isinstance(value, (str, int)):
            raise _fail(settings, path, f"expected a string, got {type(value).__name__}")
        return Secret(str(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (str, int)) and str(value).strip().lower() in _TRUE | _FALSE:
            return str(value).strip().lower() in _TRUE
        raise _fail(settings, path, f"expected true or false, got {_describe(value)}")
    if tp is int:
        if isinstance(value, bool):
            raise _fail(settings, path, f"expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip().replace("_", ""))
            except ValueError:
                pass
        raise _fail(settings, path, f"expected an integer, got {_describe(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise _fail(settings, path, f"expected a number, got {_describe(value)}")
    if tp is str:
        if isinstance(value, Secret):
            return value.reveal()
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise _fail(settings, path, f"expected a string, got {_describe(value)}")
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value).expanduser()
        raise _fail(settings, path, f"expected a path, got {_describe(value)}")
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            members = ", ".join(str(m.value) for m in tp)
            raise _fail(
                settings, path, f"must be one of {members}, got {_describe(value)}"
            ) from None
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _fail(settings, path, f"expected {tp.__name__}, got {_describe(value)}")
    return value


def _check_dataclass(tp: type, value: Any, path: str, settings: Settings | None) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _fail(settings, path, f"expected a mapping, got {_describe(value)}")
    hints = typing.get_type_hints(tp, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
    extra_name: str | None = getattr(tp, "__extra_field__", None)
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, raw in value.items():
        if key in fields and key != extra_name:
            kwargs[key] = _check(hints[key], raw, _join(path, key), settings)
        elif extra_name is not None:
            if isinstance(raw, Unset):
                raise raw.error()
            extra[key] = raw
        else:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            allowed = ", ".join(sorted(fields))
            raise _fail(settings, _join(path, key), f"unknown setting (allowed: {allowed}){hint}")
    if extra_name is not None:
        kwargs[extra_name] = extra
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise _fail(settings, path, f"missing required setting(s): {', '.join(missing)}")
    built = tp(**kwargs)
    check = getattr(built, "__check_fields__", None)  # ranges that depend on another field
    problem = check() if check is not None else None
    if problem is not None:
        raise _fail(settings, _join(path, problem[0]), problem[1])
    return built
