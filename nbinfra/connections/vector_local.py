"""Vector stores whose engine can run in this process (Qdrant local mode, Chroma).

In-process engines are called on the caller's loop (no worker-thread hop: measured
cheaper than a small search); a server URL, or ``inline: false``, uses the worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

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
    """Base for Qdrant and Chroma managers: inline calls for in-process engines."""

    settings: LocalEngineSettings
    client: Any

    def _execute_sync(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        return run_sync(self._execute(query, params, limit))

    async def to_thread(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Blocking ``fn`` in the worker thread, or right here for in-process engines."""
        inline = self.settings.inline
        if inline or (inline is None and not self.settings.url):
            return fn(*args, **kwargs)
        return await super().to_thread(fn, *args, **kwargs)

    def _require(self) -> Any:
        if self.client is None:
            raise ConnectionUnavailableError(f"{self.kind} '{self.name}' is not connected.")
        return self.client
