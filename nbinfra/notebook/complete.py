"""Tab completion for the magics: sub-commands, providers, models, connections, namespaces."""

from __future__ import annotations

from typing import Any

__all__ = ["complete", "complete_cache", "complete_conn", "complete_llm"]

LLM_SUBCOMMANDS = ("chats", "history", "list", "replay", "reset", "usage", "use")
CACHE_SUBCOMMANDS = ("clear", "delete", "get", "list", "set", "stats", "use")
CONN_SUBCOMMANDS = ("health", "list", "use")


def _words(event: Any) -> list[str]:
    line: str = event.line
    words = line.split()
    if line.endswith(" "):
        words.append("")
    return words


def complete(magics: Any, event: Any) -> list[str]:
    """Candidates for the word under the cursor of a magic's line."""
    words = _words(event)
    magic = words[0].lstrip("%") if words else ""
    table = {"llm": complete_llm, "cache": complete_cache, "conn": complete_conn}
    handler = table.get(magic)
    return handler(magics, words) if handler is not None else []


def _prefixed(options: Any, prefix: str) -> list[str]:
    return sorted({o for o in options if o.startswith(prefix)})


def complete_llm(magics: Any, words: list[str]) -> list[str]:
    """Candidates for the last word of a ``%llm`` line."""
    current = words[-1] if words else ""
    previous = words[-2] if len(words) >= 2 else ""
    if previous in ("-p", "--provider", "use"):
        return _prefixed(provider_targets(magics), current)
    if previous in ("-m", "--model"):
        return _prefixed(model_names(magics), current)
    if previous in ("history", "reset", "--chat"):
        return _prefixed(magics.state.chats, current)
    if previous == "--strategy":
        return _prefixed(("recent", "sliding_window", "summarization"), current)
    if previous in ("-f", "--format"):
        return _prefixed(("code", "json", "markdown", "text"), current)
    if previous == "replay":
        return _prefixed(("load", "off", "on", "record"), current)
    if len(words) <= 2:
        return _prefixed(LLM_SUBCOMMANDS, current)
    return []


def complete_cache(magics: Any, words: list[str]) -> list[str]:
    current = words[-1] if words else ""
    previous = words[-2] if len(words) >= 2 else ""
    if previous in ("-n", "--namespace"):
        return _prefixed(namespace_names(magics), current)
    if previous == "use":
        return _prefixed(cache_backends(magics), current)
    rest = words[1:-1]
    if len(rest) >= 2 and rest[0] in ("-n", "--namespace"):
        rest = rest[2:]  # after "-n NAMESPACE" comes the command
    if not rest:
        return _prefixed(CACHE_SUBCOMMANDS, current)
    return []


def complete_conn(magics: Any, words: list[str]) -> list[str]:
    current = words[-1] if words else ""
    previous = words[-2] if len(words) >= 2 else ""
    names = connection_names(magics)
    if previous in ("use", "health"):
        return _prefixed(names, current)
    if len(words) <= 2:
        return _prefixed((*CONN_SUBCOMMANDS, *names), current)
    return []


def provider_targets(magics: Any) -> list[str]:
    from nbinfra.notebook import llm_magic

    return llm_magic.provider_targets(magics)


def model_names(magics: Any) -> list[str]:
    return sorted({t.partition(":")[2] for t in provider_targets(magics) if ":" in t})


def connection_names(magics: Any) -> list[str]:
    from nbinfra.notebook import conn_magic

    return conn_magic.connection_names()


def namespace_names(magics: Any) -> list[str]:
    from nbinfra.notebook import cache_magic

    return cache_magic.namespace_names(magics)


def cache_backends(magics: Any) -> list[str]:
    """memory, redis and the configured cache instances (``cache.instances``)."""
    from nbinfra.notebook import cache_magic

    return [*cache_magic.backend_names(), *cache_magic.instance_names()]
