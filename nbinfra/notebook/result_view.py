"""The engine side of ``results_table``: sort, filter, count, page and export in DuckDB.

A DuckDB result is shaped where DuckDB holds it (its rows are never pulled to page it);
other rows (a ``QueryResult``, a pandas DataFrame) are handed to a private in-memory
DuckDB the first time a sort, filter or export asks for it. Filter values are bound as
constants (DuckDB expressions), never written into SQL text. DuckDB is imported on first
use, so importing this module imports no driver or pandas.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

__all__ = ["FilterError", "ResultView", "parse_number_filter"]

DUCKDB_HINT = "pip install 'nbinfra[duckdb]'"
_NUMERIC = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT"
    r"|FLOAT|DOUBLE|REAL|DECIMAL.*)$"
)
_COMPARISON = re.compile(
    r"^\s*(<=|>=|!=|<>|==|=|<|>)?\s*([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)\s*$"
)


class FilterError(ValueError):
    """A filter the view cannot read (shown as one line in the widget)."""


def parse_number_filter(column: str, text: str) -> tuple[str, int | float]:
    """``'>5'`` -> ``('>', 5)``; a plain number means equality."""
    match = _COMPARISON.match(text)
    if match is None:
        raise FilterError(
            f"Filter on {column!r} is not a number: use a number or a comparison like "
            f">5, <=3 or =2 (got {text.strip()[:40]!r})."
        )
    op = {None: "=", "==": "=", "<>": "!="}.get(match.group(1), match.group(1))
    raw = match.group(2)
    value: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
    return op, value


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as exc:
        from nbinfra.errors import MissingDependencyError

        raise MissingDependencyError(
            f"Sorting, filtering and downloads run in DuckDB, which is not installed: "
            f"{DUCKDB_HINT}",
            hint=DUCKDB_HINT,
        ) from exc
    return duckdb


class ResultView:
    """A result with a sort (one column, ascending or descending) and column filters."""

    def __init__(self, data: Any) -> None:
        self._data = data
        self._df: Any = None
        from nbinfra.connections.types import QueryResult

        # isinstance first: hasattr(result, "rows") would pull a DuckDB result's every row
        if isinstance(data, QueryResult) or (hasattr(data, "columns") and hasattr(data, "rows")):
            self.columns = [str(c) for c in data.columns]
        elif hasattr(data, "iloc") and hasattr(data, "columns"):
            self._df = data
            self.columns = [str(c) for c in data.columns]
        else:
            raise TypeError(
                f"results_table() takes a QueryResult or a pandas DataFrame, "
                f"not {type(data).__name__}."
            )
        self.sort: tuple[str, bool] | None = None  # (column, ascending)
        self.filters: dict[str, str] = {}
        self.fetched = 0  # rows fetched by the last page() call
        self._own: Any = None  # (connection, relation) of a private DuckDB
        self._own_lock = threading.RLock()
        self._total: int | None = None
        self._counted: dict[str, str] = {}  # the filters self._total counts rows under

    # -- the engine ------------------------------------------------------------
    def _held(self) -> tuple[Any, AbstractContextManager[Any]] | None:
        """The relation DuckDB holds this result in, and its lock (None: not a DuckDB one)."""
        relation = getattr(self._data, "_relation", None)
        lock = getattr(self._data, "_lock", None)
        if relation is None or lock is None:
            return None
        return relation, lock

    def _base(self) -> tuple[Any, AbstractContextManager[Any]]:
        held = self._held()
        if held is not None:
            return held
        if self._own is None:
            duckdb = _duckdb()
            con = duckdb.connect()
            if self._df is not None:
                relation = con.from_df(self._df)
            else:
                relation = con.from_arrow(self._data.arrow())
            self._own = (con, relation)
        return self._own[1], self._own_lock

    @property
    def active_filters(self) -> dict[str, str]:
        return {name: text for name, text in self.filters.items() if text.strip()}

    @property
    def shaped(self) -> bool:
        return self.sort is not None or bool(self.active_filters)

    def _relation(self) -> tuple[Any, AbstractContextManager[Any]]:
        relation, lock = self._base()
        duckdb = _duckdb()
        with lock:
            types = dict(zip(relation.columns, (str(t) for t in relation.types), strict=False))
        for name, text in self.filters.items():
            if not text.strip():
                continue
            column = duckdb.ColumnExpression(name)
            if _NUMERIC.match(types.get(name, "")):
                op, value = parse_number_filter(name, text)
                const = duckdb.ConstantExpression(value)
                expr = {
                    "=": column == const,
                    "!=": column != const,
                    "<": column < const,
                    "<=": column <= const,
                    ">": column > const,
                    ">=": column >= const,
                }[op]
            else:
                lowered = duckdb.FunctionExpression("lower", column.cast(duckdb.sqltype("VARCHAR")))
                expr = duckdb.FunctionExpression(
                    "contains", lowered, duckdb.ConstantExpression(text.strip().lower())
                )
            relation = relation.filter(expr)
        if self.sort is not None:
            name, ascending = self.sort
            column = duckdb.ColumnExpression(name)
            relation = relation.sort((column.asc() if ascending else column.desc()).nulls_last())
        return relation, lock

    # -- what the widget asks --------------------------------------------------
    def set(self, *, sort: tuple[str, bool] | None, filters: dict[str, str]) -> None:
        for name in (*filters, *([sort[0]] if sort else [])):
            if name not in self.columns:
                raise KeyError(f"No column {name!r}; the columns are {self.columns}.")
        self.sort = sort
        self.filters = dict(filters)

    def __len__(self) -> int:
        """Rows under the filters, counted once per set of filters (a sort changes none)."""
        active = self.active_filters
        if self._total is None or active != self._counted:
            if not active:
                self._total = len(self._df) if self._df is not None else len(self._data)
            else:
                relation, lock = self._relation()
                with lock:
                    self._total = int(relation.aggregate("count(*)").fetchall()[0][0])
            self._counted = active
        return self._total

    def page(self, start: int, stop: int) -> list[Sequence[Any]]:
        """Rows ``start:stop`` of the sorted, filtered result; only those are fetched."""
        rows: list[Sequence[Any]]
        if not self.shaped and self._held() is None:
            if self._df is not None:
                rows = [tuple(r) for r in self._df.iloc[start:stop].itertuples(index=False)]
            else:
                rows = list(self._data.rows[start:stop])
        else:
            relation, lock = self._relation()
            with lock:
                rows = relation.limit(max(0, stop - start), start).fetchall()
        self.fetched = len(rows)
        return rows

    def export(self, path: str | Path, fmt: str) -> Path:
        """Write the whole sorted, filtered result to ``path`` as ``csv`` or ``parquet``."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        relation, lock = self._relation()
        with lock:
            if fmt == "csv":
                relation.write_csv(str(target), header=True)
            elif fmt == "parquet":
                relation.write_parquet(str(target))
            else:
                raise ValueError(f"Export as csv or parquet, not {fmt!r}.")
        return target
