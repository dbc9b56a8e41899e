"""``%llm`` / ``%%llm``: prompts, chats and the sub-commands behind them."""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from IPython.core.error import UsageError

from nbinfra import _loop
from nbinfra.errors import Interrupted, LLMError, SchemaError
from nbinfra.notebook._args import check_output_name, first_word, parse_options, tokens
from nbinfra.notebook.interpolate import interpolate

__all__ = ["SUBCOMMANDS", "LLMLine", "parse", "provider_targets", "run"]

_FENCE = re.compile(r"^\s*```[\w+-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)
_UPDATE_EVERY = 0.05  # seconds between re-renders while streaming


class LLMLine(NamedTuple):
    """A parsed ``%llm``/``%%llm`` line: a sub-command with its words, or options and a prompt."""

    command: str | None  # a sub-command name, or None for a prompt
    argv: list[str]  # the sub-command's words
    options: argparse.Namespace  # the prompt's options (empty for a sub-command)
    prompt: str  # the prompt, verbatim (before {name} interpolation)


def parse(line: str, cell: str | None = None) -> LLMLine:
    """Parse a ``%llm`` line (or a ``%%llm`` line and its cell) without running anything.

    Pure and linear in the line's length: no variable is read, nothing is evaluated; the
    prompt comes back verbatim. Bad options raise ``UsageError``; ``-h``/``--help`` raises
    ``HelpRequested``.
    """
    if cell is None:
        word, rest = first_word(line)
        if word == "map":  # %llm map [options] TEMPLATE: the line form of %%llm --over
            from nbinfra.notebook.magics import magic_parser

            args, text = parse_options(magic_parser("llm"), rest)
            return LLMLine("map", [], args, text.strip())
        if word in SUBCOMMANDS:
            argv = [t.value for t in tokens(rest, 4)]  # none takes more than 2 words
            return LLMLine(word, argv, argparse.Namespace(), "")
    from nbinfra.notebook.magics import magic_parser

    args, text = parse_options(magic_parser("llm"), line)
    prompt = "\n".join(part.strip() for part in (text, cell or "") if part.strip())
    return LLMLine(None, [], args, prompt)


def run(magics: Any, line: str, cell: str | None) -> Any:
    parsed = parse(line, cell)
    if parsed.command == "map" or (parsed.command is None and parsed.options.over):
        from nbinfra.notebook.llm_map_magic import run_map

        return run_map(magics, parsed.options, parsed.prompt)
    if parsed.command is not None:
        return SUBCOMMANDS[parsed.command](magics, parsed.argv)
    if not parsed.prompt:
        raise UsageError(
            "No prompt: put it in the cell body (%%llm) or after the options (%llm PROMPT); "
            "see %llm? for sub-commands."
        )
    if parsed.options.output:
        check_output_name(parsed.options.output, getattr(magics.shell, "user_ns_hidden", ()))
    return ask(magics, parsed.options, parsed.prompt)


def ask(magics: Any, args: Any, prompt: str) -> Any:
    ns = magics.user_ns
    system = args.system
    if not args.no_interpolate:
        prompt = interpolate(prompt, ns)
        if system:
            system = interpolate(system, ns)
    schema = _schema(args, ns)
    fmt = "json" if schema is not None else args.format or magics.default_format
    if fmt not in ("markdown", "text", "code", "json"):
        raise UsageError(f"Unknown format {fmt!r}; use markdown, text, code or json.")
    options = _options(args, fmt)
    if schema is not None:
        options["schema"] = schema
    target = _target(magics, args)
    # A schema's answer is validated (and maybe repaired) whole: it is not streamed.
    stream = magics.streaming and not args.no_stream and schema is None
    if args.budget is not None and args.budget <= 0:
        raise UsageError("--budget must be a positive number of tokens.")
    if (args.strategy or args.budget) and not args.chat:
        raise UsageError("--strategy and --budget apply to a chat: add --chat NAME.")
    llm = _llm(target)
    try:
        with _cache_bypass(llm.llm, args.no_cache):
            if args.chat:
                response = _ask_chat(magics, args, llm, prompt, system, options, fmt, stream)
            elif stream:
                response = _stream(magics, llm, _messages(prompt, system), options, fmt)
            else:
                response = llm.generate(_messages(prompt, system), **options)
                _show(magics, response, fmt, None)
    except Interrupted as stop:
        if stop.partial is not None:  # an interrupted stream: keep what arrived
            _keep(magics, args, stop.partial)
        raise
    except SchemaError as mismatch:  # the last answer stays in _llm, for a look at it
        if mismatch.response is not None:
            magics.user_ns["_llm"] = mismatch.response
        raise
    _keep(magics, args, response)
    _export_recording(magics)
    return _finish(magics, response, fmt)


def _keep(magics: Any, args: Any, response: Any) -> None:
    magics.state.usage.record(response, magics.cell_number())
    magics.user_ns["_llm"] = response
    if args.output:
        schema_bound = getattr(args, "schema", None) and response.parsed is not None
        magics.user_ns[args.output] = response.parsed if schema_bound else response


def _schema(args: Any, ns: dict[str, Any]) -> Any:
    """``--schema NAME``: the model class or dict named NAME (a name or ``a.b``, looked up,
    never evaluated), checked; None without the option."""
    name = getattr(args, "schema", None)
    if not name:
        return None
    if args.format not in (None, "json"):
        raise UsageError(f"--schema answers JSON; drop -f {args.format} (or use -f json).")
    head, *attrs = name.split(".")
    if not head.isidentifier() or not all(a.isidentifier() for a in attrs):
        raise UsageError(f"--schema takes a variable name (Ticket, models.Ticket), got {name!r}.")
    if head not in ns:
        raise UsageError(
            f"--schema {name}: no variable {head!r}; define a pydantic model class or a "
            "JSON-schema dict first."
        )
    value = ns[head]
    for attr in attrs:
        try:
            value = getattr(value, attr)
        except AttributeError:
            raise UsageError(f"--schema {name}: {head} has no attribute {attr!r}.") from None
    from nbinfra.errors import InvalidOptionError
    from nbinfra.llm.schema import as_schema

    try:
        return as_schema(value)
    except InvalidOptionError as exc:
        raise UsageError(f"--schema {name}: {exc}") from None


def _options(args: Any, fmt: str) -> dict[str, Any]:
    """Call options, checked now (an InvalidOptionError before any request is made)."""
    from nbinfra.llm.calls import check_option

    options: dict[str, Any] = {}
    for key in ("temperature", "max_tokens", "model", "system"):
        value = getattr(args, key)
        if value not in (None, ""):  # -m '' / -s '': the default
            checked = check_option(key, value)
            if key in ("temperature", "max_tokens"):
                options[key] = checked
    if fmt == "json":
        options["response_format"] = "json"
    return options


def _target(magics: Any, args: Any) -> tuple[str | None, str | None]:
    """(provider spec, model) from -p/-m, else the %llm default ('' = configured default)."""
    spec: str | None = args.provider or magics.default_provider or None
    return spec, args.model or None


def _llm(target: tuple[str | None, str | None]) -> Any:
    """The session's ``SyncLLM`` for ``(spec, model)``."""
    from nbinfra.llm.sync import llm

    return llm(target[0], target[1])


def _messages(prompt: str, system: str | None) -> Any:
    from nbinfra.llm.types import as_messages

    return as_messages(prompt, system=system)


@contextmanager
def _cache_bypass(provider: Any, bypass: bool) -> Iterator[None]:
    """--no-cache: this call goes to the provider whatever the session's response store."""
    if not bypass:
        yield
        return
    from nbinfra.llm.replay import ResponseStore

    own = provider._store  # the provider's own store (None: it follows the session's)
    provider.response_store = ResponseStore("off")
    try:
        yield
    finally:
        provider.response_store = own


def _stream(
    magics: Any,
    llm: Any,
    messages: Any,
    options: dict[str, Any],
    fmt: str,
    events: Iterable[Any] | None = None,
) -> Any:
    """Render a stream into the cell: ``llm.stream_events(messages)``, or ``events``
    (a chat's turn, whose ``messages`` are known once it started: then a callable)."""
    from nbinfra.notebook.display import show as display

    handle: Any = display({"text/plain": ""}, raw=True, display_id=True)
    parts: list[str] = []
    response = None
    last = 0.0
    start = time.monotonic()
    if events is None:
        events = llm.stream_events(messages, **options)
    try:
        for chunk in events:
            if chunk.final:
                response = chunk.response
                continue
            parts.append(chunk.text)
            now = time.monotonic()
            if handle is not None and now - last >= _UPDATE_EVERY:
                handle.update({"text/plain": "".join(parts)}, raw=True)
                last = now
    except KeyboardInterrupt:
        if not parts:
            raise Interrupted(
                "Interrupted: the LLM call was cancelled before any text arrived"
            ) from None
        # The stream is closed (its HTTP connection too); what arrived is the answer.
        sent = messages() if callable(messages) else messages
        partial = llm.llm.partial_response(
            sent, "".join(parts), latency=time.monotonic() - start, **options
        )
        _show(magics, partial, fmt, handle)
        raise Interrupted(
            f"Interrupted after {len(parts)} chunks; the partial answer is in `_llm`",
            partial=partial,
        ) from None
    if response is None:
        raise LLMError("The stream ended without a final response; try again with --no-stream.")
    _show(magics, response, fmt, handle)
    return response


def _ask_chat(
    magics: Any,
    args: Any,
    llm: Any,
    prompt: str,
    system: str | None,
    options: dict[str, Any],
    fmt: str,
    stream: bool,
) -> Any:
    from nbinfra.llm.context import Chat, ContextWindowManager
    from nbinfra.llm.types import Message

    chat = magics.state.chats.get(args.chat)
    try:
        if chat is None:
            manager = ContextWindowManager(
                model=llm.model,
                context_window=llm.context_window,
                strategy=args.strategy or "recent",
                summarizer=llm.llm,
                **({"max_output_tokens": args.max_tokens} if args.max_tokens else {}),
            )
            if system:
                manager.add(Message("system", system))
            chat = Chat(llm.llm, manager)
        if args.strategy:
            chat.manager.strategy = args.strategy
        if args.budget:
            manager = chat.manager
            manager.context_window = args.budget + manager.max_output_tokens + manager.margin
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    magics.state.chats[args.chat] = chat
    if not stream:
        response = _loop.run_sync(chat.ask(prompt, **options))
        _show(magics, response, fmt, None)
        return response
    # Chat.stream: the same turn as Chat.ask (fit, truncation check, history), streamed.
    events = _loop.iterate_sync(chat.stream(prompt, **options))
    return _stream(magics, llm, lambda: chat.last_sent, options, fmt, events=events)


def provenance(response: Any) -> dict[str, Any]:
    """What produced an answer, for the output's metadata."""
    return {
        "nbinfra": {
            "provider": str(response.provider),
            "model": str(response.model),
            "options": {k: v for k, v in (response.options or {}).items() if _jsonable(v)},
            "usage": {
                "input_tokens": response.usage.input_tokens,
                "output_tokens": response.usage.output_tokens,
                "exact": response.usage.exact,
            },
            "latency": response.latency,
            "cost": response.cost,
            "cached": bool(response.cached or response.usage.cached),
        }
    }


def _jsonable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, type(None), list, dict))


def _show(magics: Any, response: Any, fmt: str, handle: Any) -> None:
    from nbinfra.notebook.display import llm_markdown, llm_text
    from nbinfra.notebook.display import show as display

    text = llm_text(response)
    if fmt == "markdown":
        bundle = {"text/markdown": llm_markdown(response), "text/plain": text}
    elif fmt == "code":
        bundle = {"text/markdown": f"```\n{_unfence(response.content)}\n```", "text/plain": text}
    else:
        bundle = {"text/plain": text}
    meta = provenance(response)
    if handle is not None:
        handle.update(bundle, raw=True, metadata=meta)
    else:
        display(bundle, raw=True, metadata=meta)


def _unfence(text: str) -> str:
    match = _FENCE.match(text)
    return match.group(1) if match else text.strip()


def _finish(magics: Any, response: Any, fmt: str) -> Any:
    if fmt == "code":
        magics.shell.set_next_input(_unfence(response.content), replace=False)
        return None
    if fmt == "json":
        if response.parsed is not None:  # --schema: the validated instance (or dict)
            return response.parsed
        body = _unfence(response.content)
        try:
            return json.loads(body)
        except json.JSONDecodeError as exc:
            raise LLMError(
                f"The answer is not valid JSON ({exc.msg} at line {exc.lineno}, column "
                f"{exc.colno}); the raw answer is in _llm.content."
            ) from None
    return None


# The sub-commands live in their own module; they are part of this module's names.
from nbinfra.notebook.llm_commands import (  # noqa: E402
    SUBCOMMANDS,
    _export_recording,
    provider_targets,
)
