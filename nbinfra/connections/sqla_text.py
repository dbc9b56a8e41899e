"""SQL text for the ``sql`` kind, read with the engine's own dialect rules (sqlglot).

A cell for MySQL may hold ``'it\\'s; here'`` (a backslash escape), one for PostgreSQL
``$$ ... ; ... $$``, one for SQL Server ``[odd;name]``: splitting on ``;`` or finding
``:name`` binds must follow the dialect of the URL. ``DialectText`` tokenizes with the
sqlglot dialect mapped from the SQLAlchemy backend name (``mysql`` -> ``mysql``,
``postgresql`` -> ``postgres``, ``mssql`` -> ``tsql``...) and keeps the user's text as
written: statements are slices of it, never regenerated SQL.

``for_text`` prepares a statement for SQLAlchemy's ``text()``: every ``:`` that is not one
of the binds found here is escaped (``\\:``), so a colon inside a literal, a comment or a
cast never becomes a bound parameter, and every bind found here does.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from typing import Any

from nbinfra.connections import sqltext

__all__ = ["DIALECTS", "DialectText", "backend_of", "dialect_text"]

# SQLAlchemy backend name (the URL scheme before "+driver") -> sqlglot dialect.
DIALECTS = {
    "awsathena": "athena",
    "bigquery": "bigquery",
    "clickhouse": "clickhouse",
    "cockroachdb": "postgres",
    "databricks": "databricks",
    "doris": "doris",
    "drill": "drill",
    "duckdb": "duckdb",
    "exasol": "exasol",
    "hive": "hive",
    "mariadb": "mysql",
    "materialize": "materialize",
    "mssql": "tsql",
    "mysql": "mysql",
    "oracle": "oracle",
    "postgres": "postgres",
    "postgresql": "postgres",
    "presto": "presto",
    "redshift": "redshift",
    "risingwave": "risingwave",
    "singlestoredb": "singlestore",
    "snowflake": "snowflake",
    "spark": "spark",
    "sqlite": "sqlite",
    "starrocks": "starrocks",
    "teradatasql": "teradata",
    "trino": "trino",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_WORD_END = re.compile(r"\w\Z")


def backend_of(url: str) -> str:
    """The backend name of a SQLAlchemy URL (``mysql+pymysql://`` -> ``mysql``), lower case."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        scheme = url.partition(":")[0]
    return scheme.split("+", 1)[0].strip().lower()


class DialectText:
    """Statements, literals and ``:name`` binds of SQL text in one sqlglot dialect.

    ``dialect`` None reads standard SQL. Text the tokenizer refuses (an unterminated
    literal) falls back to ``sqltext``'s generic rules; the server then reports it.
    """

    def __init__(self, dialect: str | None) -> None:
        self.dialect = dialect
        self._lock = threading.Lock()
        self._tokenizer: Any = None

    def _tokens(self, sql: str) -> list[Any] | None:
        from sqlglot.errors import TokenError

        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = _tokenizer_for(self.dialect)
            try:
                return list(self._tokenizer.tokenize(sql))
            except TokenError:
                return None

    # -- statements ---------------------------------------------------------------------
    def statements(self, script: str) -> list[str]:
        """The statements of ``script``, split on ``;`` tokens (not in literals/comments)."""
        tokens = self._tokens(script)
        if tokens is None:
            return sqltext.split_statements(script)
        from sqlglot.tokenizer_core import TokenType

        out: list[str] = []
        start, has_code = 0, False
        for token in tokens:
            if token.token_type == TokenType.SEMICOLON:
                if has_code:
                    out.append(script[start : token.start].strip())
                start, has_code = token.end + 1, False
            else:
                has_code = True
        if has_code:
            out.append(script[start:].strip())
        return out

    # -- literals, comments and binds ---------------------------------------------------
    def segments(self, sql: str) -> Iterator[tuple[bool, str]]:
        """``(is_code, text)`` pieces; not code: literals, quoted identifiers, comments."""
        tokens = self._tokens(sql)
        if tokens is None:
            yield from sqltext.segments(sql)
            return
        literal = _literal_types()
        pos = 0
        for token in tokens:
            if token.start > pos:
                gap = sql[pos : token.start]
                yield (not gap.strip()), gap  # whitespace is code; anything else a comment
            yield token.token_type not in literal, sql[token.start : token.end + 1]
            pos = token.end + 1
        if pos < len(sql):
            gap = sql[pos:]
            yield (not gap.strip()), gap

    def bind_spans(self, sql: str) -> list[tuple[int, str]]:
        """``(offset of the colon, name)`` for each ``:name`` bind in code."""
        tokens = self._tokens(sql)
        if tokens is None:
            found, pos = [], 0
            for code, text in sqltext.segments(sql):
                if code:
                    found += [(pos + m.start(), m.group(1)) for m in sqltext._COLON.finditer(text)]
                pos += len(text)
            return found
        from sqlglot.tokenizer_core import TokenType

        spans: list[tuple[int, str]] = []
        for i, token in enumerate(tokens):
            if token.token_type != TokenType.COLON or i + 1 >= len(tokens):
                continue
            nxt = tokens[i + 1]
            name = sql[nxt.start : nxt.end + 1]
            if nxt.start != token.end + 1 or not _NAME.match(name):
                continue
            if i > 0 and tokens[i - 1].end == token.start - 1:
                before = sql[tokens[i - 1].start : token.start]
                if before.endswith(":") or _WORD_END.search(before):
                    continue  # x::int, or a path such as Snowflake's v:field
            spans.append((token.start, name))
        return spans

    def binds(self, sql: str) -> list[str]:
        """Names of the ``:name`` binds, in order, each once."""
        return list(dict.fromkeys(name for _, name in self.bind_spans(sql)))

    def for_text(self, sql: str) -> str:
        """``sql`` for SQLAlchemy ``text()``: only the binds found here stay ``:name``."""
        if ":" not in sql:
            return sql
        keep = {offset for offset, _ in self.bind_spans(sql)}
        out, pos = [], 0
        for match in re.finditer(":", sql):
            i = match.start()
            out.append(sql[pos:i] + (":" if i in keep else "\\:"))
            pos = i + 1
        out.append(sql[pos:])
        return "".join(out)


@functools.lru_cache(maxsize=32)
def dialect_text(dialect: str | None) -> DialectText:
    """The shared ``DialectText`` for a sqlglot dialect name (None: standard SQL)."""
    return DialectText(dialect)


def _tokenizer_for(dialect: str | None) -> Any:
    """A tokenizer of ``dialect`` that reads every statement as tokens: sqlglot reads the
    rest of some "commands" (``SHOW ...``) as one string, which would hide its binds."""
    from sqlglot.dialects.dialect import Dialect

    base = Dialect.get_or_raise(dialect).tokenizer_class
    plain = type(f"Plain{base.__name__}", (base,), {"COMMANDS": set()})
    return plain(dialect=dialect)


@functools.lru_cache(maxsize=1)
def _literal_types() -> frozenset[Any]:
    from sqlglot.tokenizer_core import TokenType

    names = (
        "STRING",
        "NATIONAL_STRING",
        "RAW_STRING",
        "NATIONAL_RAW_STRING",
        "HEREDOC_STRING",
        "BIT_STRING",
        "HEX_STRING",
        "BYTE_STRING",
        "UNICODE_STRING",
        "IDENTIFIER",
    )
    return frozenset(getattr(TokenType, n) for n in names if hasattr(TokenType, n))
