"""What a connection kind says of its cells: the capabilities ``%%conn`` reads.

Read from the class the registry gives for a kind (never from a list of kinds): whether
it speaks SQL, how a cell splits into statements, the bind style, whether DataFrames are
read by name, and whether it takes an inline ``kind:target``. ``ConnectionManager``
inherits these; a kind overrides what differs.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["CellSyntax"]


class CellSyntax:
    """The cell-facing capabilities of a connection kind, with the defaults of a non-SQL one."""

    # What ``%%conn`` does with a cell, read from the class the registry gives for a kind:
    # a kind that speaks SQL has its cell split by ``split_script`` and its named binds
    # (``bind_style``: ``":name"``, ``"@name"``...) filled from the notebook's variables.
    speaks_sql: ClassVar[bool] = False
    bind_style: ClassVar[str] = ":name"
    # ``sql(..., frames=)`` (and ``execute_script``, if any) reads DataFrames by name; see
    # frames.py for what ``%%conn`` passes.
    frames_by_name: ClassVar[bool] = False

    @classmethod
    def split_script(cls, script: str) -> list[str]:
        """The statements of ``script``, each run on its own (one unless SQL)."""
        if not cls.speaks_sql:
            text = script.strip()
            return [text] if text else []
        from nbinfra.connections.sqltext import split_statements

        return split_statements(script)

    @classmethod
    def bind_names(cls, statement: str) -> list[str]:
        """The names ``statement`` binds in this kind's ``bind_style`` (none unless SQL)."""
        if not cls.speaks_sql:
            return []
        from nbinfra.connections.sqltext import placeholders

        return list(dict.fromkeys(placeholders(statement, cls.bind_style)))

    def table_names(self, statement: str) -> list[str]:
        """The unqualified names ``statement`` reads as tables, per the engine's own parser
        (no CTE names, nothing in literals or comments); none unless ``frames_by_name``."""
        return []

    @classmethod
    def inline_settings(cls, target: str) -> dict[str, Any] | None:
        """The settings for ``kind:target`` written inline (``%%conn sql:sqlite:///f.db``,
        ``nbinfra.conn("sql:...")``), or None when this kind takes no inline target."""
        return None

    def statements(self, script: str) -> list[str]:
        """``split_script`` for this connection; a kind whose dialect depends on its
        settings (``sql``: the URL's) overrides it. ``%%conn`` calls this one."""
        return self.split_script(script)

    def binds(self, statement: str) -> list[str]:
        """``bind_names`` for this connection (see ``statements``)."""
        return self.bind_names(statement)
