"""The pool side of the PostgreSQL manager: checking connections out and back in.

``Checkout`` is ``async with manager._connection() as conn``; the log filter moves
psycopg_pool's records about nbinfra's own pools to nbinfra's logger.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg

from nbinfra.errors import ConnectionUnavailableError
from nbinfra.logs import get_logger

if TYPE_CHECKING:
    from nbinfra.connections.postgres import PostgresConnectionManager

__all__ = [
    "KEEP_IDLE",
    "POOL_PREFIX",
    "Checkout",
    "EmbeddedServerGone",
    "end_open_transaction",
    "reusable",
]

log = get_logger("nbinfra.connections.postgres")


class _OwnPoolRecords(logging.Filter):
    """Moves psycopg_pool's records about nbinfra's own pools to nbinfra's logger.

    A server restart makes the pool report each dead connection and each failed refill as
    a warning, which Python prints to stderr when nothing else handles it; nbinfra already
    reports the restart in one line, so those go to its (silent by default) logger at info.
    Records about other pools pass unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if any(_pool_name(arg).startswith(POOL_PREFIX) for arg in args):
            log.info("pool: %s", record.getMessage())
            return False
        return True


def _pool_name(arg: Any) -> str:
    if isinstance(arg, str):
        return arg
    pool = getattr(arg, "_pool", None)  # a pooled connection
    if pool is None:
        ref = getattr(arg, "pool", None)  # a pool task holds a weak reference
        pool = ref() if callable(ref) else ref
    name = getattr(pool, "name", "")
    return name if isinstance(name, str) else ""


POOL_PREFIX = "nbinfra-"
logging.getLogger("psycopg.pool").addFilter(_OwnPoolRecords())
_IDLE = psycopg.pq.TransactionStatus.IDLE
_IN_TRANSACTION = (psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR)
KEEP_IDLE = 30.0  # seconds one connection may skip the pool between queries (see Checkout)


class EmbeddedServerGone(ConnectionUnavailableError):
    """Found at checkout, before anything was sent: the call restarts the server and is
    repeated, whether or not it is idempotent."""

    unsent = True


class Checkout:
    """``async with manager._connection() as conn``: one pooled connection per block.

    A plain class, not an ``asynccontextmanager``: the per-query path then creates no
    async generator (each one is registered with the loop and finalised), and calls the
    pool's ``getconn``/``putconn`` directly.

    Back-to-back queries skip the pool: a connection that ends a block cleanly (no error,
    no open transaction) is kept by the manager for the next block, for up to
    ``KEEP_IDLE`` seconds, instead of going through ``putconn`` and ``getconn`` again
    (their locks, checks and bookkeeping cost about a tenth of a small query's client
    time). A block that finds it kept takes it after the same health check the pool
    applies; a concurrent block, or one that finds the server gone, uses the pool, and a
    connection is never kept while another block waits for one.
    """

    __slots__ = ("_conn", "_manager", "_owned", "_setup", "_until")

    def __init__(
        self, manager: PostgresConnectionManager, setup: Callable[[Any], None] | None
    ) -> None:
        self._manager = manager
        self._setup = setup
        self._conn: Any = None
        self._owned = False
        self._until = 0.0  # how long this block's connection may still skip the pool

    async def __aenter__(self) -> Any:
        manager = self._manager
        conn = manager._tx.get()
        if conn is None:
            pool = manager._pool
            if pool is None:
                raise ConnectionUnavailableError(f"postgres '{manager.name}' is not connected.")
            conn, manager._kept = manager._kept, None
            embedded = manager.settings.embedded
            alive = manager._probed_alive() if conn is not None or embedded else True
            if not alive and embedded and manager._embedded_gone():
                if conn is not None:
                    await conn.close()  # dead with its server; the pool would warn
                raise EmbeddedServerGone(
                    f"postgres '{manager.name}': the embedded PostgreSQL under "
                    f"{manager.settings.embedded_dir} stopped; starting it again."
                )
            if conn is not None and not (alive and reusable(conn)):
                await pool.putconn(conn)  # the pool checks it, or drops a broken one
                conn = None
            if conn is None:
                conn = await pool.getconn(timeout=manager.settings.connect_timeout)
                self._until = time.monotonic() + KEEP_IDLE
            else:
                self._until = manager._kept_until
            self._owned = True
        self._conn = conn
        if self._setup is not None:
            try:
                self._setup(conn)
            except BaseException:
                await self.__aexit__(None, None, None)
                raise
        return conn

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        if self._owned:
            self._owned = False
            manager = self._manager
            pool = manager._pool
            conn, self._conn = self._conn, None
            if pool is None:  # the manager closed meanwhile: no pool to go back to
                await conn.close()
            elif (
                exc_type is None
                and manager._kept is None
                and reusable(conn)
                and time.monotonic() < self._until
                # nobody is queued for a connection (a pool without the attribute: unknown)
                and not getattr(pool, "_waiting", True)
            ):
                manager._kept, manager._kept_until = conn, self._until
            else:
                # putconn rolls back a transaction left open and drops a broken connection.
                await pool.putconn(conn)


async def end_open_transaction(conn: Any) -> bool:
    """Roll back a transaction a script opened and left open; True when there was one."""
    if conn.closed or conn.pgconn.transaction_status not in _IN_TRANSACTION:
        return False
    with contextlib.suppress(psycopg.Error):
        await conn.rollback()
    return True


def reusable(conn: Any) -> bool:
    """Open, and between transactions (nothing to roll back)."""
    return not conn.closed and conn.pgconn.transaction_status == _IDLE
