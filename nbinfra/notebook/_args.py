"""Splitting a magic's line into options and free text, without mangling the text.

A prompt or a query after the options is taken verbatim from the line (apostrophes,
braces and quotes untouched); only the option tokens are unquoted (shell rules) and go
through the magic's ``argparse`` parser, whose errors raise ``UsageError``. Every step is
one pass over the line: parsing time grows linearly with its length.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from itertools import islice
from typing import NamedTuple, NoReturn

from IPython.core.error import UsageError

__all__ = [
    "HelpRequested",
    "Token",
    "check_output_name",
    "first_word",
    "iter_tokens",
    "parse_all",
    "parse_options",
    "short",
    "tokens",
    "unquote",
]

_HELP = frozenset({"-h", "--help"})

# A token is a run of non-space characters where quoted parts (and a backslash-escaped
# character) may be spaces. Each alternative starts with a different character, so the
# pattern never backtracks.
_TOKEN = re.compile(r"""(?:[^\s"'\\]+|\\.?|"[^"\\]*(?:\\.[^"\\]*)*"?|'[^']*'?)+""", re.DOTALL)
_WORD_START = re.compile(r"\S")
# The pieces of one token, for unquoting: plain text, a backslash escape, '...', "...".
_PIECE = re.compile(r"""[^"'\\]+|\\(.?)|'([^']*)('?)|"([^"\\]*(?:\\.[^"\\]*)*)("?)""", re.DOTALL)
_ESCAPED_IN_DOUBLE = re.compile(r'\\(["\\])')


class HelpRequested(Exception):
    """``-h``/``--help`` among a magic's options: the magic prints ``text`` and stops."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class Token(NamedTuple):
    raw: str
    start: int
    end: int

    @property
    def value(self) -> str:
        return unquote(self.raw)


def iter_tokens(line: str) -> Iterator[Token]:
    """Raw tokens of ``line`` with their positions (quotes kept), one at a time."""
    for m in _TOKEN.finditer(line):
        yield Token(m.group(0), m.start(), m.end())


def tokens(line: str, limit: int | None = None) -> list[Token]:
    """Raw tokens of ``line`` (the first ``limit`` of them) with their positions."""
    return list(islice(iter_tokens(line), limit))


def unquote(raw: str) -> str:
    """The shell value of one raw token (``"a b"`` -> ``a b``); bad quoting is a UsageError.

    POSIX shell rules, as ``shlex.split`` reads them, in one pass: a backslash escapes
    the next character; ``'...'`` is literal; in ``"..."`` only ``\\"`` and ``\\\\`` are
    escapes.
    """
    if "'" not in raw and '"' not in raw and "\\" not in raw:
        return raw
    out: list[str] = []
    for m in _PIECE.finditer(raw):
        text = m.group(0)
        if text[0] == "\\":
            if not m.group(1):
                _bad_quoting(raw, "No escaped character")
            out.append(m.group(1))
        elif text[0] == "'":
            if not m.group(3):
                _bad_quoting(raw, "No closing quotation")
            out.append(m.group(2))
        elif text[0] == '"':
            if not m.group(5):
                _bad_quoting(raw, "No closing quotation")
            out.append(_ESCAPED_IN_DOUBLE.sub(r"\1", m.group(4)))
        else:
            out.append(text)
    return "".join(out)


def _bad_quoting(raw: str, problem: str) -> NoReturn:
    raise UsageError(f"Cannot read {short(raw)!r}: {problem} (close the quote).")


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


def parse_options(parser: argparse.ArgumentParser, line: str) -> tuple[argparse.Namespace, str]:
    """Parse the leading options of ``line``; return them and the verbatim rest.

    Options end at the first word that is not an option (or its value), or at ``--``;
    the rest of the line is not split into words at all.
    """
    lookup = _takes_value(parser)
    opts: list[str] = []
    rest_start = len(line)
    pos = 0
    while (found := _WORD_START.search(line, pos)) is not None:
        if line[found.start()] != "-":  # text: the rest is not tokenized at all
            rest_start = found.start()
            break
        tok = _token_at(line, found.start())
        raw, pos = tok.raw, tok.end
        if raw == "--":
            after = _WORD_START.search(line, pos)
            rest_start = after.start() if after is not None else len(line)
            break
        if raw == "-" or _is_number(raw):
            rest_start = tok.start
            break
        takes = lookup(raw)
        if takes is None and raw in _HELP:
            raise HelpRequested(parser.format_help())
        if takes is None:
            raise UsageError(f"Unknown option {short(raw)!r}. {_options_hint(parser)}")
        opts.append(tok.value)
        if takes:
            value = _WORD_START.search(line, pos)
            if value is None:
                raise UsageError(f"Option {raw} needs a value. {_options_hint(parser)}")
            tok = _token_at(line, value.start())
            opts.append(tok.value)
            pos = tok.end
    namespace = _parse(parser, opts)
    return namespace, line[rest_start:].strip() if rest_start < len(line) else ""


def _token_at(line: str, start: int) -> Token:
    m = _TOKEN.match(line, start)
    assert m is not None  # a non-space character always starts a token
    return Token(m.group(0), m.start(), m.end())


def short(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters for an error message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


def parse_all(parser: argparse.ArgumentParser, line: str, *, most: int = 16) -> argparse.Namespace:
    """Parse a whole line (options and positionals) with shell quoting.

    More than ``most`` words is a UsageError before any is unquoted or parsed.
    """
    toks = tokens(line, most + 1)
    if len(toks) > most:
        raise UsageError(f"Too many words on the line. {_options_hint(parser)}")
    if any(t.raw in _HELP for t in toks):
        raise HelpRequested(parser.format_help())
    return _parse(parser, [t.value for t in toks])


def first_word(line: str) -> tuple[str, str]:
    """The first raw token of ``line`` and the verbatim rest."""
    first = next(iter_tokens(line), None)
    if first is None:
        return "", ""
    return first.raw, line[first.end :].strip()


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
        raise UsageError(f"-o {short(name)!r}: give a Python variable name, e.g. -o result.")
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
