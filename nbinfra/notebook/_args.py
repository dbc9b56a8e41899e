"""Splitting a magic's line into options and free text, without mangling the text.

A prompt or a query after the options is taken verbatim from the line (apostrophes,
braces and quotes untouched); only the option tokens go through ``shlex`` and the magic's
``argparse`` parser, whose errors raise ``UsageError``.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from IPython.core.error import UsageError

__all__ = [
    "HelpRequested",
    "Token",
    "check_output_name",
    "first_word",
    "parse_all",
    "parse_options",
    "tokens",
    "unquote",
]

_HELP = frozenset({"-h", "--help"})

# A token is a run of non-space characters where quoted parts may hold spaces.
_TOKEN = re.compile(r"""(?:[^\s"']+|"(?:[^"\\]|\\.)*"?|'[^']*'?)+""")


class HelpRequested(Exception):
    """``-h``/``--help`` among a magic's options: the magic prints ``text`` and stops."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Token:
    raw: str
    start: int
    end: int

    @property
    def value(self) -> str:
        return unquote(self.raw)


def tokens(line: str) -> list[Token]:
    """Raw tokens of ``line`` with their positions (quotes kept)."""
    return [Token(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(line)]


def unquote(raw: str) -> str:
    """The shell value of one raw token (``"a b"`` -> ``a b``); bad quoting is a UsageError."""
    try:
        parts = shlex.split(raw)
    except ValueError as exc:
        raise UsageError(f"Cannot read {raw!r}: {exc} (close the quote).") from None
    return " ".join(parts)


def _takes_value(parser: argparse.ArgumentParser) -> Callable[[str], bool | None]:
    """For an option string: True if it takes a value, False if a flag, None if unknown."""
    table: dict[str, bool] = {}
    for action in parser._actions:
        for opt in action.option_strings:
            table[opt] = action.nargs != 0

    def lookup(opt: str) -> bool | None:
        if "=" in opt and opt.startswith("--"):
            return False  # --opt=value carries its own value
        if opt in table:
            return table[opt]
        if not opt.startswith("--") and len(opt) > 2 and opt[:2] in table:
            return False  # -t0.2 style: value attached
        return None

    return lookup


def parse_options(
    parser: argparse.ArgumentParser, line: str, *, stop_at_text: bool = True
) -> tuple[argparse.Namespace, str]:
    """Parse the leading options of ``line``; return them and the verbatim rest.

    Options end at the first token that is not an option (or its value), or at ``--``.
    """
    lookup = _takes_value(parser)
    toks = tokens(line)
    opts: list[str] = []
    rest_start = len(line)
    i = 0
    while i < len(toks):
        tok = toks[i]
        raw = tok.raw
        if raw == "--":
            rest_start = toks[i + 1].start if i + 1 < len(toks) else len(line)
            break
        is_text = not raw.startswith("-") or raw == "-" or _is_number(raw)
        if is_text and stop_at_text:
            rest_start = tok.start
            break
        takes = lookup(raw)
        if takes is None and raw in _HELP:
            raise HelpRequested(parser.format_help())
        if takes is None and raw.startswith("-") and not _is_number(raw):
            raise UsageError(f"Unknown option {raw!r}. {_options_hint(parser)}")
        opts.append(tok.value)
        if takes:
            if i + 1 >= len(toks):
                raise UsageError(f"Option {raw} needs a value. {_options_hint(parser)}")
            opts.append(toks[i + 1].value)
            i += 1
        i += 1
    namespace = _parse(parser, opts)
    return namespace, line[rest_start:].strip() if rest_start < len(line) else ""


def _is_number(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return True


def _parse(parser: argparse.ArgumentParser, args: Sequence[str]) -> argparse.Namespace:
    try:
        return parser.parse_args(list(args))
    except UsageError:
        raise
    except SystemExit as exc:  # argparse exits on --help or on its own errors
        raise UsageError(f"Bad arguments. {_options_hint(parser)}") from exc
    except argparse.ArgumentError as exc:
        raise UsageError(f"{exc}. {_options_hint(parser)}") from None


def _options_hint(parser: argparse.ArgumentParser) -> str:
    return f"See {parser.prog}? for the options."


def parse_all(parser: argparse.ArgumentParser, line: str) -> argparse.Namespace:
    """Parse a whole line (options and positionals) with shell quoting."""
    toks = tokens(line)
    if any(t.raw in _HELP for t in toks):
        raise HelpRequested(parser.format_help())
    return _parse(parser, [t.value for t in toks])


def first_word(line: str) -> tuple[str, str]:
    """The first raw token of ``line`` and the verbatim rest."""
    toks = tokens(line)
    if not toks:
        return "", ""
    return toks[0].raw, line[toks[0].end :].strip()


_IPYTHON_NAME = re.compile(r"_+|_i+|_i?\d+|_[ido]h")


def check_output_name(name: str, hidden: Collection[str] = ()) -> str:
    """``name`` if ``-o NAME`` may bind it, else a one-line UsageError.

    A valid identifier that is not a keyword, a builtin, or one of IPython's own names
    (``get_ipython``, ``In``, ``Out``, ``exit``, ``_``, ``_ih``, ``_i3``, ``_5``, ... and
    whatever the shell keeps hidden in ``hidden``).
    """
    import builtins
    import keyword

    if not name.isidentifier() or keyword.iskeyword(name):
        raise UsageError(f"-o {name!r}: give a Python variable name, e.g. -o result.")
    if (
        name in _SHELL_NAMES
        or name in hidden
        or _IPYTHON_NAME.fullmatch(name)
        or hasattr(builtins, name)
    ):
        raise UsageError(
            f"-o {name}: that name belongs to Python or IPython; choose another, e.g. -o result."
        )
    return name


_SHELL_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})
