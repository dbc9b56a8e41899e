"""``%cache``: get, set, delete, list, stats, clear and backend choice from a cell."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError

from nbinfra.notebook._args import Token, parse_options, tokens

__all__ = [
    "DEFAULT_NAMESPACE",
    "SUBCOMMANDS",
    "backend_names",
    "instance_names",
    "namespace_names",
    "run",
]

DEFAULT_NAMESPACE = "notebook"
_USAGE = (
    "Usage: %cache [-n NAMESPACE] get KEY | set KEY VALUE [--ttl S] | delete KEY | "
    "list [PATTERN] | stats | clear [--yes] | use memory|redis|NAME"
)


def run(magics: Any, line: str) -> Any:
    args, rest = parse_options(magics.cache.parser, line)
    toks = tokens(rest)
    if not toks:
        raise UsageError(_USAGE)
    handler = SUBCOMMANDS.get(toks[0].raw)
    if handler is None:
        raise UsageError(f"Unknown %cache command {toks[0].raw!r}. {_USAGE}")
    namespace = args.namespace
    if namespace is not None and not namespace.strip():
        raise UsageError("-n needs a non-empty namespace.")
    return handler(magics, namespace, rest, toks[1:])


def _cache(magics: Any, namespace: str | None) -> Any:
    state = magics.state
    ns = namespace or state.cache_namespace or DEFAULT_NAMESPACE
    from nbinfra.cache import cache

    return cache(ns, ttl=state.cache_ttl, cache_type=state.cache_backend)


def _get(magics: Any, namespace: str | None, line: str, argv: list[Token]) -> Any:
    if len(argv) != 1:
        raise UsageError("Usage: %cache get KEY")
    return _cache(magics, namespace).get(argv[0].value)


def _set(magics: Any, namespace: str | None, line: str, argv: list[Token]) -> Any:
    if len(argv) < 2:
        raise UsageError("Usage: %cache set KEY VALUE [--ttl S] (VALUE: a Python literal or $var)")
    ttl: float | None = None
    if len(argv) >= 4 and argv[-2].raw == "--ttl":
        try:
            ttl = float(argv[-1].value)
        except ValueError:
            raise UsageError(f"--ttl needs seconds, got {argv[-1].raw!r}.") from None
        if ttl <= 0:
            raise UsageError("--ttl must be more than 0 seconds.")
        value_end = argv[-2].start
    elif any(t.raw == "--ttl" for t in argv[1:]):
        raise UsageError("Put --ttl S at the end: %cache set KEY VALUE --ttl S")
    else:
        value_end = argv[-1].end
    source = line[argv[1].start : value_end].strip()
    if not source:
        raise UsageError("Usage: %cache set KEY VALUE [--ttl S]")
    value = _value(magics, source)
    cache = _cache(magics, namespace)
    if ttl is None:
        cache.set(argv[0].value, value)
    else:
        cache.set(argv[0].value, value, ttl=ttl)
    return None


def _value(magics: Any, source: str) -> Any:
    if source.startswith("$"):
        name = source[1:]
        if not name.isidentifier():
            raise UsageError(f"{source!r} is not a variable reference; write $name.")
        if name not in magics.user_ns:
            raise UsageError(f"No variable named {name!r}.")
        return magics.user_ns[name]
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise UsageError(
            f"VALUE must be a Python literal (e.g. 42, 'text', [1, 2], {{'a': 1}}) or $var; "
            f"got {source[:60]!r}."
        ) from None


def _delete(magics: Any, namespace: str | None, line: str, argv: list[Token]) -> Any:
    if len(argv) != 1:
        raise UsageError("Usage: %cache delete KEY")
    return _cache(magics, namespace).delete(argv[0].value)


def _list(magics: Any, namespace: str | None, line: str, argv: list[Token]) -> Any:
    if len(argv) > 1:
        raise UsageError("Usage: %cache list [PATTERN]")
    cache = _cache(magics, namespace)
    if argv:
        return sorted(cache.keys(argv[0].value))
    return sorted(cache.keys())


def _stats(magics: Any, namespace: str | None, line: str, argv: list[Token]) -> Any:
    if argv:
        raise UsageError("Usage: %cache stats")
    return _cache(magics, namespace).stats()


def _clear(magics: Any, namespace: str | None, line: str, argv: list[Token]) -> Any:
    flags = [t.raw for t in argv]
    if any(f != "--yes" for f in flags):
        raise UsageError("Usage: %cache [-n NAMESPACE] clear [--yes]")
    if namespace is None and "--yes" not in flags:
        raise UsageError(
            "%cache clear without -n NAMESPACE empties the default namespace; add --yes to confirm."
        )
    return _cache(magics, namespace).clear()


def _use(magics: Any, namespace: str | None, line: str, argv: list[Token]) -> Any:
    if len(argv) != 1:
        raise UsageError("Usage: %cache use memory|redis|NAME")
    choice = argv[0].value
    state = magics.state
    if choice in backend_names():
        state.cache_backend = choice
    else:
        instances = _instances()
        if choice not in instances:
            known = ", ".join([*backend_names(), *sorted(instances)])
            raise UsageError(f"Unknown cache {choice!r}; use one of {known}.")
        inst = instances[choice]
        state.cache_namespace = inst.namespace or choice
        state.cache_ttl = inst.ttl
        state.cache_backend = None if inst.backend == "default" else inst.backend
    if namespace:
        state.cache_namespace = namespace
    return None


def _instances() -> dict[str, Any]:
    from nbinfra.cache.instances import configured_instances

    return dict(configured_instances())


def backend_names() -> list[str]:
    from nbinfra.cache import CacheType

    return sorted(str(t.value) for t in CacheType)


def instance_names() -> list[str]:
    return sorted(_instances())


def namespace_names(magics: Any) -> list[str]:
    names = {DEFAULT_NAMESPACE}
    names.update(inst.namespace or name for name, inst in _instances().items())
    if magics.state.cache_namespace:
        names.add(magics.state.cache_namespace)
    return sorted(names)


SUBCOMMANDS: dict[str, Callable[[Any, str | None, str, list[Token]], Any]] = {
    "clear": _clear,
    "delete": _delete,
    "get": _get,
    "list": _list,
    "set": _set,
    "stats": _stats,
    "use": _use,
}
