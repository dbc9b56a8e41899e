"""``ClientProvider``: the provider's one SDK client, its lifecycle and the retry loop.

The client lives on nbinfra's loop (the same policy as async connections): a call
awaited from any other loop is forwarded there by ``nbinfra._loop``. Every call runs
inside the error boundary (``nbinfra.llm.boundary``) and our ``RetryPolicy``, with the
SDK's own retries off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Self, TypeVar

from nbinfra import _loop
from nbinfra._deadline import within
from nbinfra._secrets import mask_url
from nbinfra.errors import AuthenticationError, LLMError, LoopError
from nbinfra.llm._core import ProviderCore
from nbinfra.llm.boundary import boundary
from nbinfra.llm.calls import CallOptions
from nbinfra.logs import get_logger

__all__ = ["ClientProvider"]

T = TypeVar("T")
log = get_logger("nbinfra.llm.base")


class ClientProvider(ProviderCore):
    """A provider with its SDK client, ``initialize``/``aclose`` and retried calls."""

    async def initialize(self) -> None:
        """Check credentials and reachability, and learn the model's context window."""
        if not _loop.in_loop_thread():
            return await _loop.run_async(self.initialize())
        self._require_key()
        await self._ensure_client()
        window = await self._with_retries(self._check_model, self.timeout)
        if window:
            self._context_window = window
        self._initialized = True
        log.info(
            "llm %s ready: model=%s context_window=%s%s",
            self.name,
            self._model,
            self.context_window,
            f" base_url={mask_url(self.base_url)}" if self.base_url else "",
        )

    async def aclose(self) -> None:
        """Close the SDK client (idempotent), on nbinfra's loop where it lives."""
        self._initialized = False
        if self._client is None:
            return
        if not _loop.in_loop_thread():
            try:
                return await _loop.run_async(self.aclose())
            except LoopError:  # nbinfra's loop has shut down: nothing left to close
                self._client = self._client_loop = None
                return
        client, self._client = self._client, None
        home, self._client_loop = self._client_loop, None
        if home is None or home is asyncio.get_running_loop():
            await self._close_client(client)

    async def __aenter__(self) -> Self:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _close_client(self, client: Any) -> None:
        for name in ("aclose", "close"):
            method = getattr(client, name, None)
            if method is not None:
                result = method()
                if asyncio.iscoroutine(result):
                    await result
                return

    def _require_key(self) -> None:
        if self.needs_key and not self.settings.api_key:
            raise AuthenticationError(
                f"No API key for {self.kind}: set {self.api_key_env} or "
                f"llm.providers.{self.kind}.api_key in resources/application-llm.yaml.",
                provider=self.kind,
            )

    async def _ensure_client(self) -> Any:
        """The client, on nbinfra's loop (the calls run there; see ``client``)."""
        loop = asyncio.get_running_loop()
        if self._client_loop is not loop:
            if self._client is not None and self._client_loop is not None:
                # An earlier nbinfra loop (stopped at shutdown, or the parent's after a
                # fork): its connections cannot be used or closed here.
                log.info("llm %s: its event loop stopped; a new client here", self.name)
                self._client = None
            self._client_loop = loop
        return self.client

    @property
    def client(self) -> Any:
        """The provider's one SDK client (created on first use).

        Like every async resource of nbinfra it lives on nbinfra's loop: ``generate``,
        ``embed``, the streams, ``initialize`` and ``aclose`` awaited from another loop (a
        notebook's top-level ``await``) run there through ``nbinfra._loop``, so one
        client and its connection pool serve every caller.
        """
        found = self._client
        if found is None:
            self._require_key()
            found = self._client = self._create_client()
            log.info(
                "llm %s: client ready (%s, timeout %g s, connect %g s, retries %d)",
                self.name,
                mask_url(self.base_url) if self.base_url else "default endpoint",
                self.timeout,
                self.connect_timeout,
                self.retry.max_retries,
            )
        return found

    def _call_timeout(self, opts: CallOptions) -> float:
        return opts.timeout if opts.timeout is not None else self.timeout

    async def _with_retries(self, call: Callable[[], Awaitable[T]], timeout: float) -> T:
        attempt = 0
        while True:
            try:
                return await self._attempt(call, timeout)
            except LLMError as error:
                attempt += 1
                await self._back_off(attempt, error)

    async def _attempt(self, call: Callable[[], Awaitable[T]], timeout: float) -> T:
        """One try of ``call`` inside the boundary, with no retry (``map`` retries itself)."""
        # The outer guard sits just past the SDK's own timeout, so the SDK's error (with
        # its details) usually wins; it only matters for SDKs that ignore their timeout.
        guard = timeout + self.connect_timeout
        with boundary(self, timeout):
            try:
                return await within(call(), guard)
            except TimeoutError as exc:  # the guard: name the limit that was hit
                if isinstance(exc, LLMError):
                    raise
                raise self.timeout_error(timeout) from exc

    async def _back_off(self, attempt: int, error: LLMError) -> None:
        """Wait before retry ``attempt``, or raise ``error`` when the policy says stop."""
        wait = self.retry.delay(attempt, error)
        if wait is None:
            raise error
        log.warning(
            "llm %s: %s; retry %d/%d in %.2f s",
            self.name,
            type(error).__name__,
            attempt,
            self.retry.max_retries,
            wait,
        )
        await asyncio.sleep(wait)
