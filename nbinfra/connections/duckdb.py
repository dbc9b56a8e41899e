"""DuckDB: the embedded SQL engine, in-process on a file or ``:memory:``.

Work is in-process, so the synchronous facade calls it from the caller's thread
(``direct_sync``): no event-loop hop (see benchmarks/bench_connections.py). On the main
thread each statement runs on a query thread while the caller waits, so a notebook's
Interrupt reaches DuckDB (``interrupt()``) at once and nbinfra's own progress display
(``nbinfra.progress``, fed by ``query_progress()``) can be drawn; DuckDB's own progress
bar is off (in JupyterLab it flooded the output channel).
Results are materialised once inside DuckDB; ``df()`` and ``arrow()`` convert from there
with DuckDB's own converters (Arrow without an extra copy), and ``rows`` only when asked.
pandas DataFrames and Arrow tables become queryable after ``register(name, frame)``, or
for one statement by name: ``sql(q, frames={"df": df})`` (what ``%%conn`` passes; see
duckdb_frames.py), where a table of the same name wins, as in DuckDB's replacement scans.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from nbinfra._interrupt import call_interruptibly
from nbinfra.connections.base import BaseConnectionManager
from nbinfra.connections.duckdb_frames import checked_frames, parsed_table_names, run_with_frames
from nbinfra.connections.duckdb_result import DuckDBResult
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
Frames = Mapping[str, object]

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


_DML = ("INSERT", "UPDATE", "DELETE", "MERGE_INTO")


def _is_dml(con: Any, sql: str) -> bool:
    statements = con.extract_statements(sql)
    return len(statements) == 1 and statements[0].type.name in _DML


def _rollback(con: Any) -> None:
    """Roll back the open transaction, if any (DuckDB raises when none is active)."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


@ConnectionRegistry.register(ConnectionType.DUCKDB)
class DuckDBConnectionManager(BaseConnectionManager):
    """DuckDB in-process; ``execute_query`` runs every statement and returns the last result."""

    kind = "duckdb"
    speaks_sql = True
    dialect_name = "duckdb"
    settings_class = DuckDBSettings
    direct_sync = True
    frames_by_name = True
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

    def _execute_sync(
        self, query: Any, params: Any, limit: int | None, frames: Frames | None = None
    ) -> QueryResult:
        return self._script_sync(query, params, limit, frames=frames)[-1]

    def _script_sync(
        self,
        query: Any,
        params: Any,
        limit: int | None,
        autocommit: bool = False,
        frames: Frames | None = None,
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
                    results.append(self._run(con, statement, params, limit, frames))
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
        self,
        query: str,
        params: Any = None,
        *,
        limit: int | None = None,
        autocommit: bool = False,
        frames: Frames | None = None,
    ) -> list[QueryResult]:
        """One result per statement, all or nothing unless ``autocommit`` (``_script_sync``);
        ``frames`` as in ``sql``."""
        scope = checked_frames(frames)
        return await self._call(
            lambda: self.to_thread(self._script_sync, query, params, limit, autocommit, scope),
            what="script",
            idempotent=self._is_idempotent(query),
        )

    async def sql(
        self,
        query: str,
        params: Any = None,
        *,
        limit: int | None = None,
        frames: Frames | None = None,
    ) -> QueryResult:
        """``execute_query``, where ``frames`` (name -> pandas/Polars/Arrow object) are
        readable by name in this statement only; a table or view of that name wins."""
        if not frames:
            return await self.execute_query(query, params, limit=limit)
        scope = checked_frames(frames)
        return await self._call(
            lambda: self.to_thread(self._execute_sync, query, params, limit, scope),
            what="query",
            idempotent=self._is_idempotent(query),
        )

    def sql_sync(
        self,
        statement: str,
        params: Any = None,
        *,
        limit: int | None = None,
        frames: Frames | None = None,
    ) -> QueryResult:
        """``sql`` on the caller's thread (the synchronous facade's path)."""
        scope = checked_frames(frames)
        return self.call_sync(self._execute_sync, statement, params, limit, scope)

    def table_names(self, statement: str) -> list[str]:
        """The unqualified names ``statement`` reads as tables, by DuckDB's own parser: CTE
        names, literals and comments are not tables (see duckdb_frames.py)."""
        return parsed_table_names(statement)

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

    def _run(
        self, con: Any, statement: str, params: Any, limit: int | None, frames: Frames | None
    ) -> QueryResult:
        sql, bound = to_dollar(statement, params)
        start = time.perf_counter()

        def execute() -> Any:
            if frames:
                return run_with_frames(con, sql, bound, limit, frames)
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
