"""What managers over one blocking SDK client share (MongoDB, S3, Jira, Confluence).

``_open_sync`` builds the client and hands it to ``_keep`` with a first round trip, which
closes it when that fails; ``client`` is the live one; ``_op`` runs a native operation in
the worker thread with the base class's timeout, error translation and retries.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from nbinfra.connections.base import BaseConnectionManager
from nbinfra.errors import ConnectionUnavailableError

__all__ = ["ClientManager"]

T = TypeVar("T")


class ClientManager(BaseConnectionManager):
    """A blocking driver client, opened in the worker thread and closed once."""

    label: ClassVar[str] = ""  # the backend in messages: "MongoDB", "S3", "Jira"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: Any = None

    def _keep(self, client: Any, check: Callable[[Any], object]) -> None:
        """Keep ``client`` once ``check(client)`` passed; close it when it did not."""
        try:
            check(client)
        except BaseException:
            client.close()
            raise
        # A client is left here by a connect that was cancelled after this open began.
        stale, self._client = self._client, client
        if stale is not None:
            stale.close()

    def _close_sync(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    @property
    def client(self) -> Any:
        """The driver's client (connect first)."""
        client = self._client
        if client is None:
            raise ConnectionUnavailableError(
                f"{self.label} connection '{self.name}' is closed; it reconnects on next use."
            )
        return client

    async def _op(
        self, what: str, fn: Callable[..., T], *args: Any, idempotent: bool = True, **kw: Any
    ) -> T:
        """Run blocking ``fn`` in the worker thread with the base's timeout and retries."""
        call = functools.partial(self.to_thread, fn, *args, **kw)
        return await self._call(call, what=what, idempotent=idempotent)
