"""Tab completion for the magics, as an IPython matcher (API v2) with typed candidates.

Candidates carry a type (``connection``, ``kind``, ``command``, ``option``, ``provider``,
...), which JupyterLab shows beside each one; when there are candidates the other matchers
(Jedi, file names) are suppressed, so ``%conn d`` + Tab completes ``duckdb`` alone.
Imported on the first Tab on a magic line, never by ``%load_ext``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nbinfra.logs import get_logger
from nbinfra.notebook._args import tokens

__all__ = [
    "CACHE_SUBCOMMANDS",
    "CONN_SUBCOMMANDS",
    "LLM_SUBCOMMANDS",
    "Candidate",
    "complete",
    "match",
]

LLM_SUBCOMMANDS = ("chats", "history", "list", "map", "replay", "reset", "usage", "use")
CACHE_SUBCOMMANDS = ("clear", "delete", "get", "list", "set", "stats", "use")
CONN_SUBCOMMANDS = ("health", "list", "profile", "saved", "use")
REPLAY_MODES = ("load", "off", "on", "record")
HELP_OPTIONS = ("-h", "--help")  # every magic answers them with its help text
# Options a %cache sub-command reads after its own arguments.
CACHE_COMMAND_OPTIONS = {"clear": ("--yes",), "set": ("--ttl",)}

Candidate = tuple[str, str]  # (text, type)

log = get_logger(__name__)


@dataclass
class _Line:
    """A magic's line up to the cursor, read the way the magic will parse it."""

    magic: str  # llm, cache or conn
    cell: bool  # %%magic (its line holds options and a name only)
    current: str  # the word being completed ("" after a space)
    positionals: list[str] = field(default_factory=list)
    pending: argparse.Action | None = None  # an option whose value is being typed
    options_used: bool = False


def match(magics: Any, context: Any) -> dict[str, Any]:
    """IPython matcher result for ``context`` (a ``CompletionContext``).

    Tab never shows a traceback: when the candidates cannot be read (a broken settings
    file, say), there are none, and running the cell reports the problem.
    """
    try:
        fragment, found = complete(magics, context.text_until_cursor, context.cursor_line == 0)
    except Exception as exc:  # noqa: BLE001 - completion is best effort
        log.debug("completion of %r failed: %r", context.text_until_cursor[-80:], exc)
        return {"completions": [], "suppress": False}
    return _result(fragment, found)


def match_cell(magics: Any, context: Any) -> dict[str, Any]:
    """IPython matcher result inside a ``%%conn`` cell's body: tables and columns."""
    from nbinfra.notebook.sql_complete import complete_cell

    try:
        fragment, found = complete_cell(magics, context.full_text, context.text_until_cursor)
    except Exception as exc:  # noqa: BLE001 - completion is best effort
        log.debug("completion in a %%conn cell failed: %r", exc)
        return {"completions": [], "suppress": False}
    return _result(fragment, found)


def _result(fragment: str, found: list[Candidate]) -> dict[str, Any]:
    from IPython.core.completer import SimpleCompletion

    return {
        "completions": [SimpleCompletion(text, type=kind) for text, kind in found],
        "matched_fragment": fragment,
        "suppress": bool(found),
        "ordered": True,
    }


def complete(magics: Any, text: str, first_line: bool = True) -> tuple[str, list[Candidate]]:
    """The word being completed at the end of ``text`` (a line up to the cursor), and its
    completions; ``first_line`` says whether the line is a cell's first (``%%`` magics)."""
    line = _read(magics, text, first_line=first_line)
    if line is None:
        return "", []
    handler = {"llm": _llm, "cache": _cache, "conn": _conn}[line.magic]
    found = handler(magics, line)
    seen: set[str] = set()
    out: list[Candidate] = []
    for value, kind in found:
        if value.startswith(line.current) and value not in seen:
            seen.add(value)
            out.append((value, kind))
    return line.current, out


def _read(magics: Any, text: str, *, first_line: bool) -> _Line | None:
    stripped = text.lstrip()
    head = stripped.split(None, 1)[0] if stripped.strip() else ""
    cell = head.startswith("%%")
    magic = head.lstrip("%")
    if magic not in ("llm", "cache", "conn") or len(stripped) == len(head):
        return None  # not a magic of ours, or its name is still being typed
    rest = stripped[len(head) + 1 :]
    if cell and not first_line:
        return None
    toks = tokens(rest)
    ends_word = bool(toks) and toks[-1].end == len(rest)
    current = toks[-1].raw if ends_word else ""
    line = _Line(magic, cell, current)
    table = _option_table(getattr(magics, magic).parser)
    for tok in toks[:-1] if ends_word else toks:
        raw = tok.raw
        if line.pending is not None:
            line.pending = None
        elif raw.startswith("-") and (line.cell or not line.positionals):
            line.options_used = True
            action = table.get(raw.partition("=")[0])
            if action is not None and action.nargs != 0 and "=" not in raw:
                line.pending = action
        else:
            line.positionals.append(tok.raw)  # raw: an unclosed quote is no error here
    return line


def _option_table(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {opt: action for action in parser._actions for opt in action.option_strings}


def _options(magics: Any, line: _Line) -> list[Candidate]:
    parser = getattr(magics, line.magic).parser
    names = [*_option_table(parser), *HELP_OPTIONS]
    return [(name, "option") for name in sorted(names, key=lambda n: (n.startswith("--"), n))]


def _typed(values: Iterable[str], kind: str) -> list[Candidate]:
    return [(value, kind) for value in values]


def _value(magics: Any, action: argparse.Action) -> list[Candidate]:
    """Values of the option being typed: its choices, or what the session knows."""
    if action.choices:
        return _typed((str(c) for c in action.choices), "value")
    sources: dict[str, Callable[[Any], list[Candidate]]] = {
        "provider": _providers,
        "model": lambda m: _typed(model_names(m), "model"),
        "chat": lambda m: _typed(sorted(m.state.chats), "chat"),
        "namespace": lambda m: _typed(namespace_names(m), "namespace"),
    }
    source = sources.get(action.dest)
    return source(magics) if source is not None else []


def _llm(magics: Any, line: _Line) -> list[Candidate]:
    if line.pending is not None:
        return _value(magics, line.pending)
    if line.current.startswith("-") and (line.cell or not line.positionals):
        return _options(magics, line)
    if line.cell:
        return []
    if not line.positionals and not line.options_used:
        return _typed(LLM_SUBCOMMANDS, "command")
    if len(line.positionals) == 1 and not line.options_used:
        sub = line.positionals[0]
        if sub == "use":
            return _providers(magics)
        if sub in ("history", "reset"):
            return _typed(sorted(magics.state.chats), "chat")
        if sub == "replay":
            return _typed(REPLAY_MODES, "value")
    return []


def _cache(magics: Any, line: _Line) -> list[Candidate]:
    if line.pending is not None:
        return _value(magics, line.pending)
    command = line.positionals[0] if line.positionals else None
    if line.current.startswith("-"):
        if command is None:
            return _options(magics, line)
        return _typed(CACHE_COMMAND_OPTIONS.get(command, ()), "option")
    if command is None:
        return _typed(CACHE_SUBCOMMANDS, "command")
    if command == "use" and len(line.positionals) == 1:
        return [*_typed(cache_backends(), "backend"), *_typed(cache_instances(), "cache")]
    return []


def _conn(magics: Any, line: _Line) -> list[Candidate]:
    if line.pending is not None:
        return _value(magics, line.pending)
    if line.current.startswith("-") and (line.cell or not line.positionals):
        return _options(magics, line)
    if not line.positionals:
        commands = [] if line.cell or line.options_used else _typed(CONN_SUBCOMMANDS, "command")
        return [*commands, *_connections()]
    if len(line.positionals) == 1 and line.positionals[0] in ("use", "health", "profile"):
        return _typed(connection_names(), "connection")
    return []


def _connections() -> list[Candidate]:
    """Configured connection names, then the kinds no configured name spells."""
    names = connection_names()
    return [
        *_typed(names, "connection"),
        *_typed(sorted(set(connection_kinds()) - set(names)), "kind"),
    ]


def _providers(magics: Any) -> list[Candidate]:
    return [(t, "model" if ":" in t else "provider") for t in provider_targets(magics)]


# -- what the session knows (each reads settings only: no driver, no SDK) -------------
def provider_targets(magics: Any) -> list[str]:
    from nbinfra.notebook import llm_magic

    return llm_magic.provider_targets(magics)


def model_names(magics: Any) -> list[str]:
    return sorted({t.partition(":")[2] for t in provider_targets(magics) if ":" in t})


def connection_names() -> list[str]:
    from nbinfra.notebook import conn_magic

    return conn_magic.connection_names()


def connection_kinds() -> list[str]:
    from nbinfra.connections import ConnectionRegistry

    return ConnectionRegistry.kinds()


def namespace_names(magics: Any) -> list[str]:
    from nbinfra.notebook import cache_magic

    return cache_magic.namespace_names(magics)


def cache_backends() -> list[str]:
    from nbinfra.notebook import cache_magic

    return cache_magic.backend_names()


def cache_instances() -> list[str]:
    from nbinfra.notebook import cache_magic

    return cache_magic.instance_names()
