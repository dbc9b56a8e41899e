"""``BaseConnectionManager``: the base for blocking drivers (see ``base.py``).

The ``*_sync`` hooks run in the manager's worker thread and are awaited; ``await
self.to_thread(fn, ...)`` does the same for native operations. ``execute_query_sync``
serves the synchronous facade on the caller's thread for ``direct_sync`` backends.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from nbinfra.connections.base import ConnectionManager, log
from nbinfra.connections.settings import ConnectionSettings
from nbinfra.connections.types import QueryResult

__all__ = ["BaseConnectionManager"]

T = TypeVar("T")


class BaseConnectionManager(ConnectionManager):
    """Base for blocking drivers: ``*_sync`` hooks run in the manager's worker thread.

    ``max_workers`` bounds the threads per manager (1 serialises every call, for drivers
    whose connections are not thread-safe).
    """

    max_workers: ClassVar[int] = 4

    def __init__(
        self,
        settings: ConnectionSettings | Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(settings, name=name, **overrides)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    async def to_thread(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run blocking ``fn(*args, **kwargs)`` in the worker thread and await it."""
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.max_workers, thread_name_prefix=f"nbinfra-{self.kind}"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def execute_query_sync(
        self, query: Any, params: Any = None, *, limit: int | None = None
    ) -> QueryResult:
        """``execute_query`` on the caller's thread (for ``direct_sync`` backends)."""
        return self.call_sync(self._execute_sync, query, params, limit)

    def sql_sync(
        self,
        statement: str,
        params: Any = None,
        *,
        limit: int | None = None,
        frames: Mapping[str, object] | None = None,
    ) -> QueryResult:
        """``sql`` on the caller's thread (for ``direct_sync`` backends; one whose ``sql``
        is not ``execute_query``, or that takes ``frames``, overrides this too)."""
        self.check_frames(frames)
        return self.execute_query_sync(statement, params, limit=limit)

    def call_sync(self, fn: Callable[..., T], /, *args: Any) -> T:
        """``fn(*args)`` on the caller's thread, connecting first; errors translated."""
        if not self._connected:
            try:
                self._open_sync()
            except Exception as exc:
                raise self._error(exc, "connect", None) from exc
            self._connected = self._healthy = True
            log.info("%s '%s' connected to %s", self.kind, self.name, self.target)
        try:
            result = fn(*args)
        except Exception as exc:
            raise self._error(exc, "query", self.settings.timeout) from exc
        self._healthy = True
        return result

    async def _open(self) -> None:
        await self.to_thread(self._open_sync)

    async def _close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            self._close_sync()
            return
        try:
            await self._close_in(executor)
        finally:
            executor.shutdown(wait=False)

    async def _close_in(self, executor: concurrent.futures.Executor) -> None:
        """``_close_sync`` in the worker thread, after whatever runs there now.

        Shielded: a close that times out while queued still happens. At interpreter exit
        nbinfra's closers run after the worker threads stop taking work; nothing else uses
        the client then, so it is closed right here.
        """
        loop = asyncio.get_running_loop()
        try:
            closing = loop.run_in_executor(executor, self._close_sync)
        except RuntimeError:
            self._close_sync()
            return
        await asyncio.shield(closing)

    async def _ping(self) -> str | None:
        return await self.to_thread(self._ping_sync)

    async def _execute(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        return await self.to_thread(self._execute_sync, query, params, limit)

    @abc.abstractmethod
    def _open_sync(self) -> None: ...

    @abc.abstractmethod
    def _close_sync(self) -> None: ...

    @abc.abstractmethod
    def _ping_sync(self) -> str | None: ...

    @abc.abstractmethod
    def _execute_sync(self, query: Any, params: Any, limit: int | None) -> QueryResult: ...
