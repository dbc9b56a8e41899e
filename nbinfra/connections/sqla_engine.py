"""The SQLAlchemy engine behind the ``sql`` kind: what a URL needs installed, how the
engine is made, and how a running statement is stopped on the server.

- A URL whose dialect or driver is not installed is a ``MissingDependencyError`` naming
  the ``pip install`` that fixes it (``snowflake://`` -> ``snowflake-sqlalchemy``,
  ``mssql+pyodbc://`` -> ``pyodbc``), raised before any connection is tried.
- ``stop(running)`` cancels the statement a worker thread runs: SQLite's
  ``interrupt()``, ``KILL QUERY <id>`` from a second connection on MySQL/MariaDB, the
  driver's cancel request on PostgreSQL (psycopg ``cancel_safe``), else
  ``pg_cancel_backend`` or the DB-API connection's own ``cancel()`` when it has one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nbinfra.errors import MissingDependencyError
from nbinfra.logs import get_logger

__all__ = [
    "AUTOCOMMIT_BACKENDS",
    "DEFAULT_PORTS",
    "Running",
    "engine_options",
    "kill_marked",
    "load_dialect",
    "stop",
]

log = get_logger("nbinfra.connections.sqla")

# Dialects that ship outside SQLAlchemy: backend name -> the package that provides it.
DIALECT_PACKAGES = {
    "access": "sqlalchemy-access",
    "awsathena": "pyathena[sqlalchemy]",
    "bigquery": "sqlalchemy-bigquery",
    "clickhouse": "clickhouse-sqlalchemy",
    "cockroachdb": "sqlalchemy-cockroachdb",
    "crate": "sqlalchemy-cratedb",
    "databricks": "databricks-sqlalchemy",
    "db2": "ibm-db-sa",
    "duckdb": "duckdb-engine",
    "exasol": "sqlalchemy-exasol",
    "firebird": "sqlalchemy-firebird",
    "hana": "sqlalchemy-hana",
    "hive": "pyhive[hive]",
    "ibm_db_sa": "ibm-db-sa",
    "presto": "pyhive[presto]",
    "redshift": "sqlalchemy-redshift",
    "singlestoredb": "sqlalchemy-singlestoredb",
    "snowflake": "snowflake-sqlalchemy",
    "spanner": "sqlalchemy-spanner",
    "teradatasql": "teradatasqlalchemy",
    "trino": "trino",
}
# Driver modules -> their packages (and a word on the other driver, for the defaults).
DRIVER_PACKAGES = {
    "MySQLdb": "mysqlclient (or write mysql+pymysql:// to use PyMySQL)",
    "asyncpg": "asyncpg",
    "cx_Oracle": "cx_Oracle (or write oracle+oracledb://)",
    "mariadb": "mariadb",
    "mysql": "mysql-connector-python",
    "oracledb": "oracledb",
    "pg8000": "pg8000",
    "psycopg": "'psycopg[binary]'",
    "psycopg2": "psycopg2-binary (or write postgresql+psycopg:// to use psycopg 3)",
    "pymssql": "pymssql",
    "pymysql": "pymysql",
    "pyodbc": "pyodbc",
}
# Ports of the backends whose drivers dial TCP themselves: a refused port fails at once.
DEFAULT_PORTS = {
    "cockroachdb": 26257,
    "mariadb": 3306,
    "mssql": 1433,
    "mysql": 3306,
    "oracle": 1521,
    "postgresql": 5432,
    "redshift": 5439,
}
# Backends whose SQLAlchemy dialects take isolation_level="AUTOCOMMIT": single statements
# then cost no BEGIN/COMMIT, and a script's own BEGIN ... COMMIT reaches the server as is.
AUTOCOMMIT_BACKENDS = frozenset(
    {"cockroachdb", "mariadb", "mssql", "mysql", "oracle", "postgresql", "sqlite"}
)
# The driver's connect-timeout argument (seconds), by SQLAlchemy driver name.
CONNECT_TIMEOUT_ARGS = {
    "mariadbconnector": "connect_timeout",
    "mysqlconnector": "connection_timeout",
    "mysqldb": "connect_timeout",
    "pg8000": "timeout",
    "psycopg": "connect_timeout",
    "psycopg2": "connect_timeout",
    "pymysql": "connect_timeout",
    "pyodbc": "timeout",
}


def engine_options(settings: Any, url: Any, dialect: Any, *, autocommit: bool) -> dict[str, Any]:
    """``create_engine`` options for ``settings`` (a ``SQLAlchemySettings``): the pool,
    pre-ping, the driver's connect timeout, AUTOCOMMIT where the dialect has it."""
    from sqlalchemy.pool import QueuePool, StaticPool

    s = settings
    args = dict(s.connect_args)
    timeout_arg = CONNECT_TIMEOUT_ARGS.get(url.get_driver_name())
    if timeout_arg and timeout_arg not in args:
        args[timeout_arg] = max(1, round(s.connect_timeout))
    options: dict[str, Any] = {"pool_pre_ping": s.pool_pre_ping, "connect_args": args}
    if url.get_backend_name() == "sqlite" and (url.database or ":memory:") == ":memory:":
        # One in-memory database shared by every worker thread.
        args.setdefault("check_same_thread", False)
        options["poolclass"] = StaticPool
    elif issubclass(dialect.get_pool_class(url), QueuePool):
        options.update(
            pool_size=s.pool_size,
            max_overflow=s.max_overflow,
            pool_timeout=s.connect_timeout,
            pool_recycle=-1 if s.pool_recycle is None else s.pool_recycle,
        )
    if autocommit:
        options["isolation_level"] = "AUTOCOMMIT"
        options["pool_reset_on_return"] = None  # nothing to roll back between calls
    return options


def load_dialect(url: Any, name: str, shown: str) -> Any:
    """The dialect class of SQLAlchemy ``url`` with its driver importable, or a
    ``MissingDependencyError`` saying what to install. ``shown`` is the masked URL."""
    from sqlalchemy.exc import NoSuchModuleError

    backend = url.get_backend_name()
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError as exc:
        package = DIALECT_PACKAGES.get(backend)
        hint = (
            f"pip install {package}" if package else f"install the SQLAlchemy dialect for {backend}"
        )
        raise MissingDependencyError(
            f"sql '{name}': no SQLAlchemy dialect for '{url.drivername}' is installed "
            f"({shown}): {hint}",
            hint=hint,
        ) from exc
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = (getattr(exc, "name", None) or "").split(".")[0] or url.get_driver_name()
        package = DRIVER_PACKAGES.get(module, module)
        hint = f"pip install {package}"
        raise MissingDependencyError(
            f"sql '{name}': the driver '{module}' for {url.drivername}:// is not installed "
            f"({shown}): {hint}",
            hint=hint,
        ) from exc
    return dialect


@dataclass
class Running:
    """One call in flight on a worker thread: the DB-API connection it uses (set by the
    worker once it has one), the server's id for that connection, and whether it ended."""

    dbapi: Any = None
    server_id: int | None = None
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    cancel: Callable[[], None] | None = None  # how to stop a read outside the pool (Arrow)

    def attach(self, dbapi: Any, backend: str) -> None:
        self.server_id = _server_id(dbapi, backend)
        self.dbapi = dbapi


def _server_id(dbapi: Any, backend: str) -> int | None:
    """The server's id for ``dbapi`` (MySQL thread id, PostgreSQL backend pid), known
    to the driver from its handshake: no round trip."""
    try:
        if backend in ("mysql", "mariadb"):
            thread_id = getattr(dbapi, "thread_id", None)  # PyMySQL, mysqlclient
            value = thread_id() if callable(thread_id) else getattr(dbapi, "connection_id", None)
        elif backend == "postgresql":
            info = getattr(dbapi, "info", None)  # psycopg 3
            value = getattr(info, "backend_pid", None)
            if value is None and callable(getattr(dbapi, "get_backend_pid", None)):
                value = dbapi.get_backend_pid()  # psycopg2
        else:
            return None
    except Exception:  # noqa: BLE001 - unknown: the driver's own cancel is used instead
        return None
    return int(value) if isinstance(value, int) else None


_KILL = {
    "mariadb": "KILL QUERY {id}",
    "mysql": "KILL QUERY {id}",
    "postgresql": "SELECT pg_cancel_backend({id})",
}
GRACE = 5.0  # seconds to keep asking before giving up on a statement


def stop(engine: Any, running: Running, connect_args: dict[str, Any]) -> None:
    """Cancel ``running``'s statement on the server and wait (up to ``GRACE``) for the
    worker to finish, asking again meanwhile (a request that lands before the statement
    starts is lost). Blocking: call it off the event loop."""
    running.cancelled = True
    backend = engine.dialect.name
    deadline = time.monotonic() + GRACE
    pause = 0.02 if backend == "sqlite" else 0.3
    while not running.done.is_set() and time.monotonic() < deadline:
        if running.cancel is not None or running.dbapi is not None:
            try:
                _cancel_once(engine, running, backend, connect_args)
            except Exception as exc:  # noqa: BLE001 - best effort: the call is cancelled anyway
                log.info("sql: cancelling the statement on the server failed: %r", exc)
                return
        running.done.wait(pause)


def _cancel_once(engine: Any, running: Running, backend: str, connect_args: dict[str, Any]) -> None:
    if running.cancel is not None:
        running.cancel()
        return
    dbapi = running.dbapi
    if backend == "sqlite":
        dbapi.interrupt()
        return
    kill = _KILL.get(backend)
    if backend == "postgresql" and callable(getattr(dbapi, "cancel_safe", None)):
        dbapi.cancel_safe()  # psycopg 3: a cancel request on its own socket
        return
    if kill is not None and running.server_id is not None:
        _on_second_connection(engine, kill.format(id=int(running.server_id)), connect_args)
        return
    cancel = getattr(dbapi, "cancel", None)
    if callable(cancel):
        cancel()


def _on_second_connection(
    engine: Any, statement: str, connect_args: dict[str, Any], params: Any = None
) -> list[Any]:
    """Run ``statement`` on a new DB-API connection outside the pool (which may be full);
    the rows it returns."""
    dialect = engine.dialect
    cargs, cparams = dialect.create_connect_args(engine.url)
    cparams = {**cparams, **connect_args}
    conn = dialect.connect(*cargs, **cparams)
    try:
        cursor = conn.cursor()
        cursor.execute(statement, params)
        rows = list(cursor.fetchall()) if cursor.description else []
        cursor.close()
        return rows
    finally:
        conn.close()


def kill_marked(engine: Any, marker: str, connect_args: dict[str, Any]) -> None:
    """``KILL QUERY`` on MySQL/MariaDB for every statement carrying ``marker`` (a comment
    nbinfra put in it: a read through connectorx, whose connection id is not known)."""
    rows = _on_second_connection(
        engine,
        "SELECT ID FROM information_schema.PROCESSLIST "
        "WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
        connect_args,
        (f"%{marker}%",),
    )
    for (pid,) in rows:
        _on_second_connection(engine, f"KILL QUERY {int(pid)}", connect_args)
