"""Value types shared by every connection manager and the notebook layer.

Pure Python: importing this module imports no driver, pandas or pyarrow.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbinfra.connections.base import ConnectionManager

__all__ = ["POLARS_HINT", "HealthStatus", "QueryResult", "Transaction", "import_polars"]

POLARS_HINT = "pip install 'nbinfra[polars]'"


def import_polars() -> Any:
    """The ``polars`` module, or a one-line MissingDependencyError saying what to install."""
    try:
        import polars
    except ImportError as exc:
        from nbinfra.errors import MissingDependencyError

        raise MissingDependencyError(
            f"Polars is not installed: {POLARS_HINT}", hint=POLARS_HINT
        ) from exc
    return polars


@dataclass(frozen=True)
class HealthStatus:
    """The outcome of one health check. ``target`` is always masked (no credentials)."""

    ok: bool
    kind: str
    target: str
    latency: float | None = None  # seconds
    server_version: str | None = None
    error: str | None = None
    checked_at: float | None = None  # time.time()
    # False: not checked, because checking would first start an embedded server that is not
    # running (it starts on first use); ``ok`` is then False too.
    started: bool = True

    def __bool__(self) -> bool:
        return self.ok

    @property
    def state(self) -> str:
        """``ok``, ``down`` or ``not started``."""
        if self.ok:
            return "ok"
        return "down" if self.started else "not started"

    def __str__(self) -> str:
        parts = [f"{self.kind} {self.target}: {self.state}"]
        if not self.started:
            parts.append("starts on first use")
        if self.latency is not None:
            parts.append(f"{self.latency * 1000:.1f} ms")
        if self.server_version:
            parts.append(self.server_version)
        if self.error:
            parts.append(self.error)
        return ", ".join(parts)


@dataclass
class QueryResult:
    """Rows from any backend: ``columns`` + ``rows`` (tuples), with timing.

    ``native`` keeps the driver's own result when it can give Arrow or a DataFrame
    without copying (DuckDB), so ``df()``/``arrow()``/``pl()`` avoid a Python round trip.
    """

    columns: list[str]
    rows: list[tuple[Any, ...]] = field(repr=False)
    elapsed: float = 0.0  # seconds
    rowcount: int | None = None  # rows affected for DML; len(rows) otherwise
    statement: str | None = None
    native: Any = field(default=None, repr=False)
    truncated: bool = False  # a limit stopped the fetch early

    def __post_init__(self) -> None:
        if self.rowcount is None or self.rowcount < 0:  # drivers report -1 for DDL
            self.rowcount = len(self.rows)

    def __repr__(self) -> str:
        # Never the rows themselves: a repr of a million-row result must stay one line.
        cols = ", ".join(self.columns[:8]) + (", ..." if len(self.columns) > 8 else "")
        return (
            f"QueryResult({len(self.rows)} rows x {len(self.columns)} columns [{cols}], "
            f"rowcount={self.rowcount}, elapsed={self.elapsed * 1000:.1f} ms)"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """A cell's last value shows the first rows as a table (HTML and plain text)."""
        from nbinfra.notebook.display import query_bundle

        return query_bundle(self)

    def head(self, n: int) -> list[tuple[Any, ...]]:
        """The first ``n`` rows (without converting the others where the driver holds them)."""
        return list(self.rows[:n])

    @property
    def row_count(self) -> int:
        return int(self.rowcount or 0)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return self.rows[index]

    def dicts(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=False)) for row in self.rows]

    def scalar(self) -> Any:
        """The first column of the first row (``None`` when empty)."""
        return self.rows[0][0] if self.rows and self.rows[0] else None

    def df(self) -> Any:
        """A pandas DataFrame (imports pandas on first use)."""
        native_df = getattr(self.native, "df", None)
        if callable(native_df):
            return native_df()
        import pandas as pd

        return pd.DataFrame.from_records(self.rows, columns=self.columns)

    def pl(self) -> Any:
        """A Polars DataFrame (imports polars on first use: ``pip install 'nbinfra[polars]'``)."""
        polars = import_polars()
        native_pl = getattr(self.native, "pl", None)
        if callable(native_pl):
            return native_pl()
        return polars.DataFrame(self.rows, schema=list(self.columns), orient="row")

    def plot(self, kind: str, x: str | None = None, y: str | None = None, **options: Any) -> Any:
        """A matplotlib Figure of these rows (``hist``, ``bar``, ``line``, ``scatter``,
        ``box``); for a query too big to pull, ``%%conn NAME --plot`` computes in the engine."""
        from nbinfra.plots import plot_result

        return plot_result(self, kind, x, y, **options)

    def arrow(self) -> Any:
        """A pyarrow Table (zero-copy when the driver produced Arrow)."""
        native_arrow = getattr(self.native, "arrow", None)
        if callable(native_arrow):
            return native_arrow()
        import pyarrow as pa

        columns: Sequence[list[Any]] = [list(col) for col in zip(*self.rows, strict=False)] or [
            [] for _ in self.columns
        ]
        return pa.table(dict(zip(self.columns, columns, strict=False)))


class Transaction:
    """The connection of an open ``transaction()`` block (SQL kinds that offer one): its
    statements run on ``connection`` until the block ends (the manager routes them)."""

    def __init__(self, manager: ConnectionManager, conn: Any) -> None:
        self.manager = manager
        self.connection = conn

    async def execute_query(
        self, query: str, params: Any = None, *, limit: int | None = None
    ) -> QueryResult:
        return await self.manager.execute_query(query, params, limit=limit)
