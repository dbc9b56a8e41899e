"""DuckDB: the embedded SQL engine, in-process on a file or ``:memory:``.

Work is in-process, so the synchronous facade calls it from the caller's thread
(``direct_sync``): no event-loop hop (see benchmarks/bench_connections.py). On the main
thread each statement runs on a query thread while the caller waits, so a notebook's
Interrupt reaches DuckDB (``interrupt()``) at once and nbinfra's own progress display
(``nbinfra.progress``, fed by ``query_progress()``) can be drawn; DuckDB's own progress
bar is off (in JupyterLab it flooded the output channel).
Results are materialised once inside DuckDB; ``df()`` and ``arrow()`` convert from there
with DuckDB's own converters (Arrow without an extra copy), and ``rows`` only when asked.
pandas DataFrames and Arrow tables become queryable after ``register(name, frame)``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from nbinfra._interrupt import call_interruptibly
from nbinfra.connections.base import BaseConnectionManager
from nbinfra.connections.factory import ConnectionRegistry, ConnectionType
from nbinfra.connections.settings import ConnectionSettings, one_line
from nbinfra.connections.sqltext import (
    controls_transaction,
    split_statements,
    to_dollar,
    transaction_effect,
)
from nbinfra.connections.types import QueryResult
from nbinfra.errors import ConnectionUnavailableError, ConnError, QueryError
from nbinfra.progress import Progress

T = TypeVar("T")

__all__ = ["DuckDBConnectionManager", "DuckDBResult", "DuckDBSettings"]

MEMORY = ":memory:"
# DuckDB's own progress bar: off. In JupyterLab it sent thousands of output messages a
# second (an ipywidgets bar) and the server dropped output ("IOPub message rate exceeded").
# Progress is still tracked (DuckDB's default for that depends on where it runs), for
# query_progress() and nbinfra's own display.
QUIET = {"enable_progress_bar": True, "enable_progress_bar_print": False}
CANCELLED = "Interrupted: the query was cancelled in DuckDB"


@dataclass
class DuckDBSettings(ConnectionSettings):
    """``database``: a file path (created on first use) or ``:memory:``."""

    database: str = MEMORY
    read_only: bool = False
    config: dict[str, Any] = field(default_factory=dict)  # DuckDB options (threads, ...)

    def target(self) -> str:
        return self.database


class DuckDBResult(QueryResult):
    """A result held by DuckDB; rows, DataFrame and Arrow are produced on first access."""

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


_DML = ("INSERT", "UPDATE", "DELETE", "MERGE_INTO")


def _is_dml(con: Any, sql: str) -> bool:
    statements = con.extract_statements(sql)
    return len(statements) == 1 and statements[0].type.name in _DML


def _rollback(con: Any) -> None:
    """Roll back the open transaction, if any (DuckDB raises when none is active)."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


def _rows_of(table: Any) -> list[tuple[Any, ...]]:
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))


@ConnectionRegistry.register(ConnectionType.DUCKDB)
class DuckDBConnectionManager(BaseConnectionManager):
    """DuckDB in-process; ``execute_query`` runs every statement and returns the last result."""

    kind = "duckdb"
    speaks_sql = True
    settings_class = DuckDBSettings
    direct_sync = True
    interrupted = CANCELLED
    max_workers = 1  # one DuckDB connection, used by one thread at a time

    settings: DuckDBSettings

    def __init__(self, settings: Any = None, *, name: str | None = None, **overrides: Any) -> None:
        super().__init__(settings, name=name, **overrides)
        self._con: Any = None
        self._lock = threading.RLock()
        self._registered: dict[str, Any] = {}
        self._results: weakref.WeakSet[DuckDBResult] = weakref.WeakSet()
        self._in_transaction = False  # a BEGIN of the user's is open on the connection
        self._runner: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def connection(self) -> Any:
        """The live ``duckdb.DuckDBPyConnection`` (connects on first access)."""
        if self._con is None:
            self.execute_query_sync("SELECT 1")
        return self._con

    # -- lifecycle hooks -------------------------------------------------------------
    def _open_sync(self) -> None:
        with self._lock:
            if self._con is not None:
                return
            database = self.settings.database or MEMORY
            if database != MEMORY and not database.startswith(("md:", "motherduck:")):
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                database = str(Path(database).expanduser())
            config = {str(k): v for k, v in self.settings.config.items()}
            self._con = con = duckdb.connect(
                database, read_only=self.settings.read_only, config=config
            )
            for option, value in QUIET.items():
                if option not in config:  # an explicit setting wins
                    con.execute(f"SET {option} = {str(value).lower()}").fetchall()
            for name, frame in self._registered.items():
                self._con.register(name, frame)

    def _close_sync(self) -> None:
        with self._lock:
            con, self._con = self._con, None
            self._in_transaction = False
            for result in list(self._results):
                result._detach()  # results outlive the connection
            self._results = weakref.WeakSet()
            runner, self._runner = self._runner, None
            if runner is not None:
                runner.shutdown(wait=False)
            if con is not None:
                con.close()

    def _ping_sync(self) -> str | None:
        with self._lock:
            # fetchall: DuckDB 2 keeps a half-read result open and refuses the next query
            rows = self._require().execute("SELECT version()").fetchall()
        return f"DuckDB {rows[0][0]}" if rows else "DuckDB"

    def _execute_sync(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        return self._script_sync(query, params, limit)[-1]

    def _script_sync(
        self, query: Any, params: Any, limit: int | None, autocommit: bool = False
    ) -> list[QueryResult]:
        """Every statement's result; a script without its own BEGIN/COMMIT is one transaction.

        After any failure an open transaction is rolled back (DuckDB aborts it on every
        error and refuses further queries until a ROLLBACK), so the connection stays usable.
        """
        if not isinstance(query, str):
            raise QueryError(f"duckdb queries are SQL text, not {type(query).__name__}.")
        statements = split_statements(query) or [query]
        with self._lock:
            con = self._require()
            began = (
                len(statements) > 1
                and not autocommit
                and not self._in_transaction
                and not controls_transaction(statements)
            )
            results: list[QueryResult] = []
            try:
                if began:
                    con.execute("BEGIN")
                for statement in statements:
                    results.append(self._run(con, statement, params, limit))
                    effect = transaction_effect(statement)
                    if effect is not None:
                        self._in_transaction = effect
                if began:
                    con.execute("COMMIT")
            except BaseException:
                self._in_transaction = False
                _rollback(con)
                raise
            return results

    async def execute_script(
        self, query: str, params: Any = None, *, limit: int | None = None, autocommit: bool = False
    ) -> list[QueryResult]:
        """One result per statement, all or nothing unless ``autocommit`` (``_script_sync``)."""
        return await self._call(
            lambda: self.to_thread(self._script_sync, query, params, limit, autocommit),
            what="script",
            idempotent=self._is_idempotent(query),
        )

    async def to_thread(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        try:
            return await super().to_thread(fn, *args, **kwargs)
        except asyncio.CancelledError:
            # The awaiting task was cancelled (an interrupt of run_sync, a time limit):
            # the worker thread would go on running the query, so stop it in DuckDB.
            con = self._con
            if con is not None:
                con.interrupt()
            raise

    def _run(self, con: Any, statement: str, params: Any, limit: int | None) -> QueryResult:
        sql, bound = to_dollar(statement, params)
        start = time.perf_counter()

        def execute() -> Any:
            relation = con.sql(sql, params=bound) if bound else con.sql(sql)
            if relation is None:
                return None
            if limit is not None:
                relation = relation.limit(limit + 1)  # one extra row tells us it was truncated
            return relation.materialize()

        relation = call_interruptibly(
            self._query_thread(),
            execute,
            interrupt=con.interrupt,
            cancelled=CANCELLED,
            progress=Progress(f"{self.name}: query"),
            poll=con.query_progress,
            timeout=self.settings.timeout,
        )
        if relation is None:
            return QueryResult([], [], elapsed=time.perf_counter() - start, statement=statement)
        result = DuckDBResult(
            relation,
            self._lock,
            elapsed=time.perf_counter() - start,
            statement=statement,
            limit=limit,
        )
        if result.columns == ["Count"] and _is_dml(con, sql):
            result.rowcount = int(result.scalar() or 0)  # rows affected, as in DB-API
        self._results.add(result)
        return result

    def _query_thread(self) -> concurrent.futures.Executor:
        runner = self._runner
        if runner is None:
            runner = self._runner = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"nbinfra-duckdb-{self.name}"
            )
        return runner

    def _require(self) -> Any:
        if self._con is None:
            raise ConnectionUnavailableError(f"duckdb '{self.name}' is not connected.")
        return self._con

    # -- native operations ---------------------------------------------------------------
    def register(self, name: str, frame: Any) -> None:
        """Make a pandas DataFrame (or Arrow table) queryable as table ``name``."""
        if not name.isidentifier():
            raise QueryError(f"Cannot register {name!r}: use a plain identifier as table name.")
        with self._lock:
            self._registered[name] = frame
            if self._con is not None:
                self._con.register(name, frame)

    def unregister(self, name: str) -> None:
        """Forget a registered frame."""
        with self._lock:
            self._registered.pop(name, None)
            if self._con is not None:
                self._con.unregister(name)

    def registered(self) -> list[str]:
        """Names of the registered frames."""
        return sorted(self._registered)

    async def tables(self) -> list[str]:
        """Tables and views visible in the main schema, registered frames included."""
        result = await self.execute_query(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'main' ORDER BY table_name"
        )
        return [row[0] for row in result.rows]

    # -- errors ----------------------------------------------------------------------
    def _error(self, exc: BaseException, what: str, timeout: float | None) -> ConnError:
        if isinstance(exc, TimeoutError) and self._con is not None:
            # In-process: stop the query itself; the connection stays usable.
            self._con.interrupt()
            return QueryError(
                f"duckdb '{self.name}' {what} was interrupted after {timeout} s; "
                "raise the timeout setting for longer queries."
            )
        return super()._error(exc, what, timeout)

    def _translate(self, exc: BaseException, what: str) -> ConnError:
        detail = one_line(str(exc)) or type(exc).__name__
        if isinstance(exc, duckdb.IOException | duckdb.ConnectionException | OSError):
            return ConnectionUnavailableError(
                f"duckdb '{self.name}' cannot open {self.target}: {detail}"
            )
        return QueryError(f"duckdb '{self.name}' {what} failed: {detail}")
