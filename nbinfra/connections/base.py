"""The manager contract every connection backend implements.

Two bases share one async API (``connect``, ``disconnect``, ``async with``,
``health_check``, ``is_healthy``, ``execute_query``):

- ``AsyncBaseConnectionManager`` for async drivers: implement ``_open``, ``_close``,
  ``_ping`` and ``_execute`` as coroutines.
- ``BaseConnectionManager`` for blocking drivers: implement ``_open_sync``, ``_close_sync``,
  ``_ping_sync`` and ``_execute_sync``; each runs in the manager's worker thread and is
  awaited. ``await self.to_thread(fn, ...)`` does the same for native operations.

Resilience lives here, once: ``_call`` runs an operation with a timeout, translates vendor
exceptions into ``ConnError`` subclasses (one line, masked), marks the manager unhealthy
when the connection is lost, reconnects, and retries *idempotent* operations with
exponential backoff and jitter up to ``settings.retries`` times, then stops.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, TypeVar

from nbinfra import _loop
from nbinfra._deadline import within
from nbinfra.connections.cellsyntax import CellSyntax
from nbinfra.connections.errormap import ErrorMapping, is_read_only_sql
from nbinfra.connections.inline import NeedsLoop, driven
from nbinfra.connections.settings import (
    ConnectionSettings,
    RetryPolicy,
    build_settings,
    mask_text,
    one_line,
)
from nbinfra.connections.types import HealthStatus, QueryResult
from nbinfra.errors import (
    ConnectionUnavailableError,
    ConnError,
    LoopError,
    QueryError,
    RegistryError,
)
from nbinfra.logs import get_logger

__all__ = [
    "AsyncBaseConnectionManager",
    "BaseConnectionManager",
    "ConnectionManager",
    "RetryPolicy",
    "is_read_only_sql",
]

T = TypeVar("T")
log = get_logger(__name__)


class ConnectionManager(CellSyntax, ErrorMapping, abc.ABC):
    """What every connection manager offers; subclass one of the two bases below."""

    kind: ClassVar[str] = ""
    settings_class: ClassVar[type[ConnectionSettings]] = ConnectionSettings
    # True when the driver works in-process without network I/O, so the synchronous
    # facade may call ``execute_query_sync`` on the caller's thread (no loop hop).
    direct_sync: ClassVar[bool] = False
    # True when driver objects belong to the event loop that created them (async drivers).
    binds_loop: ClassVar[bool] = False
    # Set for drivers that dial ``url`` or ``host``/``port`` over plain TCP: each connect
    # probes those first, so a refused port fails at once (see probe.py).
    default_port: ClassVar[int | None] = None
    tcp_schemes: ClassVar[tuple[str, ...]] = ()  # URL schemes its driver dials directly
    # The line shown when a notebook interrupt cancels a call (the awaiting task is
    # cancelled; a backend that also stops the work on the server says so).
    interrupted: ClassVar[str] = "Interrupted: the call was cancelled"

    def __init__(
        self,
        settings: ConnectionSettings | Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        **overrides: Any,
    ) -> None:
        self.name = name or self.kind
        self.settings = build_settings(self.settings_class, settings, overrides, self.name)
        if not self.settings.kind:
            self.settings.kind = self.kind
        self.retry: RetryPolicy = self.settings.retry_policy()
        self._connected = False
        self._healthy = False
        self._last_status: HealthStatus | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._home_loop: asyncio.AbstractEventLoop | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    # -- identity -------------------------------------------------------------------
    @property
    def target(self) -> str:
        """Where this manager points, with credentials masked."""
        return mask_text(self.settings.target())

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def pending_start(self) -> str | None:
        """What the first connect would start, slowly, before connecting (an embedded
        server that is not running yet, an in-process engine not opened yet), or None.
        ``%conn list`` leaves such a one alone."""
        return None

    @property
    def last_status(self) -> HealthStatus | None:
        """The outcome of the most recent ``health_check()``."""
        return self._last_status

    def __repr__(self) -> str:
        state = "connected" if self._connected else "not connected"
        return f"<{type(self).__name__} {self.name!r} kind={self.kind} {self.target} ({state})>"

    # -- lifecycle ------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the connection (idempotent); retried with backoff, bounded by timeouts."""
        if self.binds_loop and not _loop.in_loop_thread():
            return await _loop.run_async(self.connect())  # async resources live there
        if self._connected and not self._left_home():
            return
        loop = asyncio.get_running_loop()
        if self._connect_lock is None or self._lock_loop is not loop:
            self._connect_lock, self._lock_loop = asyncio.Lock(), loop
        async with self._connect_lock:
            if self._connected:
                return
            timeout = self.settings.connect_timeout
            failures = 0
            while True:
                try:
                    await self._probe_tcp()
                    await within(self._open(), timeout)
                    break
                except Exception as exc:
                    if isinstance(exc, RegistryError):
                        raise  # MissingDependencyError: its own message says what to install
                    failures += 1
                    err = self._error(exc, "connect", timeout)
                    await self._discard()
                    if not isinstance(err, ConnectionUnavailableError) or (
                        failures >= self.retry.attempts
                    ):
                        log.warning("%s '%s': connect failed: %s", self.kind, self.name, err)
                        raise err from exc
                    delay = self.retry.delay(failures)
                    log.info(
                        "%s '%s': connect failed (%s), retry %d in %.2fs",
                        self.kind,
                        self.name,
                        err,
                        failures,
                        delay,
                    )
                    await asyncio.sleep(delay)
            self._connected = True
            self._healthy = True
            if self.binds_loop:
                self._home_loop = asyncio.get_running_loop()
            log.info("%s '%s' connected to %s", self.kind, self.name, self.target)

    async def disconnect(self) -> None:
        """Close the connection; safe to call twice, never raises for a dead backend."""
        if self.binds_loop and self._home_loop is not None and not _loop.in_loop_thread():
            try:
                return await _loop.run_async(self.disconnect())
            except LoopError:  # nbinfra's loop has shut down: nothing left to close
                pass
        was_connected = self._connected
        self._connected = False
        self._healthy = False
        if self._left_home():
            return
        self._home_loop = None
        try:
            await within(self._close(), self.settings.connect_timeout)
        except Exception as exc:  # noqa: BLE001 - closing a dead connection is fine
            log.info("%s '%s': close reported %s", self.kind, self.name, one_line(str(exc)))
        if was_connected:
            log.info("%s '%s' disconnected", self.kind, self.name)

    async def aclose(self) -> None:
        """Alias of ``disconnect`` (used by ``Session.close``)."""
        await self.disconnect()

    async def reconnect(self) -> None:
        """Drop the current connection and open a new one."""
        await self._discard()
        await self.connect()

    async def __aenter__(self: T) -> T:
        await self.connect()  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    # -- health -------------------------------------------------------------------
    async def health_check(self) -> HealthStatus:
        """Ping the backend (connecting first if needed); never raises."""
        start = time.perf_counter()
        try:
            version = await self._call(self._ping, what="health check", idempotent=True)
        except ConnError as exc:
            status = HealthStatus(
                ok=False,
                kind=self.kind,
                target=self.target,
                latency=time.perf_counter() - start,
                error=exc.message,
                checked_at=time.time(),
            )
        else:
            status = HealthStatus(
                ok=True,
                kind=self.kind,
                target=self.target,
                latency=time.perf_counter() - start,
                server_version=version,
                checked_at=time.time(),
            )
        self._healthy = status.ok
        self._last_status = status
        return status

    def is_healthy(self) -> bool:
        """Last known health, refined by a cheap local probe (no round trip)."""
        if not (self._connected and self._healthy):
            return False
        try:
            alive = self._probe()
        except Exception:  # noqa: BLE001 - a failing probe means "not healthy"
            alive = False
        if not alive:
            self._healthy = False
        return alive

    # -- queries --------------------------------------------------------------------
    async def execute_query(
        self, query: Any, params: Any = None, *, limit: int | None = None
    ) -> QueryResult:
        """Run ``query`` with bound ``params``; at most ``limit`` rows are fetched."""
        return await self._call(
            functools.partial(self._execute, query, params, limit),
            what="query",
            idempotent=self._is_idempotent(query),
        )

    async def sql(
        self,
        query: str,
        params: Any = None,
        *,
        limit: int | None = None,
        frames: Mapping[str, object] | None = None,
    ) -> QueryResult:
        """Run SQL on a kind that speaks it: what ``%%conn`` runs for each statement. The
        same as ``execute_query`` unless that means something else for the kind (for
        pgvector it is a vector-store search), which then overrides this. ``frames``: name
        -> DataFrame readable as a table by this statement (kinds with ``frames_by_name``)."""
        if not self.speaks_sql:
            raise QueryError(f"{self.kind} does not speak SQL; use execute_query.")
        self.check_frames(frames)
        return await self.execute_query(query, params, limit=limit)

    def check_frames(self, frames: Mapping[str, object] | None) -> None:
        if frames and not self.frames_by_name:
            names = ", ".join(sorted(frames))
            raise QueryError(f"{self.kind} cannot query DataFrames by name ({names}).")

    async def _call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        what: str,
        idempotent: bool,
        timeout: float | None = None,
    ) -> T:
        """Run ``fn`` with timeout, error translation, reconnect and bounded retries."""
        if self.binds_loop and not _loop.in_loop_thread():
            # Async clients live on nbinfra's loop: awaited from any other, go through it.
            call = self._call(fn, what=what, idempotent=idempotent, timeout=timeout)
            return await _loop.run_async(call)
        if driven():
            return await self._call_here(fn, what)
        limit = self.settings.timeout if timeout is None else timeout
        failures = 0
        while True:
            await self.connect()
            try:
                result = await within(fn(), limit)
            except Exception as exc:
                if isinstance(exc, RegistryError):
                    raise
                failures += 1
                err = self._error(exc, what, limit)
                if isinstance(err, ConnectionUnavailableError):
                    self._healthy = False
                    await self._discard()
                    # A slow operation is not retried: it would only time out again. One
                    # that failed before anything was sent (``unsent``) is repeated once.
                    timed_out = isinstance(exc, (TimeoutError, asyncio.TimeoutError))
                    if (getattr(err, "unsent", False) and failures < 2) or (
                        idempotent and not timed_out and failures < self.retry.attempts
                    ):
                        delay = self.retry.delay(failures)
                        log.warning(
                            "%s '%s': %s lost the connection (%s); reconnecting, retry %d in %.2fs",
                            self.kind,
                            self.name,
                            what,
                            err,
                            failures,
                            delay,
                        )
                        await asyncio.sleep(delay)
                        continue
                raise err from exc
            self._healthy = True
            return result

    async def _call_here(self, fn: Callable[[], Awaitable[T]], what: str) -> T:
        """``_call`` on the caller's thread with no loop (see inline.py): no time limit,
        no reconnect here; a lost connection goes back to the loop, which retries."""
        if not self._connected:
            raise NeedsLoop("not connected")
        try:
            result = await fn()
        except Exception as exc:
            if isinstance(exc, RegistryError):
                raise
            err = self._error(exc, what, None)
            if isinstance(err, ConnectionUnavailableError):
                self._healthy = False
                raise NeedsLoop(what) from err
            raise err from exc
        self._healthy = True
        return result

    @property
    def runs_here(self) -> bool:
        """True when the synchronous facade may run this manager's calls on the caller's
        thread (an open in-process engine; see inline.py)."""
        return False

    def _left_home(self) -> bool:
        """Forget a connection made on an earlier nbinfra loop (stopped at shutdown, or the
        parent's after a fork): it cannot be used or closed on this one.

        Returns True when that happened, so the next ``connect`` opens a new one here.
        """
        home = self._home_loop
        if home is None or home is asyncio.get_running_loop():
            return False
        log.info("%s '%s': its event loop stopped; reconnecting on this one", self.kind, self.name)
        self._home_loop = None
        self._connected = self._healthy = False
        self._abandon()
        return True

    def _abandon(self) -> None:
        """Drop driver objects bound to a stopped event loop, without awaiting them."""

    # -- hooks ----------------------------------------------------------------------
    @abc.abstractmethod
    async def _open(self) -> None:
        """Create the driver connection/client/pool."""

    @abc.abstractmethod
    async def _close(self) -> None:
        """Release it (must tolerate never having been opened)."""

    @abc.abstractmethod
    async def _ping(self) -> str | None:
        """One cheap round trip; returns the server version when known."""

    @abc.abstractmethod
    async def _execute(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        """Run one query."""

    def _probe(self) -> bool:
        """A local, non-blocking liveness check for ``is_healthy`` (default: trust state)."""
        return True

    def tcp_addresses(self) -> list[tuple[str, int]]:
        """The ``(host, port)`` pairs a connect dials (none: nothing to probe)."""
        if self.default_port is None:
            return []
        from nbinfra.connections.probe import tcp_addresses

        return tcp_addresses(self.settings, self.default_port, self.tcp_schemes)

    async def _probe_tcp(self) -> None:
        """Raise at once when every address refuses TCP (the driver might wait it out)."""
        addresses = self.tcp_addresses()
        if not addresses:
            return
        from nbinfra.connections.probe import refused

        reason = await refused(addresses, min(1.0, self.settings.connect_timeout))
        if reason is not None:
            raise self._refused(reason)

    async def _discard(self) -> None:
        """Forget a (possibly dead) connection so the next call reconnects."""
        self._connected = False
        try:
            await within(self._close(), self.settings.connect_timeout)
        except Exception as exc:  # noqa: BLE001 - it is already broken
            log.debug("%s '%s': discarding connection: %r", self.kind, self.name, exc)


class AsyncBaseConnectionManager(ConnectionManager):
    """Base for async drivers (psycopg, redis.asyncio...): hooks are coroutines.

    The driver's objects live on nbinfra's loop: a call awaited from any other loop (a
    notebook's top-level ``await``) goes there through ``nbinfra._loop.run_async``.
    """

    binds_loop = True


# The base for blocking drivers lives in its own module; it is part of this contract.
from nbinfra.connections.threaded import BaseConnectionManager  # noqa: E402
