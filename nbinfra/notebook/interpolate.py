"""Safe ``{name}`` interpolation for prompts, and ``:name`` bind parameters for SQL.

Prompts: ``{name}``, ``{obj.attr}``, ``{d[key]}``, ``{x!r}`` and ``{x:.2f}`` are looked up
in the user namespace with ``getattr``/``[]`` only (nothing is evaluated); ``{{`` and ``}}``
are literal braces; anything else in braces (a JSON example, an undefined name) is left
exactly as written, so a prompt full of braces never fails the way ``str.format`` does.

SQL: ``:name`` marks a bound value. The SQL text is never changed with a value; the names
are collected so the values go to the driver as parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nbinfra.errors import InterpolationError

__all__ = ["InterpolationError", "interpolate", "sql_bind_names", "sql_params"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# (?=(X))(?P=X) matches X as an atomic group: the name and the path are never re-tried
# shorter, so a long field that is not one fails in linear time.
_FIELD = re.compile(
    rf"^(?=(?P<root>{_NAME}))(?P=root)"
    rf"(?=(?P<path>(?:\.{_NAME}|\[[^\[\]{{}}]+\])*))(?P=path)"
    r"(?:!(?P<conv>[rsa]))?(?::(?P<spec>[^{}]*))?$"
)
_STEP = re.compile(rf"\.({_NAME})|\[([^\[\]]+)\]")


_BRACES = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """``text`` with ``{fields}`` filled from ``namespace`` (see the module docstring).

    One pass over ``text`` (linear in its length, whatever its braces).
    """
    if "{" not in text and "}" not in text:
        return text

    def fill(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "{{":
            return "{"
        if whole == "}}":
            return "}"
        value = _resolve(match.group(1), namespace)
        return whole if value is None else value

    return _BRACES.sub(fill, text)


def _resolve(field: str, namespace: Mapping[str, Any]) -> str | None:
    """The formatted value, or None when ``field`` is not an interpolation field."""
    match = _FIELD.match(field.strip())
    if match is None or match.group("root") not in namespace:
        return None
    value = namespace[match.group("root")]
    for attr, key in _STEP.findall(match.group("path")):
        try:
            value = getattr(value, attr) if attr else value[_key(key)]
        except Exception as exc:  # noqa: BLE001 - any lookup failure is the user's to fix
            raise InterpolationError(
                f"Cannot interpolate {{{field}}}: {type(exc).__name__}: {_first_line(exc)}. "
                "Write {{ and }} for literal braces, or use --no-interpolate."
            ) from None
    conv, spec = match.group("conv"), match.group("spec") or ""
    try:  # the value's own __repr__/__str__/__format__ may raise anything
        if conv == "r":
            value = repr(value)
        elif conv == "a":
            value = ascii(value)
        elif conv == "s":
            value = str(value)
        return format(value, spec)
    except Exception as exc:  # noqa: BLE001 - the user's object; shown as one line
        raise InterpolationError(
            f"Cannot format {{{field}}}: {type(exc).__name__}: {_first_line(exc)}. "
            "Write {{ and }} for literal braces, or use --no-interpolate."
        ) from None


def _first_line(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - an exception whose __str__ raises too
        return "(no message)"
    return text.splitlines()[0][:200] if text.strip() else "(no message)"


def _key(raw: str) -> Any:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    if raw.lstrip("-").isdigit():
        return int(raw)
    return raw


def sql_bind_names(sql: str, style: str = ":name") -> list[str]:
    """Names used as binds in ``sql`` (outside strings, comments and ``::``)."""
    from nbinfra.connections.sqltext import placeholders

    return list(dict.fromkeys(placeholders(sql, style)))


def sql_params(sql: str | list[str], namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The values of ``sql``'s ``:name`` binds (or of the bind ``names`` given) from
    ``namespace``; undefined names fail."""
    params: dict[str, Any] = {}
    for name in sql_bind_names(sql) if isinstance(sql, str) else sql:
        if name not in namespace:
            raise InterpolationError(
                f"The query binds :{name} but no variable {name} is defined; "
                f"set {name} = ... first (values are sent as parameters, never as SQL text)."
            )
        params[name] = namespace[name]
    return params
