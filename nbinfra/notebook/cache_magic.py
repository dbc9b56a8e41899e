"""``%cache``: get, set, delete, list, stats, clear and backend choice from a cell."""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from IPython.core.error import UsageError

from nbinfra.notebook._args import Token, parse_options, short, tokens

__all__ = [
    "DEFAULT_NAMESPACE",
    "SUBCOMMANDS",
    "CacheLine",
    "backend_names",
    "expand",
    "instance_names",
    "namespace_names",
    "parse",
    "run",
]

DEFAULT_NAMESPACE = "notebook"
_USAGE = (
    "Usage: %cache [-n NAMESPACE] get KEY | set KEY VALUE [--ttl S] | delete KEY | "
    "list [PATTERN] | stats | clear [--yes] | use KIND|NAME (%cache use lists them)"
)


class CacheLine(NamedTuple):
    """A parsed ``%cache`` line."""

    namespace: str | None  # -n NAMESPACE as written ($name not yet filled in)
    command: str  # get, set, delete, list, stats, clear or use
    rest: str  # the text from the command on, verbatim
    argv: list[Token]  # the command's first words (up to 3), positions in ``rest``


def parse(line: str) -> CacheLine:
    """Parse a ``%cache`` line without running anything.

    Pure and linear in the line's length: no variable is read (``$name`` is filled in
    when the command runs). Bad input raises ``UsageError``; ``-h``/``--help`` raises
    ``HelpRequested``.
    """
    from nbinfra.notebook.magics import magic_parser

    args, rest = parse_options(magic_parser("cache"), line)
    toks = tokens(rest, 4)  # no command takes more than 2 words; SET's VALUE is text
    if not toks:
        raise UsageError(_USAGE)
    if toks[0].raw not in SUBCOMMANDS:
        raise UsageError(f"Unknown %cache command {short(toks[0].raw)!r}. {_USAGE}")
    namespace = args.namespace
    if namespace is not None and not namespace.strip():
        raise UsageError("-n needs a non-empty namespace.")
    return CacheLine(namespace, toks[0].raw, rest, toks[1:])


def run(magics: Any, line: str) -> Any:
    parsed = parse(line)
    namespace = parsed.namespace
    if namespace is not None:
        namespace = expand(namespace, magics.user_ns)
        if not namespace.strip():
            raise UsageError("-n needs a non-empty namespace.")
    return SUBCOMMANDS[parsed.command](magics, namespace, parsed.rest, parsed.argv)


_DOLLAR = re.compile(r"\$\$|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand(text: str, namespace: Mapping[str, Any]) -> str:
    """``text`` with each ``$name`` replaced by the variable's text and ``$$`` by ``$``.

    For the words of ``%cache`` (KEY, PATTERN, NAMESPACE, NAME, the ttl); a ``$`` not
    followed by a name stays. An undefined name is a ``UsageError``.
    """
    if "$" not in text:
        return text

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name not in namespace:
            raise UsageError(f"No variable named {name!r} (for ${name}); write $$ for a literal $.")
        value = namespace[name]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise UsageError(
                f"${name} is a {type(value).__name__}; only text and numbers fill in a "
                "key, pattern or name (set VALUE takes any $var)."
            )
        return str(value)

    return _DOLLAR.sub(fill, text)


def _word(magics: Any, token: Token) -> str:
    return expand(token.value, magics.user_ns)


def _cache(magics: Any, namespace: str | None) -> Any:
    state = magics.state
    ns = namespace or state.cache_namespace or DEFAULT_NAMESPACE
    from nbinfra.cache import cache

    return cache(ns, ttl=state.cache_ttl, cache_type=state.cache_backend)


def _get(magics: Any, namespace: str | None, line: str, argv: list[Token]) -> Any:
    if len(argv) != 1:
        raise UsageError("Usage: %cache get KEY")
    return _cache(magics, namespace).get(_word(magics, argv[0]))


def _set(magics: Any, namespace: str | None, line: str, argv: list[Token]) -> Any:
    if len(argv) < 2:
        raise UsageError("Usage: %cache set KEY VALUE [--ttl S] (VALUE: a Python literal or $var)")
    source = line[argv[1].start :]
    ttl: float | None = None
    if "--ttl" in source:  # only then is VALUE split into words
        words = tokens(source)
        if len(words) >= 3 and words[-2].raw == "--ttl":
            ttl = _ttl(_word(magics, words[-1]))
            source = source[: words[-2].start]
        elif any(t.raw == "--ttl" for t in words):
            raise UsageError("Put --ttl S at the end: %cache set KEY VALUE --ttl S")
    source = source.strip()
    if not source:
        raise UsageError("Usage: %cache set KEY VALUE [--ttl S]")
    value = _value(magics, source)
    cache = _cache(magics, namespace)
    key = _word(magics, argv[0])
    if ttl is None:
        cache.set(key, value)
    else:
        cache.set(key, value, ttl=ttl)
    return None


def _ttl(word: str) -> float:
    try:
        ttl = float(word)
    except ValueError:
        raise UsageError(f"--ttl needs seconds, got {short(word)!r}.") from None
    if not 0 < ttl < math.inf:  # also refuses nan, inf and 1e309
        raise UsageError(
            f"--ttl must be a finite number of seconds more than 0, got {short(word)}."
        )
    return ttl


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
            f"got {short(source)!r}."
        ) from None


def _delete(magics: Any, namespace: str | None, line: str, argv: list[Token]) -> Any:
    if len(argv) != 1:
        raise UsageError("Usage: %cache delete KEY")
    return _cache(magics, namespace).delete(_word(magics, argv[0]))


def _list(magics: Any, namespace: str | None, line: str, argv: list[Token]) -> Any:
    if len(argv) > 1:
        raise UsageError("Usage: %cache list [PATTERN]")
    cache = _cache(magics, namespace)
    if argv:
        return sorted(cache.keys(_word(magics, argv[0])))
    return sorted(cache.keys())


def _stats(magics: Any, namespace: str | None, line: str, argv: list[Token]) -> Any:
    if argv:
        raise UsageError("Usage: %cache stats")
    return _cache(magics, namespace).stats()


def _clear(magics: Any, namespace: str | None, line: str, argv: list[Token]) -> Any:
    flags = [t.raw for t in argv]
    if len(flags) > 1 or any(f != "--yes" for f in flags):
        raise UsageError("Usage: %cache [-n NAMESPACE] clear [--yes]")
    if namespace is None and "--yes" not in flags:
        raise UsageError(
            "%cache clear without -n NAMESPACE empties the default namespace; add --yes to confirm."
        )
    return _cache(magics, namespace).clear()


def _use(magics: Any, namespace: str | None, line: str, argv: list[Token]) -> Any:
    if len(argv) != 1:
        known = ", ".join([*backend_names(), *instance_names()])
        raise UsageError(f"Usage: %cache use KIND|NAME, one of {known}")
    choice = _word(magics, argv[0])
    state = magics.state
    from nbinfra.cache.registry import CacheRegistry

    if choice in CacheRegistry:
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
    """Every registered cache kind (built-in, decorated or from an entry point)."""
    from nbinfra.cache.registry import CacheRegistry

    return CacheRegistry.kinds()


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
