"""Cohere's v2 Chat API as the nbinfra LLM kind ``cohere``, on the official ``cohere`` SDK.

Registered through the ``nbinfra.llms`` entry point, so ``nbinfra.llm("cohere")`` and
``LLMFactory.get_llm("cohere")`` build it; with no ``llm.providers.cohere`` entry in any
file the key is read from ``COHERE_API_KEY``. The SDK is imported when the first client
is built, never on import.

- ``cohere.AsyncClientV2`` gets an ``httpx.AsyncClient`` carrying our read and connect
  timeouts and ``max_retries=0`` (nbinfra's ``RetryPolicy`` retries); a call with its own
  ``timeout`` passes it in ``request_options``.
- Streams are Cohere's v2 SSE events (``message-start``, ``content-start``,
  ``content-delta``, ``content-end``, ``message-end``); the text comes from the
  ``content-delta`` events, the finish reason and usage from ``message-end``. A stream
  that ends without ``message-end``, or whose ``message-end`` reports an error, raises
  ``ProviderServerError`` (with the text received so far in ``partial``).
- Usage is ``usage.tokens`` (what the model read and wrote), else ``usage.billed_units``.
- Finish reasons are reported in the common vocabulary (``COMPLETE`` -> ``stop``,
  ``MAX_TOKENS`` -> ``length``); the provider's own value stays in ``raw``.
- The SDK's exception types map to nbinfra's errors in one table, ``cohere_errors``
  (transport failures: nbinfra's shared table).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from nbinfra.errors import LLMError, ProviderServerError
from nbinfra.llm.base import BaseLLMProvider, CallOptions, Completion, Delta, ProviderCore
from nbinfra.llm.boundary import ErrorMap
from nbinfra.llm.http_errors import map_status_error
from nbinfra.llm.types import Message, Usage

__all__ = ["CohereProvider", "StreamBroken", "cohere_errors", "finish_reason"]

FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR": "error",
    "TIMEOUT": "error",
}
_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}


def finish_reason(value: str | None) -> str | None:
    return FINISH_REASONS.get(value, value.lower()) if value else None


class StreamBroken(Exception):
    """A stream that ended badly without an HTTP error: no ``message-end``, or one that
    carries an error. Raised inside ``_stream``, translated through ``cohere_errors``."""


def _usage(usage: Any) -> Usage | None:
    """``tokens`` (what the model read and wrote), else ``billed_units``; None if neither."""
    if usage is None:
        return None
    for part in (getattr(usage, "tokens", None), getattr(usage, "billed_units", None)):
        if part is None:
            continue
        i, o = getattr(part, "input_tokens", None), getattr(part, "output_tokens", None)
        if i is not None and o is not None:
            return Usage(int(i), int(o))
    return None


def _message(body: Any) -> str:
    """The message of a Cohere error body (``{"id": ..., "message": ...}``), shortened."""
    found = body.get("message") if isinstance(body, Mapping) else body
    text = " ".join(str(found or "no message").split())
    return (text[:300] + "...") if len(text) > 300 else text


def _api_error(provider: ProviderCore, exc: Any) -> LLMError:
    """``ApiError`` (every status error the SDK raises: ``UnauthorizedError``,
    ``TooManyRequestsError``, ...) through nbinfra's status mapping (401/403/498 ->
    ``AuthenticationError``, 429 -> ``RateLimitError`` with ``Retry-After``, 400 "too many
    tokens" -> ``ContextLengthError``, 5xx -> ``ProviderServerError``); a status below 400
    is a 200 answer the SDK could not read."""
    status = exc.status_code or 0
    message = _message(exc.body)
    if status < 400:
        return ProviderServerError(
            f"{provider.kind} at {provider.where} sent a response it could not read "
            f"(HTTP {status}): {message[:120]}",
            provider=provider.kind,
        )
    if status == 498:  # Cohere's "invalid token"
        status = 401
    return map_status_error(provider, status, message, "", dict(exc.headers or {}))


def _stream_broken(provider: ProviderCore, exc: BaseException) -> LLMError:
    return ProviderServerError(f"{provider.kind} stream failed: {exc}", provider=provider.kind)


def cohere_errors() -> ErrorMap:
    """THE boundary's table: the ``cohere`` SDK's exception types -> nbinfra's errors.

    Transport failures (httpx timeouts, refused or broken connections) need no entry:
    nbinfra's shared transport table maps them by type.
    """
    from cohere.core import ApiError

    return ErrorMap({ApiError: _api_error, StreamBroken: _stream_broken})


class CohereProvider(BaseLLMProvider):
    """Command models through ``cohere.AsyncClientV2`` (its retries off, ours on)."""

    kind: ClassVar[str] = "cohere"
    env_key: ClassVar[str | None] = "COHERE_API_KEY"
    default_model: ClassVar[str] = "command-r-plus-08-2024"

    def _create_client(self) -> Any:
        import cohere
        import httpx

        timeout = httpx.Timeout(self.timeout, connect=min(self.connect_timeout, self.timeout))
        return cohere.AsyncClientV2(
            api_key=self.api_key(),
            base_url=self.base_url or None,
            timeout=None,  # the httpx client's timeouts apply (read and connect apart)
            max_retries=0,  # our RetryPolicy retries; the SDK's would multiply them
            httpx_client=httpx.AsyncClient(timeout=timeout, follow_redirects=True),
            log_warning_experimental_features=False,
        )

    async def _close_client(self, client: Any) -> None:
        await client.__aexit__(None, None, None)  # closes the httpx client it was given

    # -- request -------------------------------------------------------------------
    def _params(self, messages: list[Message], opts: CallOptions) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": opts.model,
            "messages": [
                {"role": _ROLES.get(m.role, "user"), "content": m.content} for m in messages
            ],
        }
        optional = {
            "temperature": opts.temperature,
            "max_tokens": opts.max_tokens,
            "p": opts.top_p,
            "seed": opts.seed,
            "stop_sequences": list(opts.stop) if opts.stop else None,
            "response_format": {"type": "json_object"} if opts.json else None,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        request_options: dict[str, Any] = {"max_retries": 0}
        if opts.timeout is not None:
            request_options["timeout_in_seconds"] = opts.timeout
        params["request_options"] = request_options
        return params

    # -- hooks ---------------------------------------------------------------------
    async def _check_model(self) -> int | None:
        info = await self.client.models.get(self.model)
        window = getattr(info, "context_length", None)
        return int(window) if isinstance(window, (int, float)) and window > 0 else None

    async def _complete(self, messages: list[Message], opts: CallOptions) -> Completion:
        resp = await self.client.chat(**self._params(messages, opts))
        content = getattr(resp.message, "content", None) or []
        text = "".join(getattr(item, "text", "") or "" for item in content)
        return Completion(text, None, finish_reason(resp.finish_reason), _usage(resp.usage), resp)

    async def _stream(
        self, messages: list[Message], opts: CallOptions
    ) -> AsyncIterator[str | Delta]:
        stream = self.client.chat_stream(**self._params(messages, opts))
        try:
            async for event in stream:
                kind = getattr(event, "type", "")
                if kind == "content-delta":
                    content = getattr(getattr(event.delta, "message", None), "content", None)
                    text = getattr(content, "text", None)
                    if text:
                        yield text
                elif kind == "message-end":
                    delta = event.delta
                    reason = getattr(delta, "finish_reason", None)
                    if getattr(delta, "error", None) or reason == "ERROR":
                        raise StreamBroken(delta.error or "the model reported an error")
                    yield Delta(
                        finish_reason=finish_reason(reason) or "stop",
                        usage=_usage(getattr(delta, "usage", None)),
                        raw=event,
                    )
                    return
        finally:
            await stream.aclose()
        raise StreamBroken("the stream ended before message-end (cut)")

    # -- the error boundary --------------------------------------------------------
    def error_map(self) -> ErrorMap:
        return cohere_errors()
