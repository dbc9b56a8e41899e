"""Any SQL engine SQLAlchemy reaches, as the connection kind ``sql``.

``url`` is a SQLAlchemy URL: ``mysql+pymysql://user:pass@host/db``, ``sqlite:///file.db``,
``postgresql+psycopg://...``, ``mssql+pyodbc://...``, ``snowflake://...``, ``trino://...``.
Configured under ``connections:`` like every kind, written inline
(``%%conn sql:sqlite:///file.db``, ``nbinfra.conn("sql:sqlite:///file.db")``) or given as
``nbinfra.conn("sql", url=...)``. The URL's password is a secret: masked everywhere.

- ``:name`` values are bound by the driver through SQLAlchemy ``text()`` bind parameters;
  only binds in code count (see sqla_text.py), so text is never pasted into SQL.
- Statements split with the URL's dialect (sqlglot): MySQL backslash escapes, PostgreSQL
  dollar quotes, comments and literals with ``;`` stay whole.
- ``execute_query`` runs every statement and returns the last result, ``execute_script``
  each one; a script without its own ``BEGIN``/``COMMIT`` is one transaction (all or
  nothing) unless ``autocommit``. ``async with mgr.transaction():`` spans calls.
- ``limit``: a server-side cursor (``stream_results``; MySQL also caps the server's
  ``sql_select_limit``), so only ``limit + 1`` rows leave the server. ``stream()`` yields
  batches of ``batch_size`` rows.
- An interrupt or a timeout cancels the statement on the server (sqla_engine.stop).
- ``df()`` is the frame ``pandas.read_sql`` gives for the same rows (pandas' own
  conversion: same dtypes).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import sqlalchemy
import sqlglot  # noqa: F401 - the splitter's dialects: when missing, the kind says so

from nbinfra._bounds import AtLeastOne, NonNegativeInt, PositiveFloat
from nbinfra._deadline import within
from nbinfra._secrets import remember_url
from nbinfra.connections.base import BaseConnectionManager
from nbinfra.connections.errormap import is_read_only_sql
from nbinfra.connections.factory import ConnectionRegistry, ConnectionType
from nbinfra.connections.settings import ConnectionSettings, mask_text, one_line
from nbinfra.connections.sqla_engine import (
    AUTOCOMMIT_BACKENDS,
    DEFAULT_PORTS,
    Running,
    engine_options,
    load_dialect,
    stop,
)
from nbinfra.connections.sqla_run import SQLResult, bind_values, run_statement
from nbinfra.connections.sqla_text import DIALECTS, backend_of, dialect_text
from nbinfra.connections.sqltext import controls_transaction, transaction_effect
from nbinfra.connections.types import QueryResult, Transaction
from nbinfra.errors import ConfigError, ConnectionUnavailableError, ConnError, QueryError

__all__ = ["SQLAlchemyConnectionManager", "SQLAlchemySettings", "SQLResult"]


@dataclass
class SQLAlchemySettings(ConnectionSettings):
    """``url``: a SQLAlchemy URL; pool options as in ``sqlalchemy.create_engine``."""

    # The URL is shown with its password masked (a secret: redacted from any text); the
    # rest of it says where the connection points.
    url: str = ""
    pool_size: AtLeastOne = 5
    max_overflow: NonNegativeInt = 5
    pool_recycle: PositiveFloat | None = 1800.0  # seconds before a pooled connection is renewed
    pool_pre_ping: bool = True  # check a pooled connection before use (survives restarts)
    batch_size: AtLeastOne = 10_000  # rows per fetch for stream()
    connect_args: dict[str, Any] = field(default_factory=dict)  # passed to the driver
    arrow: bool = True  # read through ADBC/connectorx when installed (see sqla_arrow.py)

    def __post_init__(self) -> None:
        remember_url(self.url)

    def target(self) -> str:
        return mask_text(self.url) if self.url else "(no url)"


@ConnectionRegistry.register(ConnectionType.SQL)
class SQLAlchemyConnectionManager(BaseConnectionManager):
    """A SQLAlchemy engine and its pool; see the module docstring for the operations."""

    kind = "sql"
    speaks_sql = True
    settings_class = SQLAlchemySettings
    interrupted = "Interrupted: the statement was cancelled on the server"
    max_workers: ClassVar[int] = 8

    settings: SQLAlchemySettings

    def __init__(self, settings: Any = None, *, name: str | None = None, **overrides: Any) -> None:
        super().__init__(settings, name=name, **overrides)
        url = self.settings.url
        self.backend = backend_of(url) if url else ""
        self.text = dialect_text(DIALECTS.get(self.backend))
        self._engine: Any = None
        self._arrow: Any = None  # an ArrowReader when one is installed for this URL
        self._autocommit = self.backend in AUTOCOMMIT_BACKENDS
        self._tx_isolation: str | None = None
        self._connect_args: dict[str, Any] = {}
        self._tx: contextvars.ContextVar[Any] = contextvars.ContextVar(
            f"nbinfra-sql-tx-{id(self)}", default=None
        )

    # -- what the magic reads -------------------------------------------------------------
    @classmethod
    def inline_settings(cls, target: str) -> dict[str, Any] | None:
        """``sql:<url>``: the rest of the inline target is the SQLAlchemy URL."""
        return {"url": target} if "://" in target or target.startswith("sqlite:") else None

    @classmethod
    def split_script(cls, script: str) -> list[str]:
        return dialect_text(None).statements(script)

    @classmethod
    def bind_names(cls, statement: str) -> list[str]:
        return dialect_text(None).binds(statement)

    def statements(self, script: str) -> list[str]:
        """The statements of ``script`` in this URL's dialect."""
        return self.text.statements(script)

    def binds(self, statement: str) -> list[str]:
        return self.text.binds(statement)

    def sql_dialect(self) -> str | None:
        """The URL's dialect (sqlglot's name: ``mysql`` for MariaDB, ``sqlite``...)."""
        return DIALECTS.get(self.backend)

    @property
    def engine(self) -> Any:
        """The live ``sqlalchemy.Engine`` (None until connected)."""
        return self._engine

    def tcp_addresses(self) -> list[tuple[str, int]]:
        port = DEFAULT_PORTS.get(self.backend)
        url = self.settings.url
        if port is None or "socket" in url.partition("?")[2]:
            return []
        from nbinfra.connections.probe import tcp_addresses

        return tcp_addresses(self.settings, port, (self.backend,))

    # -- lifecycle hooks ------------------------------------------------------------------
    def _open_sync(self) -> None:
        if self._engine is not None:
            return
        text = self.settings.url
        if not text:
            raise ConfigError(
                f"connections.{self.name}.url is not set: give a SQLAlchemy URL such as "
                "sqlite:///file.db or mysql+pymysql://user:pass@host/db"
            )
        url, dialect = self._dialect()
        engine = sqlalchemy.create_engine(url, **self._engine_options(url, dialect))
        try:
            with engine.connect():  # fails now, with the server's reason
                self._tx_isolation = engine.dialect.default_isolation_level
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        if self.settings.arrow:
            from nbinfra.connections.sqla_arrow import arrow_reader

            self._arrow = arrow_reader(url, engine, self._connect_args)

    def _dialect(self) -> tuple[Any, Any]:
        """The parsed URL and its dialect class; a missing dialect or driver is a
        ``MissingDependencyError`` saying what to install."""
        try:
            url = sqlalchemy.make_url(self.settings.url)
        except sqlalchemy.exc.ArgumentError as exc:
            raise QueryError(
                f"sql '{self.name}': {self.target} is not a SQLAlchemy URL "
                "(dialect+driver://user:password@host/database)."
            ) from exc
        return url, load_dialect(url, self.name, self.target)

    async def _probe_tcp(self) -> None:
        if self.settings.url:
            self._dialect()  # what is not installed is said before any address is tried
        await super()._probe_tcp()

    def _refused(self, reason: str) -> ConnError:
        return ConnectionUnavailableError(
            f"sql '{self.name}' at {self.target} refused the connection ({reason}); "
            "start the server, or fix the URL."
        )

    def _engine_options(self, url: Any, dialect: Any) -> dict[str, Any]:
        options = engine_options(self.settings, url, dialect, autocommit=self._autocommit)
        self._connect_args = options["connect_args"]
        return options

    def _close_sync(self) -> None:
        engine, self._engine = self._engine, None
        self._arrow = None
        if engine is not None:
            engine.dispose()

    def _ping_sync(self) -> str | None:
        from sqlalchemy import literal_column, select

        with self._require().connect() as conn:
            conn.execute(select(literal_column("1"))).fetchall()
        dialect = self._require().dialect
        version = ".".join(map(str, dialect.server_version_info or ()))
        name = "mariadb" if getattr(dialect, "is_mariadb", False) else dialect.name
        return f"{name} {version}".strip()

    def _require(self) -> Any:
        if self._engine is None:
            raise ConnectionUnavailableError(f"sql '{self.name}' is not connected.")
        return self._engine

    # -- queries --------------------------------------------------------------------------
    async def _execute(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        results = await self._in_worker(query, params, limit, False)
        return results[-1]

    def _execute_sync(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        return self._script_sync(Running(), self._tx.get(), query, params, limit, False)[-1]

    async def execute_script(
        self, query: str, params: Any = None, *, limit: int | None = None, autocommit: bool = False
    ) -> list[QueryResult]:
        """One result per statement; all or nothing unless ``autocommit`` (or the script
        has its own ``BEGIN``/``COMMIT``)."""
        return await self._call(
            lambda: self._in_worker(query, params, limit, autocommit),
            what="script",
            idempotent=self._is_idempotent(query),
        )

    async def _in_worker(
        self, query: Any, params: Any, limit: int | None, autocommit: bool
    ) -> list[QueryResult]:
        """The script on a worker thread; cancelled (interrupt, time limit), its statement
        is stopped on the server before this returns."""
        running = Running()
        tx = self._tx.get()
        try:
            return await self.to_thread(
                self._script_sync, running, tx, query, params, limit, autocommit
            )
        except asyncio.CancelledError:
            engine = self._engine
            if engine is not None:
                await asyncio.shield(asyncio.to_thread(stop, engine, running, self._connect_args))
            raise

    def _script_sync(
        self,
        running: Running,
        tx: Any,
        query: Any,
        params: Any,
        limit: int | None,
        autocommit: bool,
    ) -> list[QueryResult]:
        try:
            if not isinstance(query, str):
                raise QueryError(f"sql queries are SQL text, not {type(query).__name__}.")
            statements = self.statements(query) or [query]
            if self._arrow is not None and tx is None and limit is None and len(statements) == 1:
                fast = self._read_arrow(statements[0], running)
                if fast is not None:
                    return [fast]
            if tx is not None:  # inside transaction(): that block commits or rolls back
                return self._run_all(tx, running, statements, params, limit)
            if len(statements) > 1 and not autocommit and not controls_transaction(statements):
                with self._transactional() as conn, conn.begin():
                    return self._run_all(conn, running, statements, params, limit)
            with self._require().connect() as conn:
                return self._run_own(conn, running, statements, params, limit)
        finally:
            running.done.set()

    def _read_arrow(self, statement: str, running: Running) -> QueryResult | None:
        """A read-only statement without binds through Arrow (None: run it by the cursor)."""
        if not is_read_only_sql(statement) or self.text.binds(statement):
            return None
        result = self._arrow.result(statement, running)
        if result is None and running.cancelled:
            raise QueryError(f"sql '{self.name}': the statement was cancelled.")
        return result  # type: ignore[no-any-return]

    def _transactional(self) -> Any:
        conn = self._require().connect()
        if self._autocommit and self._tx_isolation:
            conn.execution_options(isolation_level=self._tx_isolation)
        return conn

    def _run_own(
        self, conn: Any, running: Running, statements: list[str], params: Any, limit: int | None
    ) -> list[QueryResult]:
        """Statements committed as they run; a script's own ``BEGIN`` ... ``COMMIT``
        reaches the server as written, and one it leaves open (or fails in) is rolled back."""
        open_tx = False
        results: list[QueryResult] = []
        try:
            for statement in statements:
                results += self._run_all(conn, running, [statement], params, limit)
                effect = transaction_effect(statement)
                if effect is not None:
                    open_tx = effect
            if not self._autocommit:
                conn.commit()
        except BaseException:
            if open_tx:
                with contextlib.suppress(Exception):
                    conn.exec_driver_sql("ROLLBACK")
            raise
        if open_tx and self._autocommit:
            conn.exec_driver_sql("ROLLBACK")
            raise QueryError(
                f"sql '{self.name}': the script left its transaction open (BEGIN without "
                "COMMIT) and it was rolled back; end it with COMMIT."
            )
        return results

    def _run_all(
        self, conn: Any, running: Running, statements: list[str], params: Any, limit: int | None
    ) -> list[QueryResult]:
        running.attach(conn.connection.dbapi_connection, self.backend)
        results = []
        for statement in statements:
            if running.cancelled:
                raise QueryError(f"sql '{self.name}': the script was cancelled.")
            results.append(run_statement(conn, self.text, self.backend, statement, params, limit))
        return results

    # -- streams and transactions ---------------------------------------------------------
    async def stream(
        self, query: str, params: Any = None, *, batch_size: int | None = None
    ) -> AsyncIterator[QueryResult]:
        """Yield the result in batches of ``batch_size`` rows (a server-side cursor)."""
        size = batch_size or self.settings.batch_size
        await self.connect()
        opened: list[Any] = []

        def start() -> Any:
            from sqlalchemy import text

            conn = self._require().connect()
            opened.append(conn)
            clause = text(self.text.for_text(query))
            bound = bind_values(self.text.binds(query), params)
            options = {"stream_results": True, "yield_per": size}
            return conn.execute(clause, bound, execution_options=options)

        try:
            result = await within(self.to_thread(start), self.settings.timeout)
            columns = list(result.keys())
            while True:
                began = time.perf_counter()
                batch = await within(self.to_thread(result.fetchmany, size), self.settings.timeout)
                if not batch:
                    return
                yield SQLResult(
                    columns,
                    [tuple(row) for row in batch],
                    elapsed=time.perf_counter() - began,
                    statement=query,
                )
        except ConnError:
            raise
        except Exception as exc:
            raise self._error(exc, "stream", None) from exc
        finally:
            for conn in opened:
                await asyncio.shield(self.to_thread(conn.close))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Run the block's queries on one connection; commit at the end, roll back on error."""
        if self._tx.get() is not None:
            raise QueryError("A transaction is already open on this task; nest with savepoints.")
        await self.connect()

        def begin() -> Any:
            conn = self._transactional()
            conn.begin()
            return conn

        def end(conn: Any, commit: bool) -> None:
            try:
                conn.commit() if commit else conn.rollback()
            finally:
                conn.close()

        try:
            conn = await self.to_thread(begin)
        except Exception as exc:
            raise self._error(exc, "transaction", None) from exc
        token = self._tx.set(conn)
        try:
            yield Transaction(self, conn)
        except BaseException:
            self._tx.reset(token)
            await asyncio.shield(self.to_thread(end, conn, False))
            raise
        self._tx.reset(token)
        try:
            await self.to_thread(end, conn, True)
        except Exception as exc:
            raise self._error(exc, "commit", None) from exc

    def _is_idempotent(self, query: Any) -> bool:
        return self._tx.get() is None and super()._is_idempotent(query)

    # -- errors ---------------------------------------------------------------------------
    def _error(self, exc: BaseException, what: str, timeout: float | None) -> ConnError:
        if isinstance(exc, TimeoutError | asyncio.TimeoutError) and what in ("query", "script"):
            return QueryError(
                f"sql '{self.name}' {what} was cancelled on the server after {timeout} s; "
                "raise the timeout setting for longer statements."
            )
        return super()._error(exc, what, timeout)

    def _translate(self, exc: BaseException, what: str) -> ConnError:
        from sqlalchemy import exc as sa

        orig = getattr(exc, "orig", None)
        detail = one_line(str(orig if orig is not None else exc)) or type(exc).__name__
        lost = isinstance(exc, sa.DBAPIError) and (exc.connection_invalidated or what == "connect")
        if lost or isinstance(exc, sa.DisconnectionError | sa.TimeoutError | OSError):
            return ConnectionUnavailableError(
                f"sql '{self.name}' at {self.target} is unavailable ({what}): {detail}"
            )
        return QueryError(f"sql '{self.name}' {what} failed: {detail}")
