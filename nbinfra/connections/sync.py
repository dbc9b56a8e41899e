"""``nbinfra.conn(name)``: a synchronous handle on a session's connection manager.

``SyncConnection.query(sql)`` runs on nbinfra's background loop (``_loop.run_sync``), or
on the caller's thread for in-process engines (DuckDB's ``direct_sync``; an open Qdrant
local or Chroma store, see inline.py), where the loop hop would only add latency. Every
other coroutine method of the manager is available synchronously by attribute:
``conn.upsert(...)`` runs ``await manager.upsert(...)``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

from nbinfra import _loop
from nbinfra.connections.base import BaseConnectionManager, ConnectionManager
from nbinfra.connections.inline import NeedsLoop, run_here
from nbinfra.connections.settings import mask_text
from nbinfra.connections.types import HealthStatus, QueryResult
from nbinfra.errors import Interrupted, QueryError

if TYPE_CHECKING:
    from nbinfra.session import Session

__all__ = ["COMPONENT", "DEFAULT_CONNECTION", "SyncConnection", "conn"]

COMPONENT = "connection"
DEFAULT_CONNECTION = "duckdb"  # the embedded SQL default (DESIGN.md section 5)
T = TypeVar("T")


class SyncConnection:
    """Synchronous twin of a connection manager (the manager lives in the session).

    Made by ``nbinfra.conn(...)``, it asks the session for its manager on every use, so a
    manager rebuilt after its settings changed (``DATABASE_URL`` set later) is the one used.
    """

    def __init__(
        self,
        manager: ConnectionManager,
        resolve: Callable[[ConnectionManager], ConnectionManager] | None = None,
    ) -> None:
        self._manager = manager
        self._resolve = resolve

    @property
    def manager(self) -> ConnectionManager:
        if self._resolve is not None:
            self._manager = self._resolve(self._manager)
        return self._manager

    @property
    def name(self) -> str:
        return self.manager.name

    @property
    def kind(self) -> str:
        return self.manager.kind

    @property
    def target(self) -> str:
        return self.manager.target

    def query(self, query: Any, params: Any = None, limit: int | None = None) -> QueryResult:
        """Run ``query`` with bound ``params`` and return its rows."""
        manager = self.manager
        if manager.direct_sync and isinstance(manager, BaseConnectionManager):
            return manager.execute_query_sync(query, params, limit=limit)
        return _call(manager, manager.execute_query, query, params, limit=limit)

    def sql(
        self,
        statement: str,
        params: Any = None,
        limit: int | None = None,
        *,
        frames: Mapping[str, object] | None = None,
    ) -> QueryResult:
        """Run SQL (``manager.sql``) on a kind that speaks it, as ``%%conn`` does.

        ``frames`` maps table names to DataFrames (pandas, Polars, Arrow) that this
        statement reads by name, on kinds with ``frames_by_name`` (DuckDB): nothing is
        registered, and a real table of the same name wins. ``%%conn`` finds them among the
        notebook's variables; a Python caller passes them: ``sql(q, frames={"df": df})``.
        """
        manager = self.manager
        if not manager.speaks_sql:
            raise QueryError(f"{manager.kind} does not speak SQL; use query().")
        if _sql_here(manager):
            return manager.sql_sync(statement, params, limit=limit, frames=frames)
        manager.check_frames(frames)
        if type(manager).sql is ConnectionManager.sql:
            return self.query(statement, params, limit)
        extra = {"frames": frames} if frames else {}
        return _call(manager, manager.sql, statement, params, limit=limit, **extra)

    def profile(
        self, table: str, *, top: int = 3, frames: Mapping[str, object] | None = None
    ) -> QueryResult:
        """Per column of ``table``: type, count, nulls, distinct, min/max, mean/std (number
        columns) and the ``top`` most frequent values, computed in the engine by a few
        aggregate queries (the table is never pulled). ``table`` may be ``schema.table``;
        quote a part holding a dot: ``'"my.table"'``. ``frames`` as in ``sql``: profile a
        DataFrame by name on DuckDB or Spark (``profile("df", frames={"df": df})``)."""
        from nbinfra.connections.profile import profile

        manager = self.manager
        return profile(self, table, manager.profile_sql().dialect, top=top, frames=frames)

    def health(self) -> HealthStatus:
        """Ping the backend now."""
        return _loop.run_sync(self.manager.health_check())

    def is_healthy(self) -> bool:
        return self.manager.is_healthy()

    def connect(self) -> SyncConnection:
        _loop.run_sync(self.manager.connect())
        return self

    def close(self) -> None:
        _loop.run_sync(self.manager.disconnect())

    def __enter__(self) -> SyncConnection:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self.manager, name)
        if inspect.iscoroutinefunction(attr):
            return _sync_method(self.manager, attr)
        if inspect.isasyncgenfunction(attr):
            return _sync_iter(attr)
        return attr

    def __dir__(self) -> list[str]:
        public = [n for n in dir(self.manager) if not n.startswith("_")]
        return sorted(set(super().__dir__()) | set(public))

    def __repr__(self) -> str:
        return f"<SyncConnection {self.manager!r}>"


def _sql_here(manager: ConnectionManager) -> TypeGuard[BaseConnectionManager]:
    """Whether ``sql`` runs on the caller's thread: a ``direct_sync`` kind whose ``sql`` is
    ``execute_query``, or that gives its own ``sql_sync`` (DuckDB's takes frames)."""
    if not (manager.direct_sync and isinstance(manager, BaseConnectionManager)):
        return False
    cls = type(manager)
    return cls.sql is ConnectionManager.sql or cls.sql_sync is not BaseConnectionManager.sql_sync


def _run(manager: ConnectionManager, coro: Coroutine[Any, Any, T]) -> T:
    """``run_sync``; an interrupt (the coroutine is cancelled) says what it cancelled."""
    try:
        return _loop.run_sync(coro)
    except Interrupted:
        raise
    except KeyboardInterrupt:
        raise Interrupted(manager.interrupted) from None


def _call(
    manager: ConnectionManager, method: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kw: Any
) -> T:
    """``await method(...)``: on the caller's thread for an open in-process engine (no
    loop hop; see inline.py), else on nbinfra's loop."""
    if manager.runs_here:
        try:
            return run_here(method(*args, **kw))
        except NeedsLoop:
            pass  # nothing was retried here: the loop's path reconnects and retries
    return _run(manager, method(*args, **kw))


def _sync_method(manager: ConnectionManager, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        return _call(manager, method, *args, **kwargs)

    return call


def _sync_iter(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        return _loop.iterate_sync(method(*args, **kwargs))

    return call


def conn(
    name: str | None = None, *, session: Session | None = None, **overrides: Any
) -> SyncConnection:
    """The session's connection ``name`` (a configured name, a kind, or an inline
    ``kind:target`` such as ``sql:sqlite:///file.db``; default DuckDB).

    The manager is created on first use and kept in the session (``nbinfra.session()``
    unless ``session`` is given). ``overrides`` (``url=...``) are part of what it is kept
    under: ``conn("sql", url=a)`` and ``conn("sql", url=b)`` are two connections, and
    asking again with the same ones gives the same manager.
    """
    from nbinfra.connections.factory import create

    if session is None:
        from nbinfra.session import session as default_session

        session = default_session()
    current = session
    key = name or str(current.settings.get("default_connection", DEFAULT_CONNECTION))
    # Kept under a name with nothing secret in it (an inline URL's password is masked;
    # a keyed digest tells apart what the mask made alike).
    held = mask_text(key)
    if overrides or held != key:
        held = f"{held} {_digest({'key': key, **overrides})}"

    def make() -> ConnectionManager:
        return create(key, session=current, **overrides)

    def resolve(last: ConnectionManager | None = None) -> ConnectionManager:
        if last is not None and current.closed:
            return last
        return current.get(COMPONENT, held, make)

    return SyncConnection(resolve(), resolve)


_SALT = os.urandom(16)  # this process's key for _digest


def _digest(values: dict[str, Any]) -> str:
    """A short tag of ``values``, the same for the same values in this process; keyed
    with a random salt, so it says nothing of a secret among them."""
    text = repr(sorted((k, repr(v)) for k, v in values.items()))
    return "#" + hmac.new(_SALT, text.encode(), hashlib.sha256).hexdigest()[:12]
