"""SQL text handling shared by the SQL backends: placeholders and statement splitting.

Parameters are always *bound* by the driver, never pasted into the text. Users may write
``:name`` (as in SQLAlchemy/JupySQL) or ``%(name)s`` (DB-API pyformat); this module rewrites
the placeholders into the style each driver expects. The rewrite only touches code: string
literals (``'...'``, ``E'...'``, ``$tag$...$tag$``), quoted identifiers, comments and casts
(``x::int``) are left alone.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from nbinfra.errors import QueryError

__all__ = [
    "controls_transaction",
    "placeholders",
    "segments",
    "split_statements",
    "to_dollar",
    "to_pyformat",
    "transaction_effect",
]

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_SPECIAL = re.compile(r"['\"$]|--|/\*")
_COLON = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")
_PYFORMAT = re.compile(r"%\(([^)]+)\)s|%s|%%")


def segments(sql: str) -> Iterator[tuple[bool, str]]:
    """Split ``sql`` into ``(is_code, text)`` pieces; non-code is literals and comments."""
    i, n, start = 0, len(sql), 0
    while i < n:
        special = _SPECIAL.search(sql, i)  # jump over plain code in one step
        if special is None:
            break
        i = special.start()
        ch = sql[i]
        end = -1
        if ch == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not sql[i - 2].isalnum())
            end = _quoted_end(sql, i, "'", backslash=escapes)
        elif ch == '"':
            end = _quoted_end(sql, i, '"', backslash=False)
        elif ch == "-" and sql.startswith("--", i):
            newline = sql.find("\n", i)
            end = n if newline < 0 else newline
        elif ch == "/" and sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            end = n if close < 0 else close + 2
        elif ch == "$":
            match = _DOLLAR_TAG.match(sql, i)
            if match and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                close = sql.find(match.group(0), match.end())
                end = n if close < 0 else close + len(match.group(0))
        if end < 0:
            i += 1
            continue
        if start < i:
            yield True, sql[start:i]
        yield False, sql[i:end]
        i = start = end
    if start < n:
        yield True, sql[start:]


def _quoted_end(sql: str, i: int, quote: str, *, backslash: bool) -> int:
    j, n = i + 1, len(sql)
    while j < n:
        c = sql[j]
        if backslash and c == "\\":
            j += 2
            continue
        if c == quote:
            if j + 1 < n and sql[j + 1] == quote:  # doubled quote is an escaped quote
                j += 2
                continue
            return j + 1
        j += 1
    return n  # unterminated: the server reports it


def placeholders(sql: str, style: str = ":name") -> list[str]:
    """Names of the named placeholders in code, in order of appearance.

    ``style`` is a bind style: the marker before ``name`` (``":name"``, ``"@name"``,
    ``"$name"``); a doubled marker (``x::int``) is not a placeholder.
    """
    pattern = _COLON if style == ":name" else _named(style)
    return [m.group(1) for code, text in segments(sql) if code for m in pattern.finditer(text)]


@functools.lru_cache(maxsize=16)
def _named(style: str) -> re.Pattern[str]:
    marker = style.removesuffix("name")
    if len(marker) != 1 or marker.isalnum() or marker == "_" or style == marker:
        raise ValueError(f"A bind style is one mark and 'name' (':name', '@name'), not {style!r}")
    m = re.escape(marker)
    return re.compile(rf"(?<![{m}\w]){m}([A-Za-z_][A-Za-z0-9_]*)")


def _uses_pyformat(sql: str) -> bool:
    return any(code and re.search(r"%\(|%s", text) for code, text in segments(sql))


def to_pyformat(sql: str, params: Any) -> tuple[str, Any]:
    """``sql``/``params`` for psycopg: ``:name`` becomes ``%(name)s`` and ``%`` is escaped."""
    if params is None or not isinstance(params, Mapping):
        return sql, params
    if _uses_pyformat(sql):
        return sql, params
    names = placeholders(sql)
    if not names:
        return sql, params
    _check_names(names, params)
    out = []
    for code, text in segments(sql):
        text = text.replace("%", "%%")  # psycopg parses '%' everywhere, literals included
        if code:
            text = _COLON.sub(lambda m: f"%({m.group(1)})s", text)
        out.append(text)
    return "".join(out), params


def to_dollar(sql: str, params: Any) -> tuple[str, Any]:
    """``sql``/``params`` for DuckDB: ``:name`` and ``%(name)s`` become ``$name``, ``%s`` ``?``."""
    if params is None:
        return sql, params
    if isinstance(params, Mapping):
        out = []
        names: list[str] = []
        pyformat = _uses_pyformat(sql)
        for code, text in segments(sql):
            if code and pyformat:
                text = _PYFORMAT.sub(lambda m: _dollar_of(m, names), text)
            elif code:
                text = _COLON.sub(lambda m: _dollar_of(m, names), text)
            out.append(text)
        _check_names(names, params)
        used = set(names)
        # DuckDB refuses named parameters the statement does not use.
        return "".join(out), {k: v for k, v in params.items() if k in used}
    if isinstance(params, Sequence) and not isinstance(params, (str, bytes)):
        if _uses_pyformat(sql):
            text = "".join(
                _PYFORMAT.sub(lambda m: "?" if m.group(0) == "%s" else "%", t) if code else t
                for code, t in segments(sql)
            )
            return text, list(params)
        return sql, list(params)
    raise QueryError(
        f"Query parameters must be a mapping or a sequence, not {type(params).__name__}."
    )


def _dollar_of(match: re.Match[str], names: list[str]) -> str:
    """``$name`` for a ``:name`` or ``%(name)s`` match (noting the name); ``%%`` -> ``%``."""
    if match.group(0) == "%%":
        return "%"
    if match.group(0) == "%s":
        raise QueryError("Use named placeholders (:name or %(name)s) with a mapping of params.")
    names.append(match.group(1))
    return f"${match.group(1)}"


def _check_names(names: list[str], params: Mapping[str, Any]) -> None:
    missing = sorted({n for n in names if n not in params})
    if missing:
        given = ", ".join(sorted(map(str, params))) or "none"
        raise QueryError(
            f"The query uses parameter(s) {', '.join(missing)} that were not given "
            f"(given: {given})."
        )


def split_statements(sql: str) -> list[str]:
    """The statements of a script, split on ``;`` outside literals and comments."""
    statements: list[str] = []
    current: list[str] = []
    for code, text in segments(sql):
        if not code:
            current.append(text)
            continue
        parts = text.split(";")
        for index, part in enumerate(parts):
            current.append(part)
            if index < len(parts) - 1:
                statements.append("".join(current))
                current = []
    statements.append("".join(current))
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    return any(
        (code and text.strip()) or (not code and not text.startswith(("--", "/*")))
        for code, text in segments(statement)
    )


_OPENS = frozenset({"begin"})
_ENDS = frozenset({"abort", "commit", "end", "rollback"})


def transaction_effect(statement: str) -> bool | None:
    """True when ``statement`` opens a transaction, False when it ends one, else None.

    Covers the PostgreSQL and DuckDB spellings (``BEGIN``, ``START TRANSACTION``,
    ``COMMIT``, ``END``, ``ROLLBACK``, ``ABORT``, ``PREPARE TRANSACTION``).
    """
    words = " ".join(text for code, text in segments(statement) if code).lower().split()
    if not words:
        return None
    if words[0] in _OPENS or words[:2] == ["start", "transaction"]:
        return True
    if words[0] in _ENDS or words[:2] == ["prepare", "transaction"]:
        return False
    return None


def controls_transaction(statements: Sequence[str]) -> bool:
    """Whether a script manages its own transaction (see ``transaction_effect``).

    A script that does not is run as one transaction by the SQL backends.
    """
    return any(transaction_effect(statement) is not None for statement in statements)
