"""``%llm`` sub-commands: ``list``, ``use``, ``chats``, ``history``, ``reset``, ``usage``,
``replay``; and what completion asks about providers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError

__all__ = ["SUBCOMMANDS", "provider_targets"]


# -- sub-commands --------------------------------------------------------------------
def _list(magics: Any, argv: list[str]) -> Any:
    _no_args("list", argv)
    from nbinfra.llm import provider_statuses
    from nbinfra.notebook.display import Table

    rows = []
    for st in provider_statuses(_settings(), probe_reachability=True):
        rows.append(
            (
                st.provider,
                st.default_model or "",
                ", ".join(st.models or ()),
                "yes" if st.key_set else "no",
                {True: "yes", False: "no", None: "not checked"}[st.reachable],
                st.base_url or "",
            )
        )
    return Table(["provider", "default model", "models", "key set", "reachable", "base url"], rows)


def _use(magics: Any, argv: list[str]) -> Any:
    if len(argv) != 1:
        raise UsageError("Usage: %llm use PROVIDER[:MODEL]")
    target = argv[0]
    from nbinfra.llm.sync import llm

    llm(target)  # fails now, clearly, for an unknown provider
    magics.default_provider = target
    return None


def _chats(magics: Any, argv: list[str]) -> Any:
    _no_args("chats", argv)
    from nbinfra.notebook.display import Table

    rows = []
    for name, chat in sorted(magics.state.chats.items()):
        preview = chat.manager.preview()
        rows.append((name, len(preview.entries), preview.total_tokens, preview.strategy))
    return Table(["chat", "messages", "tokens", "strategy"], rows)


def _history(magics: Any, argv: list[str]) -> Any:
    if len(argv) != 1:
        raise UsageError("Usage: %llm history NAME")
    from nbinfra.notebook.display import Table
    from nbinfra.notebook.tables import Column

    chat = _chat(magics, argv[0])
    preview = chat.manager.preview()
    rows = [(e.index, e.role, e.tokens, e.status, e.text) for e in preview.entries]
    return Table(["#", "role", "tokens", "status", Column("text", wide=True)], rows)


def _reset(magics: Any, argv: list[str]) -> Any:
    if len(argv) > 1:
        raise UsageError("Usage: %llm reset [NAME]")
    if argv:
        _chat(magics, argv[0])
        del magics.state.chats[argv[0]]
    else:
        magics.state.chats.clear()
    return None


def _usage(magics: Any, argv: list[str]) -> Any:
    _no_args("usage", argv)
    return magics.state.usage


def _replay(magics: Any, argv: list[str]) -> Any:
    """on: answers are cached (a re-run is answered from the store); off: no store;
    record FILE: every answer is written to FILE (JSONL); load FILE: answers come only
    from FILE, with no network call (a miss is a ReplayMissError)."""
    from nbinfra.llm.replay import STATE_KEY, use_response_store

    usage_text = "Usage: %llm replay on|off|record FILE|load FILE"
    if not argv:
        raise UsageError(usage_text)
    mode, rest = argv[0], argv[1:]
    if mode in ("on", "off"):
        if rest:
            raise UsageError(usage_text)
        magics.state.record_path = None
        if mode == "off":
            _session().state.pop(STATE_KEY, None)
            return None
        return use_response_store("cache")
    if mode in ("record", "load"):
        if len(rest) != 1:
            raise UsageError(usage_text)
        if mode == "record":
            magics.state.record_path = rest[0]
            return use_response_store("record")
        magics.state.record_path = None
        try:
            return use_response_store("replay", path=rest[0])
        except OSError as exc:
            raise UsageError(f"Cannot read {rest[0]!r}: {exc.strerror or exc}.") from None
    raise UsageError(usage_text)


def _export_recording(magics: Any) -> None:
    path = magics.state.record_path
    if not path:
        return
    from nbinfra.llm.replay import STATE_KEY

    store = _session().state.get(STATE_KEY)
    if store is not None:
        store.export_jsonl(path)


def _chat(magics: Any, name: str) -> Any:
    chat = magics.state.chats.get(name)
    if chat is None:
        known = ", ".join(sorted(magics.state.chats)) or "none yet"
        raise UsageError(f"No chat named {name!r} (chats: {known}); start one with --chat {name}.")
    return chat


def _no_args(name: str, argv: list[str]) -> None:
    if argv:
        raise UsageError(
            f"%llm {name} takes no arguments; to send a prompt starting with {name!r}, "
            f"write %llm -- {name} ..."
        )


def _settings() -> Any:
    return _session().settings


def _session() -> Any:
    from nbinfra.session import session

    return session()


def provider_targets(magics: Any) -> list[str]:
    """Provider names and ``provider:model`` pairs for completion."""
    from nbinfra.llm import provider_statuses

    out: list[str] = []
    for st in provider_statuses(_settings()):
        out.append(str(st.provider))
        out.extend(f"{st.provider}:{m}" for m in (st.models or ()))
    return out


SUBCOMMANDS: dict[str, Callable[[Any, list[str]], Any]] = {
    "chats": _chats,
    "history": _history,
    "list": _list,
    "replay": _replay,
    "reset": _reset,
    "usage": _usage,
    "use": _use,
}
