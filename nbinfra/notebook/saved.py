"""Saved and composed queries: ``%%conn NAME --save recent`` and ``%conn saved``.

A saved query is one SELECT kept under a name, per connection. A later query on that
connection that reads ``recent`` as a table runs as ``WITH recent AS (...) <query>``:
references are found with sqlglot's parser in the connection's dialect, so ``recent`` in
a string literal, a comment, a qualified name (``s.recent``) or the query's own CTE is
not one. The CTE's name is quoted in the dialect (``cte_name``), so a keyword works too.
Saved queries may read other saved ones; they are composed in dependency order, and a
cycle is a one-line error. A saved name read by a query shadows a table of that name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from IPython.core.error import UsageError

__all__ = ["SavedQueries"]

SQLGLOT_HINT = "pip install 'nbinfra[sql]'"
_LEADING = re.compile(r"(?:\s+|--[^\n]*\n?|/\*.*?\*/)*", re.DOTALL)
_WITH = re.compile(r"with\s+(recursive\s+)?", re.IGNORECASE)


def _sqlglot() -> tuple[Any, Any]:
    try:
        import sqlglot
        from sqlglot import exp
    except ImportError as exc:
        from nbinfra.errors import MissingDependencyError

        raise MissingDependencyError(
            f"Saved queries read SQL with sqlglot, which is not installed: {SQLGLOT_HINT}",
            hint=SQLGLOT_HINT,
        ) from exc
    return sqlglot, exp


def _tree(sql: str, dialect: str | None) -> Any:
    """sqlglot's tree of one statement, or None where it cannot read it."""
    sqlglot, _exp = _sqlglot()
    try:
        return sqlglot.parse_one(sql, read=dialect)
    except Exception:  # noqa: BLE001 - unreadable here: the engine reports it when it runs
        return None


def is_query(sql: str, dialect: str | None) -> bool:
    _sqlglot_mod, exp = _sqlglot()
    tree = _tree(sql, dialect)
    return isinstance(tree, exp.Query)


def references(sql: str, dialect: str | None, names: set[str]) -> list[str]:
    """The names among ``names`` (lower case) that ``sql`` reads as unqualified tables,
    other than its own CTEs, in order of appearance."""
    _sqlglot_mod, exp = _sqlglot()
    tree = _tree(sql, dialect)
    if tree is None:
        return []
    own = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found: list[str] = []
    for table in tree.find_all(exp.Table):
        name = table.name.lower() if isinstance(table.this, exp.Identifier) else ""
        if name in names and name not in own and not table.db and name not in found:
            found.append(name)
    return found


@dataclass
class Saved:
    name: str
    connection: str
    query: str


@dataclass
class SavedQueries:
    """The saved queries of a notebook: connection -> lower-case name -> ``Saved``."""

    by_connection: dict[str, dict[str, Saved]] = field(default_factory=dict)

    def save(self, connection: str, name: str, statements: list[str], dialect: str | None) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise UsageError(f"--save {name!r}: a saved query's name is a plain identifier.")
        if len(statements) != 1 or not is_query(statements[0], dialect):
            raise UsageError(f"--save {name}: the cell must hold one SELECT query.")
        query = statements[0].strip().rstrip(";").strip()
        saved = self.by_connection.setdefault(connection, {})
        previous = saved.get(name.lower())
        saved[name.lower()] = Saved(name, connection, query)
        try:
            self._order(connection, [name.lower()], dialect)
        except UsageError:
            if previous is None:
                del saved[name.lower()]
            else:
                saved[name.lower()] = previous
            raise

    def delete(self, name: str) -> int:
        """Forget ``name`` on every connection; how many were deleted."""
        count = 0
        for saved in self.by_connection.values():
            count += saved.pop(name.lower(), None) is not None
        return count

    def rows(self) -> list[tuple[str, str, str]]:
        out = []
        for connection, saved in sorted(self.by_connection.items()):
            for item in sorted(saved.values(), key=lambda s: s.name.lower()):
                head = " ".join(item.query.split())
                out.append((item.name, connection, head if len(head) <= 60 else head[:57] + "..."))
        return out

    def _order(self, connection: str, roots: list[str], dialect: str | None) -> list[Saved]:
        """The saved queries ``roots`` need, dependencies first; a cycle is a UsageError."""
        saved = self.by_connection.get(connection, {})
        names = set(saved)
        order: list[Saved] = []
        state: dict[str, str] = {}  # name -> "open" | "done"

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "open":
                cycle = [saved[n].name for n in [*path[path.index(name) :], name]]
                raise UsageError(
                    f"Saved queries form a cycle: {' -> '.join(cycle)}; "
                    "re-save one of them without the reference."
                )
            state[name] = "open"
            for ref in references(saved[name].query, dialect, names):
                visit(ref, [*path, name])
            state[name] = "done"
            order.append(saved[name])

        for root in roots:
            visit(root, [])
        return order

    def compose(self, connection: str, statements: list[str], dialect: str | None) -> list[str]:
        """``statements`` with the saved queries each reads prepended as CTEs."""
        saved = self.by_connection.get(connection)
        if not saved:
            return statements
        out = []
        for statement in statements:
            refs = (
                references(statement, dialect, set(saved)) if is_query(statement, dialect) else []
            )
            if not refs:
                out.append(statement)
                continue
            needed = self._order(connection, refs, dialect)
            ctes = ", ".join(f"{cte_name(s.name, dialect)} AS ({s.query})" for s in needed)
            out.append(_with(statement, ctes))
        return out


def cte_name(name: str, dialect: str | None) -> str:
    """``name`` quoted in ``dialect``, in the case the engine folds an unquoted name to
    (lower for PostgreSQL and DuckDB, upper for Snowflake), so a query that reads it
    unquoted finds it and a keyword (``order``) is a name too."""
    sqlglot, exp = _sqlglot()
    target = sqlglot.Dialect.get_or_raise(dialect)
    folded = target.normalize_identifier(exp.to_identifier(name))
    return str(exp.to_identifier(folded.name, quoted=True).sql(dialect=target))


def _with(statement: str, ctes: str) -> str:
    """``WITH <ctes> <statement>``, merged into the statement's own WITH if it has one."""
    start = _LEADING.match(statement)
    pos = start.end() if start else 0
    own = _WITH.match(statement, pos)
    if own is None:
        return f"WITH {ctes} {statement[pos:]}"
    recursive = "RECURSIVE " if own.group(1) else ""
    return f"WITH {recursive}{ctes}, {statement[own.end() :]}"
