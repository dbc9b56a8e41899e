"""DuckDB's results: held inside DuckDB, converted to rows, pandas, Polars or Arrow on demand.

Results are materialised once inside DuckDB; ``df()``, ``arrow()`` and ``pl()`` convert from
there with DuckDB's own converters (Arrow without an extra copy), and ``rows`` only when
asked. Importing this module imports no pandas, Polars or pyarrow.
"""

from __future__ import annotations

import threading
from typing import Any

from nbinfra.connections.types import QueryResult, import_polars

__all__ = ["ARROW_STRINGS_MIN_ROWS", "DuckDBResult", "to_pandas"]


class DuckDBResult(QueryResult):
    """A result held by DuckDB; rows, DataFrames and Arrow are produced on first access."""

    __hash__ = object.__hash__  # tracked in a WeakSet by its manager

    def __init__(
        self,
        relation: Any,
        lock: threading.RLock,
        *,
        elapsed: float,
        statement: str,
        limit: int | None,
    ) -> None:
        self._relation = relation
        self._lock = lock
        self._rows: list[tuple[Any, ...]] | None = None
        self._table: Any = None
        with lock:
            count = relation.shape[0]
            columns = list(relation.columns)
        truncated = limit is not None and count > limit
        if truncated:
            with lock:
                self._relation = relation.limit(limit).materialize()
            count = int(limit or 0)
        self.columns = columns
        self.elapsed = elapsed
        self.statement = statement
        self.truncated = truncated
        self.rowcount = count
        self.native = None

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            with self._lock:
                if self._relation is not None:
                    self._rows = self._relation.fetchall()
                else:
                    self._rows = _rows_of(self._table)
        return self._rows

    @rows.setter
    def rows(self, value: list[tuple[Any, ...]]) -> None:
        self._rows = value

    def head(self, n: int) -> list[tuple[Any, ...]]:
        """The first ``n`` rows, fetched alone while DuckDB holds the result."""
        if self._rows is None:
            with self._lock:
                if self._relation is not None:
                    rows: list[tuple[Any, ...]] = self._relation.limit(n).fetchall()
                    return rows
                return _rows_of(self._table.slice(0, n))
        return self._rows[:n]

    def __len__(self) -> int:
        return int(self.rowcount or 0)

    def df(self) -> Any:
        """A pandas DataFrame, converted by DuckDB (a fresh frame each call).

        The frame is the one ``relation.df()`` gives. When pandas keeps strings
        Arrow-backed (its default ``str`` dtype from pandas 3), VARCHAR columns of a
        large result come through Arrow instead: the same column, without building a
        Python string per value first (2-3x faster on string-heavy results).
        """
        with self._lock:
            if self._relation is not None:
                return to_pandas(self._relation, self.rowcount or 0)
        return self._table.to_pandas()

    def pl(self) -> Any:
        """A Polars DataFrame, converted by DuckDB (a fresh frame each call)."""
        polars = import_polars()
        with self._lock:
            if self._relation is not None:
                return self._relation.pl()
        return polars.from_arrow(self._table)

    def arrow(self) -> Any:
        """A pyarrow Table (converted once, then shared)."""
        if self._table is None:
            with self._lock:
                if self._table is None:
                    self._table = self._relation.to_arrow_table()
        return self._table

    def _detach(self) -> None:
        """Copy the rows out of DuckDB before its connection closes."""
        with self._lock:
            if self._relation is not None:
                self.arrow()
                if self._rows is None:
                    self._rows = _rows_of(self._table)
                self._relation = None

    def __repr__(self) -> str:
        return (
            f"<DuckDBResult {self.rowcount} rows x {len(self.columns)} columns "
            f"{self.columns[:8]!r} in {self.elapsed * 1000:.1f} ms>"
        )


# Below this many rows the split (two selects and an Arrow export, ~2.5 ms) costs more
# than it saves (measured: break-even near 25,000 rows with one string column).
ARROW_STRINGS_MIN_ROWS = 30_000


def to_pandas(relation: Any, rows: int) -> Any:
    """``relation.df()``, with VARCHAR columns through Arrow where that is the same frame."""
    columns = list(relation.columns)
    strings = [c for c, t in zip(columns, relation.types, strict=True) if str(t) == "VARCHAR"]
    if rows < ARROW_STRINGS_MIN_ROWS or not strings or len(set(columns)) < len(columns):
        return relation.df()
    import pandas as pd

    if not _arrow_backed_strings(pd):
        return relation.df()
    table = relation.select(*map(_quoted, strings)).to_arrow_table()
    # DuckDB hands pandas Python strings and lets it infer the dtype: an all-NULL column
    # stays ``object``. Those go through DuckDB, so the frame is the same either way.
    arrow = {c for c in strings if table.column(c).null_count < table.num_rows}
    others = [c for c in columns if c not in arrow]
    parts: dict[str, Any] = {}
    if others:
        rest = relation.select(*map(_quoted, others)).df()
        parts = {c: rest[c] for c in others}
    for name in arrow:
        parts[name] = table.column(name).to_pandas()
    return pd.DataFrame({c: parts[c] for c in columns}, copy=False)


def _arrow_backed_strings(pd: Any) -> bool:
    """Whether pandas' default string dtype is the Arrow-backed one DuckDB also produces."""
    dtype = pd.Series(["x"]).dtype
    return getattr(dtype, "storage", None) == "pyarrow"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rows_of(table: Any) -> list[tuple[Any, ...]]:
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))
