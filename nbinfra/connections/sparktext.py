"""Spark SQL text by Spark's own lexical rules: statements, ``:name`` binds, table names.

Spark SQL is not PostgreSQL: ``"..."`` is a string, backticks quote identifiers, a
backslash escapes inside a literal (``'it\\'s'``) and block comments nest. Statements and
binds are found on the tokens of sqlglot's ``spark`` dialect (positions into the text, so
each statement is the user's own text, verbatim); ``;`` or ``:x`` inside a literal, a quoted
identifier or a comment is left alone. ``x::int`` is a cast and ``v:a.b`` a variant path,
not binds. Text sqlglot cannot tokenize (an unterminated literal) is one statement, and
Spark's parser reports what is wrong with it.

``tables_read(statement)`` is the sqlglot half of ``SparkConnectionManager.table_names``:
the single-part table names a statement reads (CTE names and write targets left out),
used before a session exists and with Spark Connect. With a classic session the JVM's
own parser answers (``jvm_tables_read``).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

__all__ = ["bind_names", "is_name", "jvm_tables_read", "split_script", "tables_read"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A relation on its own line of a parsed plan's tree string: "+- 'UnresolvedRelation [df], ..."
# (a write target is an argument of its statement's line, not a line of its own).
_RELATION = re.compile(r"^[\s:+\-|]*'UnresolvedRelation \[([^\]]*)\]", re.MULTILINE)
_CTE = re.compile(r"^[\s:+\-|]*'?(?:CTE|UnresolvedWith) \[([^\]]*)\]", re.MULTILINE)


def is_name(text: str) -> bool:
    """True for a plain identifier (a temporary view's name needs no quoting)."""
    return bool(_IDENT.fullmatch(text))


def _tokens(sql: str) -> list[Any] | None:
    """sqlglot's Spark tokens of ``sql`` (None when it cannot tokenize it)."""
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import TokenError

    try:
        return list(Dialect.get_or_raise("spark").tokenize(sql))
    except TokenError:
        return None


def split_script(script: str) -> list[str]:
    """The statements of ``script``, split on ``;`` tokens (never inside literals,
    quoted identifiers or comments); a stretch with only comments is no statement."""
    tokens = _tokens(script)
    if tokens is None:
        text = script.strip()
        return [text] if text else []
    from sqlglot import TokenType

    statements: list[str] = []
    start, code = 0, False
    for token in tokens:
        if token.token_type is TokenType.SEMICOLON:
            if code:
                statements.append(script[start : token.start].strip())
            start, code = token.end + 1, False
        else:
            code = True
    if code:
        statements.append(script[start:].strip())
    return statements


def bind_names(statement: str) -> list[str]:
    """The ``:name`` parameter markers of ``statement``, in order, each once."""
    tokens = _tokens(statement)
    if tokens is None:
        from nbinfra.connections.sqltext import placeholders

        return list(dict.fromkeys(placeholders(statement)))
    from sqlglot import TokenType

    quoted = (TokenType.STRING, TokenType.IDENTIFIER)
    names: list[str] = []
    for colon, word in itertools.pairwise(tokens):
        if colon.token_type is not TokenType.COLON or word.token_type in quoted:
            continue
        before = statement[colon.start - 1] if colon.start else " "
        if word.start != colon.end + 1 or before == ":" or before.isalnum() or before == "_":
            continue  # "v:a" is a variant path, "::" a cast
        if _IDENT.fullmatch(word.text):
            names.append(word.text)
    return list(dict.fromkeys(names))


def tables_read(statement: str) -> list[str]:
    """Single-part table names ``statement`` reads, by sqlglot's Spark parser (none when
    it cannot parse it); CTE names and the tables written to are left out."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        trees = [t for t in sqlglot.parse(statement, read="spark") if t is not None]
    except SqlglotError:
        return []
    names: list[str] = []
    for tree in trees:
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        written = {
            id(table)
            for node in tree.find_all(exp.Insert, exp.Create)
            if isinstance(node.this, exp.Expression)
            for table in node.this.find_all(exp.Table)
        }
        for table in tree.find_all(exp.Table):
            if id(table) in written or table.db or table.catalog or not table.name:
                continue
            if table.name not in ctes:
                names.append(table.name)
    return list(dict.fromkeys(names))


def jvm_tables_read(jspark: Any, statement: str) -> list[str] | None:
    """The single-part relations of Spark's own parse of ``statement`` (a classic
    session's JVM parser: ``sessionState().sqlParser().parsePlan``), None when it refuses
    the text. The unresolved plan's tree string lists every relation read, in subqueries
    and CTE definitions too, one per line; the CTEs' own names are left out."""
    try:
        plan = jspark.sessionState().sqlParser().parsePlan(statement)
        text = str(plan.treeString())
    except Exception:  # noqa: BLE001 - a statement Spark cannot parse: it reports it when run
        return None
    ctes = {n.strip().strip("`") for m in _CTE.finditer(text) for n in m.group(1).split(",")}
    names = [m.group(1).strip("`") for m in _RELATION.finditer(text)]
    single = [n for n in names if "," not in n and _IDENT.fullmatch(n) and n not in ctes]
    return list(dict.fromkeys(single))
