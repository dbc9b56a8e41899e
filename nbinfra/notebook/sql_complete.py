"""Tab completion inside a ``%%conn`` cell: table and column names from the engine.

The catalogue of the cell's connection (tables of the current schema and their columns)
is read with one query the kind's SQL dialect gives (``ProfileSQL.catalog_sql``), cached
per connection, and read again after a cell ran DDL (``CREATE``, ``DROP``, ``ALTER``...).
A connection that is not open yet is not opened by a Tab (no server starts on a key
press), and a catalogue that cannot be read gives no candidates, never a traceback.

After ``FROM``/``JOIN``/``INTO``/``UPDATE``/``TABLE`` the candidates are tables; after
``t.`` the columns of ``t``; elsewhere the columns of the tables the cell names (of every
table while it names none), then the tables.
"""

from __future__ import annotations

import re
import time
from typing import Any

from nbinfra.logs import get_logger

__all__ = ["CatalogCache", "complete_cell", "is_ddl"]

log = get_logger(__name__)

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_0-9]*)?$|[A-Za-z_0-9]*\.$")
_KEYWORD_BEFORE = re.compile(r"(\w+)\s*$")
_TABLE_CONTEXT = frozenset({"from", "join", "into", "update", "table", "describe"})
_DDL = re.compile(r"^\s*(create|drop|alter|rename|attach|detach|truncate)\b", re.IGNORECASE)
_TTL = 60.0  # seconds: a catalogue changed by another session is seen within this


def is_ddl(statement: str) -> bool:
    """True when ``statement`` may change the catalogue (its first word says so)."""
    return _DDL.match(statement) is not None


class CatalogCache:
    """Per connection name: ``{table: [columns]}`` and when it was read."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, dict[str, list[str]]]] = {}

    def invalidate(self, name: str | None = None) -> None:
        if name is None:
            self._entries.clear()
        else:
            self._entries.pop(name, None)

    def get(self, conn: Any) -> dict[str, list[str]]:
        entry = self._entries.get(conn.name)
        if entry is not None and time.monotonic() - entry[0] < _TTL:
            return entry[1]
        tables = _read_catalog(conn)
        self._entries[conn.name] = (time.monotonic(), tables)
        return tables


def _read_catalog(conn: Any) -> dict[str, list[str]]:
    manager = conn.manager
    if not manager.speaks_sql or not manager.connected:
        return {}
    query = manager.profile_sql().catalog_sql()
    if query is None:
        return {}
    tables: dict[str, list[str]] = {}
    for table, column in conn.sql(query).rows:
        tables.setdefault(str(table), []).append(str(column))
    return tables


def complete_cell(magics: Any, full_text: str, line: str) -> tuple[str, list[tuple[str, str]]]:
    """The fragment being typed at the end of ``line`` (the cell's line up to the cursor)
    and its candidates ``(text, "table" | "column")`` for the ``%%conn`` cell ``full_text``."""
    found = _WORD.search(line)
    word = found.group(0) if found else ""
    if not word and line and not line[-1].isspace():
        return "", []
    conn = _cell_connection(magics, full_text.split("\n", 1)[0])
    if conn is None:
        return word, []
    tables = magics.state.catalog.get(conn)
    if not tables:
        return word, []
    folded = {t.lower(): t for t in tables}
    if "." in word:
        owner, _, fragment = word.rpartition(".")
        columns = tables.get(folded.get(owner.lower(), owner), [])
        return fragment, _starting(fragment, [(c, "column") for c in columns])
    before = _KEYWORD_BEFORE.search(line[: len(line) - len(word)])
    if before is not None and before.group(1).lower() in _TABLE_CONTEXT:
        return word, _starting(word, [(t, "table") for t in tables])
    named = {w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", full_text)}
    cited = [t for t in tables if t.lower() in named] or list(tables)  # none named yet: all
    candidates = [(c, "column") for t in cited for c in tables[t]]
    candidates += [(t, "table") for t in tables]
    return word, _starting(word, candidates)


def _starting(fragment: str, candidates: list[tuple[str, str]]) -> list[tuple[str, str]]:
    low = fragment.lower()
    seen: set[str] = set()
    out = []
    for text, kind in candidates:
        if text.lower().startswith(low) and text not in seen:
            seen.add(text)
            out.append((text, kind))
    return out


def _cell_connection(magics: Any, first_line: str) -> Any:
    """The open connection the cell's first line names (or the default one), or None."""
    from nbinfra.notebook import conn_magic

    try:
        parsed = conn_magic.parse(first_line.lstrip().removeprefix("%%conn").strip(), "-")
    except Exception:  # noqa: BLE001 - a half-typed line completes nothing
        return None
    if parsed.command is not None:
        return None
    name = parsed.name or conn_magic.default_name(magics)
    try:
        from nbinfra.connections import conn

        return conn(name)  # a handle only: nothing is opened here
    except Exception as exc:  # noqa: BLE001 - completion is best effort
        log.debug("no connection for completion of %r: %r", name, exc)
        return None
