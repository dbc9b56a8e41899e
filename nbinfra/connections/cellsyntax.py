"""What a connection kind says of its cells: the capabilities ``%%conn`` reads.

Read from the class the registry gives for a kind (never from a list of kinds): whether
it speaks SQL, how a cell splits into statements, the bind style, whether DataFrames are
read by name, and whether it takes an inline ``kind:target``. ``ConnectionManager``
inherits these; a kind overrides what differs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from nbinfra.connections.plotsql import PlotSQL
    from nbinfra.connections.profile import ProfileSQL

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
    # The sqlglot name of the SQL dialect the kind speaks (``duckdb``, ``postgres``...): the
    # rules the SQL nbinfra writes for it (profiles, plots) follows; None: standard SQL.
    dialect_name: ClassVar[str | None] = None

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

    def sql_dialect(self) -> str | None:
        """``dialect_name`` for this connection; the ``sql`` kind's is its URL's."""
        return self.dialect_name

    def profile_sql(self) -> ProfileSQL:
        """The SQL that profiles a table on this connection (see connections/profile.py)."""
        from nbinfra.connections.profile import ProfileSQL

        if not self.speaks_sql:
            from nbinfra.errors import QueryError

            raise QueryError("This connection does not speak SQL: no table to profile.")
        return ProfileSQL(self.sql_dialect())

    def plot_sql(self) -> PlotSQL:
        """The SQL of plots computed on this connection (see connections/plotsql.py)."""
        from nbinfra.connections.plotsql import PlotSQL

        if not self.speaks_sql:
            from nbinfra.errors import QueryError

            raise QueryError("This connection does not speak SQL: --plot needs a SQL query.")
        return PlotSQL(self.sql_dialect())
