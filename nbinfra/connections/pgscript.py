"""Scripts and streams for PostgreSQL: ``execute_script``, ``stream``, and how one
statement runs (a server-side cursor when a limit is given).

A mixin for ``PostgresConnectionManager``: it uses the manager's ``_call``,
``_connection`` and the open transaction (``_tx``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from nbinfra._deadline import within
from nbinfra.connections._parts import ManagerParts
from nbinfra.connections.errormap import is_read_only_sql
from nbinfra.connections.pgpool import end_open_transaction
from nbinfra.connections.sqltext import controls_transaction, split_statements, to_pyformat
from nbinfra.connections.types import QueryResult
from nbinfra.errors import ConnError, QueryError

if TYPE_CHECKING:
    from nbinfra.connections.postgres import PostgresSettings

__all__ = ["ScriptMixin"]

T = TypeVar("T")


class ScriptMixin(ManagerParts):
    """``execute_script`` and ``stream`` on a PostgreSQL manager."""

    if TYPE_CHECKING:  # provided by the manager
        settings: PostgresSettings
        _tx: ContextVar[Any]

        def _connection(self) -> AbstractAsyncContextManager[Any]: ...
        def _is_idempotent(self, query: Any) -> bool: ...
        def _error(self, exc: BaseException, what: str, timeout: float | None) -> ConnError: ...
        async def connect(self) -> None: ...

    async def execute_script(
        self,
        query: str,
        params: Any = None,
        *,
        limit: int | None = None,
        autocommit: bool = False,
    ) -> list[QueryResult]:
        """Run every statement of ``query``; one result per statement.

        All or nothing: a script without its own ``BEGIN``/``COMMIT`` runs as one
        transaction, so a failing statement leaves no rows from the others.
        ``autocommit=True`` commits each statement as it runs instead.
        """
        return await self._call(
            lambda: self._run_script(query, params, limit, autocommit=autocommit),
            what="script",
            idempotent=self._is_idempotent(query),
        )

    async def _run_script(
        self, query: Any, params: Any, limit: int | None, *, autocommit: bool = False
    ) -> list[QueryResult]:
        if not isinstance(query, str):
            raise QueryError(f"postgres queries are SQL text, not {type(query).__name__}.")
        statements = split_statements(query) or [query]
        results: list[QueryResult] = []
        async with self._connection() as conn:
            if self._tx.get() is not None:  # inside transaction(): that block decides
                for statement in statements:
                    results.append(await self._run_one(conn, statement, params, limit))
                return results
            if len(statements) > 1 and not autocommit and not controls_transaction(statements):
                async with conn.transaction():
                    for statement in statements:
                        results.append(await self._run_one(conn, statement, params, limit))
                return results
            try:
                for statement in statements:
                    results.append(await self._run_one(conn, statement, params, limit))
            except BaseException:
                await end_open_transaction(conn)  # the script's own BEGIN, now failed
                raise
            if await end_open_transaction(conn):
                raise QueryError(
                    f"postgres '{self.name}': the script left its transaction open (BEGIN "
                    "without COMMIT) and it was rolled back; end it with COMMIT."
                )
        return results

    async def _run_one(
        self, conn: Any, statement: str, params: Any, limit: int | None
    ) -> QueryResult:
        sql, bound = to_pyformat(statement, params)
        start = time.perf_counter()
        if limit is not None and is_read_only_sql(statement):
            return await self._run_limited(conn, statement, sql, bound, limit, start)
        async with conn.cursor() as cur:
            await cur.execute(sql, bound)
            if cur.description is None:
                return QueryResult(
                    [],
                    [],
                    elapsed=time.perf_counter() - start,
                    rowcount=cur.rowcount,
                    statement=statement,
                )
            rows = await cur.fetchall() if limit is None else await cur.fetchmany(limit + 1)
            columns = [d.name for d in cur.description]
        truncated = limit is not None and len(rows) > limit
        return QueryResult(
            columns,
            rows[:limit] if truncated else rows,
            elapsed=time.perf_counter() - start,
            statement=statement,
            truncated=truncated,
        )

    async def _run_limited(
        self, conn: Any, statement: str, sql: str, bound: Any, limit: int, start: float
    ) -> QueryResult:
        # A server-side cursor, so only limit + 1 rows cross the network.
        async with self._server_cursor(conn) as cur:
            await cur.execute(sql, bound)
            rows = await cur.fetchmany(limit + 1)
            columns = [d.name for d in cur.description or []]
        truncated = len(rows) > limit
        return QueryResult(
            columns,
            rows[:limit],
            elapsed=time.perf_counter() - start,
            statement=statement,
            truncated=truncated,
        )

    @asynccontextmanager
    async def _server_cursor(self, conn: Any) -> AsyncIterator[Any]:
        name = f"nbinfra_{id(self):x}_{time.monotonic_ns():x}"
        if self._tx.get() is not None:
            async with conn.cursor(name=name) as cur:
                yield cur
        else:
            async with conn.transaction(), conn.cursor(name=name) as cur:
                yield cur

    async def stream(
        self, query: str, params: Any = None, *, batch_size: int | None = None
    ) -> AsyncIterator[QueryResult]:
        """Yield the result in batches of ``batch_size`` rows (a server-side cursor)."""
        size = batch_size or self.settings.batch_size
        sql, bound = to_pyformat(query, params)
        await self.connect()
        try:
            async with self._connection() as conn, self._server_cursor(conn) as cur:
                await cur.execute(sql, bound)
                columns = [d.name for d in cur.description or []]
                while True:
                    start = time.perf_counter()
                    rows = await within(cur.fetchmany(size), self.settings.timeout)
                    if not rows:
                        return
                    yield QueryResult(
                        columns, rows, elapsed=time.perf_counter() - start, statement=query
                    )
        except ConnError:
            raise
        except Exception as exc:
            raise self._error(exc, "stream", None) from exc
