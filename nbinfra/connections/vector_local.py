"""Vector stores whose engine can run in this process (Qdrant local mode, Chroma).

In-process engines are called where the caller is (no worker-thread hop): the facade's
calls on the caller's own thread once the engine is open (see inline.py), an ``await``
on the awaiting loop. A server URL, or ``inline: false``, uses the worker thread.
The one-time open (importing the engine, building the client, loading a local folder)
takes seconds, so it always runs in the worker thread and the loop keeps serving other
tasks meanwhile; ``%conn list`` reports an engine not opened yet as ``not started``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from nbinfra._loop import run_sync
from nbinfra.connections.base import BaseConnectionManager
from nbinfra.connections.types import QueryResult
from nbinfra.connections.vector import VectorStore, VectorStoreSettings
from nbinfra.errors import ConnectionUnavailableError

__all__ = ["LocalEngineSettings", "LocalEngineVectorStore"]

T = TypeVar("T")


@dataclass
class LocalEngineSettings(VectorStoreSettings):
    """Settings shared by stores that run either in-process or against a server."""

    url: str = ""
    # None: inline when there is no url. An inline call blocks the loop while it runs and
    # no timeout can interrupt it.
    inline: bool | None = None


class LocalEngineVectorStore(VectorStore, BaseConnectionManager):
    """Base for Qdrant and Chroma managers: inline calls for in-process engines.

    Open and close always run in the manager's one worker thread, in order, whatever
    ``inline`` says; with ``inline`` every other call runs on the caller's loop.
    """

    settings: LocalEngineSettings
    client: Any
    max_workers: ClassVar[int] = 1  # open, close and a retried open never overlap

    @property
    def pending_start(self) -> str | None:
        """The in-process engine before its first open (importing it and loading its
        folder take seconds), so ``%conn list`` leaves it for first use."""
        if self.connected or self.settings.url:
            return None
        return f"the in-process {self.kind} engine ({self.target})"

    def _execute_sync(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        return run_sync(self._execute(query, params, limit))

    @property
    def inline(self) -> bool:
        """True when the engine runs in this process and is called where the caller is."""
        inline = self.settings.inline
        return bool(inline or (inline is None and not self.settings.url))

    @property
    def runs_here(self) -> bool:
        """Open and in-process: the facade's calls run on the caller's thread."""
        return self._connected and self.inline

    async def to_thread(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Blocking ``fn`` in the worker thread, or right here for in-process engines."""
        if self.inline:
            return fn(*args, **kwargs)
        return await super().to_thread(fn, *args, **kwargs)

    async def _open(self) -> None:
        # The base class's worker thread, not the inline override above.
        await super().to_thread(self._reopen_sync)

    def _reopen_sync(self) -> None:
        if self.client is not None:
            # Left by an open whose connect timed out or was cancelled: a second client on
            # the same folder would be refused (Qdrant locks it), and this one would leak.
            self._close_sync()
        self._open_sync()

    async def _close(self) -> None:
        executor = self._executor
        if executor is None:
            self._close_sync()
            return
        # The thread is kept, so a later open queues behind this close instead of running
        # beside it.
        await self._close_in(executor)

    def _require(self) -> Any:
        if self.client is None:
            raise ConnectionUnavailableError(f"{self.kind} '{self.name}' is not connected.")
        return self.client
