"""Column profiles computed in the engine: ``%conn profile NAME TABLE``, ``conn.profile(t)``.

One query reads the table's columns from the engine's catalogue, one aggregate query
computes count, nulls, distinct, min/max and mean/std for every column at once, and one
``UNION ALL`` query the most frequent values of each column: the table itself is never
pulled. The SQL follows the dialect of the connection (``ConnectionManager.sql_dialect()``,
a sqlglot dialect name: ``duckdb``, ``postgres``, ``sqlite``, ``mysql``, ``spark``...):
identifiers are quoted by its rules, so a column named ``select`` or ``my col`` works.

SQLite has no ``STDDEV_SAMP``: its standard deviation takes a second pass,
``SUM((x - mean)^2)`` with each column's mean bound as a parameter.

Pure Python: importing this module imports no driver.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from nbinfra.connections.types import QueryResult

__all__ = ["PROFILE_COLUMNS", "ProfileSQL", "RunsSQL", "profile", "profile_sql_for"]

PROFILE_COLUMNS = [
    "column",
    "type",
    "count",
    "nulls",
    "distinct",
    "min",
    "max",
    "mean",
    "std",
    "top",
]
TOP = 3  # most frequent values shown per column

_NUMERIC = re.compile(r"int|float|double|decimal|numeric|real|number", re.IGNORECASE)
_NOT_NUMERIC = re.compile(r"interval|point|\[|\]|\(.*,.*\)\s*\[|struct|map|array", re.IGNORECASE)
_PART = re.compile(r'"((?:[^"]|"")*)"|`((?:[^`]|``)*)`|([^."`]*)')
_BOOLEAN = re.compile(r"bool", re.IGNORECASE)
# PostgreSQL types without equality/ordering: counted distinct and min/max'ed as text.
_PG_TEXTUAL = re.compile(r"^(json|xml|point|line|lseg|box|path|polygon|circle)\b", re.IGNORECASE)
_BACKTICK_DIALECTS = frozenset({"mysql", "spark", "spark2", "databricks", "hive", "doris"})
_TEXT_TYPES = {
    "duckdb": "VARCHAR",
    "mysql": "CHAR",
    "spark": "STRING",
    "spark2": "STRING",
    "databricks": "STRING",
    "hive": "STRING",
}


def is_numeric(type_name: str) -> bool:
    """Whether a catalogue type name is a number type (mean/std apply)."""
    return bool(_NUMERIC.search(type_name)) and not _NOT_NUMERIC.search(type_name)


class RunsSQL(Protocol):
    """What ``profile`` needs of a connection: the synchronous facade's ``sql``."""

    def sql(
        self,
        statement: str,
        params: Any = None,
        limit: int | None = None,
        *,
        frames: Any = None,
    ) -> QueryResult: ...


@dataclass(frozen=True)
class ProfileSQL:
    """The SQL of a profile in one sqlglot dialect (``None``: standard SQL)."""

    dialect: str | None

    # -- names ----------------------------------------------------------------------------
    def quote(self, name: str) -> str:
        """``name`` as one quoted identifier in this dialect."""
        q = "`" if self.dialect in _BACKTICK_DIALECTS else '"'
        return q + name.replace(q, q + q) + q

    def parts(self, table: str) -> list[str]:
        """A table as written on the line, split into its dotted parts (``schema.t``);
        ``"my table"``/`` `my table` `` quoting keeps a dot or a space inside one part."""
        out: list[str] = []
        pos = 0
        while True:
            m = _PART.match(table, pos)
            assert m is not None  # the last alternative matches the empty string
            if m.group(1) is not None:
                out.append(m.group(1).replace('""', '"'))
            elif m.group(2) is not None:
                out.append(m.group(2).replace("``", "`"))
            else:
                out.append(m.group(3).strip())
            pos = m.end()
            if not out[-1] or pos == len(table) or table[pos] != ".":
                break
            pos += 1
        if not all(out) or pos != len(table):
            from nbinfra.errors import QueryError

            raise QueryError(f"{table!r} is no table name; write it as table or schema.table.")
        return out

    def table(self, table: str) -> str:
        return ".".join(self.quote(part) for part in self.parts(table))

    def float_type(self) -> str:
        return {"postgres": "DOUBLE PRECISION", "sqlite": "REAL"}.get(self.dialect or "", "DOUBLE")

    def text_type(self) -> str:
        return _TEXT_TYPES.get(self.dialect or "", "TEXT")

    # -- the catalogue --------------------------------------------------------------------
    def columns_sql(self, table: str) -> tuple[str, dict[str, Any] | None]:
        """A query whose rows are ``(column name, type name)`` of ``table``, in order."""
        parts = self.parts(table)
        name, schema = parts[-1], (parts[-2] if len(parts) > 1 else None)
        if self.dialect == "duckdb":
            return f"DESCRIBE SELECT * FROM {self.table(table)}", None
        if self.dialect == "postgres":
            return (
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "WHERE a.attrelid = CAST(:relation AS regclass) AND a.attnum > 0 "
                "AND NOT a.attisdropped ORDER BY a.attnum",
                {"relation": self.table(table)},
            )
        if self.dialect == "sqlite":
            if schema is None:
                return "SELECT name, type FROM pragma_table_info(:name)", {"name": name}
            return (
                "SELECT name, type FROM pragma_table_info(:name, :schema)",
                {"name": name, "schema": schema},
            )
        if self.dialect in _BACKTICK_DIALECTS - {"mysql", "doris"}:
            return f"DESCRIBE TABLE {self.table(table)}", None
        current = "DATABASE()" if self.dialect in ("mysql", "doris") else "CURRENT_SCHEMA"
        where = "table_schema = :schema" if schema is not None else f"table_schema = {current}"
        return (
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE {where} AND table_name = :name ORDER BY ordinal_position",
            {"name": name, **({"schema": schema} if schema is not None else {})},
        )

    def catalog_sql(self) -> str | None:
        """Rows ``(table, column)`` of the current schema, in column order, for completion;
        ``None`` where this dialect's catalogue is not read this way."""
        if self.dialect == "sqlite":
            return (
                "SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p "
                "WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' "
                "ORDER BY m.name, p.cid"
            )
        if self.dialect in ("duckdb", "postgres", "mysql"):
            current = "DATABASE()" if self.dialect == "mysql" else "current_schema()"
            return (
                "SELECT table_name, column_name FROM information_schema.columns "
                f"WHERE table_schema = {current} ORDER BY table_name, ordinal_position"
            )
        return None

    # -- the aggregates -------------------------------------------------------------------
    def _comparable(self, column: str, type_name: str) -> str:
        expr = self.quote(column)
        if self.dialect == "postgres" and _PG_TEXTUAL.search(type_name):
            return f"CAST({expr} AS TEXT)"
        return expr

    def has_stddev(self) -> bool:
        return self.dialect != "sqlite"

    def statistics(self, column: str, type_name: str) -> dict[str, str]:
        """The aggregates that apply to one column: stat name -> SQL expression."""
        expr = self._comparable(column, type_name)
        out = {"count": f"COUNT({expr})", "distinct": f"COUNT(DISTINCT {expr})"}
        if not (_BOOLEAN.search(type_name) and self.dialect == "postgres"):
            out |= {"min": f"MIN({expr})", "max": f"MAX({expr})"}  # no MIN(boolean) there
        if is_numeric(type_name):
            number = f"CAST({expr} AS {self.float_type()})"  # MySQL: AVG(int) is DECIMAL(,4)
            out["mean"] = f"AVG({number})"
            if self.has_stddev():
                out["std"] = f"STDDEV_SAMP({expr})"
        return out

    def aggregate_sql(self, table: str, columns: Sequence[tuple[str, str]]) -> str:
        """One row: ``COUNT(*)``, then each column's ``statistics`` in order (a statistic
        that does not apply is left out, not a NULL: some drivers cannot type a NULL)."""
        exprs = ["COUNT(*)"]
        for name, type_name in columns:
            exprs += self.statistics(name, type_name).values()
        return f"SELECT {', '.join(exprs)} FROM {self.table(table)}"

    def spread_sql(self, table: str, columns: Sequence[tuple[str, str]]) -> str:
        """Without ``STDDEV_SAMP``: ``SUM((x - :m<i>)^2)`` per number column (the second pass)."""
        exprs = []
        for i, (name, _type) in enumerate(columns):
            x = self.quote(name)
            exprs.append(f"SUM(({x} - :m{i}) * ({x} - :m{i}))")
        return f"SELECT {', '.join(exprs)} FROM {self.table(table)}"

    def top_sql(self, table: str, columns: Sequence[tuple[str, str]], k: int = TOP) -> str:
        """Rows ``(column index, value as text, count)``: each column's ``k`` most frequent
        non-null values, most frequent first (ties by value)."""
        source = self.table(table)
        branches = []
        for i, (name, type_name) in enumerate(columns):
            expr = self._comparable(name, type_name)
            value = f"CAST({expr} AS {self.text_type()})"
            branches.append(
                f"SELECT * FROM (SELECT {i} AS i, {value} AS v, COUNT(*) AS n FROM {source} "
                f"WHERE {expr} IS NOT NULL GROUP BY {expr} ORDER BY n DESC, v LIMIT {k}) "
                f"AS {self.quote(f'top{i}')}"
            )
        return " UNION ALL ".join(branches)


def profile_sql_for(dialect: str | None) -> ProfileSQL:
    return ProfileSQL(dialect)


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def profile(
    conn: RunsSQL, table: str, dialect: str | None, *, top: int = TOP, frames: Any = None
) -> QueryResult:
    """The profile of ``table`` (one row per column, ``PROFILE_COLUMNS``), computed with
    three or four queries on ``conn`` in ``dialect``."""
    from nbinfra.errors import QueryError

    extra = {"frames": frames} if frames else {}

    def run(statement: str, params: Any = None) -> QueryResult:
        return conn.sql(statement, params, **extra)

    started = time.perf_counter()
    gen = profile_sql_for(dialect)
    sql, params = gen.columns_sql(table)
    described = run(sql, params)
    columns = [(str(row[0]), str(row[1])) for row in described.rows if row and row[0]]
    columns = [(n, t) for n, t in columns if not n.startswith("#")]  # Spark's DESCRIBE footer
    if not columns:
        raise QueryError(f"No table {table!r} (or it has no columns) on this connection.")
    values = iter(run(gen.aggregate_sql(table, columns)).rows[0])
    total = int(next(values))
    stats: list[dict[str, Any]] = []
    for name, type_name in columns:
        stats.append({stat: _number(next(values)) for stat in gen.statistics(name, type_name)})
    numeric = [i for i, (_n, t) in enumerate(columns) if is_numeric(t)]
    if numeric and not gen.has_stddev():
        picked = [columns[i] for i in numeric]
        means = {f"m{j}": stats[i]["mean"] or 0.0 for j, i in enumerate(numeric)}
        sums = run(gen.spread_sql(table, picked), means).rows[0]
        for j, i in enumerate(numeric):
            count = int(stats[i]["count"])
            stats[i]["std"] = math.sqrt(float(sums[j]) / (count - 1)) if count > 1 else None
    tops: dict[int, list[str]] = {}
    if top > 0:
        for i, value, n in run(gen.top_sql(table, columns, top)).rows:
            tops.setdefault(int(i), []).append(f"{value} ({int(n)})")
    rows = []
    for i, (name, type_name) in enumerate(columns):
        got = stats[i]
        count = int(got["count"])
        rows.append(
            (
                name,
                type_name,
                count,
                total - count,
                int(got["distinct"]),
                *(got.get(stat) for stat in ("min", "max", "mean", "std")),
                ", ".join(tops.get(i, [])),
            )
        )
    return QueryResult(
        list(PROFILE_COLUMNS),
        rows,
        elapsed=time.perf_counter() - started,
        statement=f"profile {table}",
    )
