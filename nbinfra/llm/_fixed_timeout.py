"""Providers whose SDK client takes its timeout only when it is built (Hugging Face, Ollama).

The shared client has the provider's timeout; a call with another ``timeout`` gets a twin
client built with it, closed when the call ends.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from nbinfra.llm.base import BaseLLMProvider, CallOptions

__all__ = ["FixedTimeoutProvider"]


class FixedTimeoutProvider(BaseLLMProvider):
    """Builds clients with ``_new_client(timeout)``; ``_client_for(opts)`` picks one."""

    @abstractmethod
    def _new_client(self, timeout: float) -> Any:
        """An SDK client whose calls time out after ``timeout`` seconds."""

    def _create_client(self) -> Any:
        return self._new_client(self.timeout)

    async def _close_client(self, client: Any) -> None:
        await client.close()

    @asynccontextmanager
    async def _client_for(self, opts: CallOptions) -> AsyncIterator[Any]:
        """The shared client, or a twin for a call with its own timeout (closed after)."""
        if opts.timeout is None or opts.timeout == self.timeout:
            yield self.client
            return
        twin = self._new_client(opts.timeout)
        try:
            yield twin
        finally:
            await self._close_client(twin)
