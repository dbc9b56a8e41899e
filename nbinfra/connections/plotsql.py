"""The SQL behind plots computed in the engine (``%%conn NAME --plot KIND COL...``).

A plot's aggregates run in the database over the user's query wrapped as a subquery
(``SELECT ... FROM (<query>) AS q``), so only what is drawn comes back: a histogram's
bins, a box's five numbers, a bar's groups, a line's ordered sample, a scatter's random
sample. The SQL follows the connection's dialect (``sql_dialect()``) with
``ProfileSQL``'s quoting:

- hist: ``MIN``/``MAX``/``COUNT`` first, then the bins: on DuckDB its ``histogram(x,
  boundaries)`` aggregate (about a quarter faster than a GROUP BY), with each boundary the
  float just below the next edge, so a value on an edge counts in the bin it starts, as in
  numpy.histogram (the last bin keeps its right edge); elsewhere ``FLOOR((x - lo) * (bins /
  (hi - lo)))`` clamped to the last bin and ``GROUP BY``. SQLite, without ``FLOOR`` in
  every build, truncates a non-negative ``CAST(... AS INTEGER)``.
- box: the engine's own quantiles (DuckDB ``quantile_cont``, PostgreSQL
  ``percentile_cont ... WITHIN GROUP``, Spark ``percentile``); where there is none
  (SQLite, MySQL/MariaDB) each quartile is read with ``ORDER BY x LIMIT 2 OFFSET k`` and
  interpolated linearly (the same ``quantile_cont`` answer), one small query per quartile.
  Then Tukey's whiskers, as matplotlib's ``boxplot`` draws them: the lowest and highest
  values within 1.5 IQR of the box, and the values outside (the fliers, at most ``cap``).
- bar: ``GROUP BY x`` with ``COUNT(*)`` (or ``SUM(y)``), the largest ``cap`` groups.
- line: ``ROW_NUMBER() OVER (ORDER BY x)`` keeps every k-th row, at most ``cap`` rows.
- scatter: a Bernoulli sample ``WHERE <random> < p LIMIT cap`` (no sort of the table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nbinfra.connections.profile import ProfileSQL

__all__ = ["QUARTILES", "PlotSQL"]

QUARTILES = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class PlotSQL:
    """Plot aggregates in one dialect (``None``: standard SQL)."""

    dialect: str | None

    @property
    def names(self) -> ProfileSQL:
        return ProfileSQL(self.dialect)

    def source(self, query: str) -> str:
        """The user's query as a derived table."""
        text = query.strip().rstrip(";").strip()
        return f"({text}) AS {self.names.quote('nbinfra_q')}"

    def _number(self, column: str) -> str:
        return f"CAST({self.names.quote(column)} AS {self.names.float_type()})"

    def range_sql(self, query: str, column: str) -> str:
        """One row: ``MIN``, ``MAX`` and ``COUNT`` of ``column``."""
        x = self._number(column)
        return f"SELECT MIN({x}), MAX({x}), COUNT({x}) FROM {self.source(query)}"

    def hist_sql(self, query: str, column: str, bins: int, low: float, high: float) -> str:
        """Rows ``(bin index, count)`` for ``bins`` equal-width bins over ``[low, high]``."""
        x = self._number(column)
        scale = bins / (high - low) if high > low else 0.0
        raw = f"({x} - {low!r}) * {scale!r}"
        index = f"CAST({raw} AS INTEGER)" if self.dialect == "sqlite" else f"FLOOR({raw})"
        clamped = f"CASE WHEN {index} >= {bins} THEN {bins - 1} ELSE {index} END"
        return (
            f"SELECT {clamped} AS b, COUNT(*) AS n FROM {self.source(query)} "
            f"WHERE {x} IS NOT NULL GROUP BY {clamped} ORDER BY b"
        )

    def hist_bounds_sql(self, query: str, column: str, edges: list[float]) -> str | None:
        """One row: the counts of the bins ``edges`` bound (``[e0, e1)``, ..., ``[e(n-1),
        en]``) in order, or None where the dialect has no histogram aggregate (DuckDB's)."""
        if self.dialect != "duckdb":
            return None
        x = self._number(column)
        below = [math.nextafter(edge, -math.inf) for edge in edges[1:-1]]
        bounds = ", ".join(f"CAST('{b!r}' AS DOUBLE)" for b in [*below, edges[-1]])
        return f"SELECT map_values(histogram({x}, [{bounds}])) FROM {self.source(query)}"

    def quantile(self, expr: str, q: float) -> str | None:
        """The engine's continuous quantile of ``expr``, or None where it has none."""
        if self.dialect == "duckdb":
            return f"quantile_cont({expr}, {q!r})"
        if self.dialect in ("postgres", "redshift", "snowflake"):
            return f"percentile_cont({q!r}) WITHIN GROUP (ORDER BY {expr})"
        if self.dialect in ("spark", "databricks", "hive"):
            return f"percentile({expr}, {q!r})"
        return None

    def box_sql(self, query: str, column: str) -> str | None:
        """One row: min, the quartiles, max and count, or None without quantile functions."""
        x = self._number(column)
        parts = [self.quantile(x, q) for q in QUARTILES]
        if any(part is None for part in parts):
            return None
        return (
            f"SELECT MIN({x}), {', '.join(str(p) for p in parts)}, MAX({x}), COUNT({x}) "
            f"FROM {self.source(query)}"
        )

    def nth_sql(self, query: str, column: str, offset: int) -> str:
        """The non-null values at ``offset`` and ``offset + 1`` in order (the fallback)."""
        x = self._number(column)
        return (
            f"SELECT {x} FROM {self.source(query)} WHERE {x} IS NOT NULL "
            f"ORDER BY {x} LIMIT 2 OFFSET {int(offset)}"
        )

    def fence_sql(self, query: str, column: str, low: float, high: float) -> str:
        """One row: the lowest value >= ``low``, the highest <= ``high``, and how many
        values lie outside ``[low, high]`` (CASE, not FILTER: MySQL has no FILTER)."""
        x = self._number(column)
        return (
            f"SELECT MIN(CASE WHEN {x} >= {low!r} THEN {x} END), "
            f"MAX(CASE WHEN {x} <= {high!r} THEN {x} END), "
            f"SUM(CASE WHEN {x} < {low!r} OR {x} > {high!r} THEN 1 ELSE 0 END) "
            f"FROM {self.source(query)}"
        )

    def fliers_sql(self, query: str, column: str, low: float, high: float, cap: int) -> str:
        """The values outside ``[low, high]``, at most ``cap``."""
        x = self._number(column)
        return (
            f"SELECT {x} FROM {self.source(query)} WHERE {x} < {low!r} OR {x} > {high!r} "
            f"LIMIT {int(cap)}"
        )

    def bar_sql(self, query: str, x: str, y: str | None, cap: int) -> str:
        """Rows ``(x, count or SUM(y))``: the ``cap`` largest groups, largest first."""
        group = self.names.quote(x)
        value = f"SUM({self._number(y)})" if y else "COUNT(*)"
        return (
            f"SELECT {group} AS x, {value} AS y FROM {self.source(query)} "
            f"GROUP BY {group} ORDER BY y DESC, x LIMIT {int(cap)}"
        )

    def count_sql(self, query: str) -> str:
        return f"SELECT COUNT(*) FROM {self.source(query)}"

    def _pairs(self, query: str, x: str, y: str) -> str:
        """``(x, y)`` of the query's rows where both are set, as a derived table."""
        qx, qy = self.names.quote(x), self.names.quote(y)
        return (
            f"(SELECT {qx}, {qy} FROM {self.source(query)} "
            f"WHERE {qx} IS NOT NULL AND {qy} IS NOT NULL) AS {self.names.quote('nbinfra_xy')}"
        )

    def line_sql(self, query: str, x: str, y: str, every: int) -> str:
        """Rows ``(x, y)`` in ``x`` order, every ``every``-th row of the query (rows with
        a NULL left out)."""
        qx, qy = self.names.quote(x), self.names.quote(y)
        if every <= 1:
            return f"SELECT {qx}, {qy} FROM {self._pairs(query, x, y)} ORDER BY {qx}"
        inner = (
            f"SELECT {qx}, {qy}, ROW_NUMBER() OVER (ORDER BY {qx}) AS rn "
            f"FROM {self._pairs(query, x, y)}"
        )
        return (
            f"SELECT {qx}, {qy} FROM ({inner}) AS {self.names.quote('nbinfra_rows')} "
            f"WHERE (rn - 1) % {int(every)} = 0 ORDER BY {qx}"
        )

    def random(self) -> str:
        """A uniform random number in [0, 1) in this dialect."""
        if self.dialect == "sqlite":
            return "(random() / 18446744073709551616.0 + 0.5)"
        if self.dialect in ("mysql", "doris"):
            return "RAND()"
        if self.dialect in ("spark", "databricks", "hive"):
            return "rand()"
        return "random()"

    def scatter_sql(self, query: str, x: str, y: str, fraction: float, cap: int) -> str:
        """Rows ``(x, y)``: a Bernoulli sample of about ``fraction`` of the rows, at most
        ``cap`` (all rows when ``fraction`` >= 1)."""
        qx, qy = self.names.quote(x), self.names.quote(y)
        where = f" WHERE {self.random()} < {fraction!r}" if fraction < 1 else ""
        return f"SELECT {qx}, {qy} FROM {self._pairs(query, x, y)}{where} LIMIT {int(cap)}"
