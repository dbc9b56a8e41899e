"""HTTP-level error mapping every provider can reuse (one boundary per provider calls it).

- ``map_status_error``: an HTTP status + message -> our error (401/403 -> authentication
  naming the variable to set, 429 -> rate limit with ``Retry-After``, context-length
  markers or 413 -> context length, 5xx -> server error, other 4xx -> bad request).
- ``stainless_map``: the ``ErrorMap`` of the Stainless-generated SDKs (``openai``,
  ``groq``, ``anthropic``).
- ``parse_retry_after``: seconds from ``retry-after-ms`` / ``retry-after`` headers.

Transport failures any SDK shares are in ``nbinfra.llm.boundary.transport_map``.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from nbinfra.errors import (
    BadRequestError,
    ContextLengthError,
    LLMError,
    ProviderServerError,
    RateLimitError,
)
from nbinfra.llm.boundary import ErrorMap, timed_out, transport_map, unreachable

if TYPE_CHECKING:
    from nbinfra.llm._core import ProviderCore

__all__ = [
    "error_detail",
    "map_status_error",
    "parse_retry_after",
    "stainless_map",
]

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "reduce the length",
)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_detail(exc: Any) -> tuple[str, str]:
    """(message, code) from an SDK status error, shortened."""
    body = getattr(exc, "body", None)
    message = ""
    code = ""
    if isinstance(body, Mapping):
        error = body.get("error")
        inner: Mapping[str, Any] = error if isinstance(error, Mapping) else body
        message = str(inner.get("message") or "")
        code = str(inner.get("code") or inner.get("type") or "")
    if not message:
        message = str(getattr(exc, "message", "") or exc)
    message = " ".join(message.split())
    return (message[:300] + "...") if len(message) > 300 else message, code


def map_status_error(
    provider: ProviderCore, status: int, message: str, code: str, headers: Mapping[str, str]
) -> LLMError:
    """An HTTP error status from a provider -> our error (shared by every provider)."""
    kind = provider.kind
    text = f"{message} " + code
    if status in (401, 403):
        return provider.auth_error(f"HTTP {status}")
    if status == 429:
        retry_after = parse_retry_after(headers)
        wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        return RateLimitError(
            f"{kind} rate limit hit (HTTP 429){wait}: {message}",
            provider=kind,
            retry_after=retry_after,
        )
    if status == 413 or any(m in text.lower() for m in _CONTEXT_MARKERS):
        window = provider.context_window
        fits = f" (window: {window} tokens)" if window else ""
        return ContextLengthError(
            f"The prompt does not fit {kind}:{provider.model}'s context window{fits}: "
            f"{message.rstrip('.')}. Shorten it, or fit it with ContextWindowManager.",
            provider=kind,
        )
    if status >= 500:
        return ProviderServerError(f"{kind} failed (HTTP {status}): {message}", provider=kind)
    if status == 404:
        return BadRequestError(
            f"{kind} answered 404 (unknown model or path?): {message}; check the model name "
            f"and llm.providers.{kind}.base_url.",
            provider=kind,
        )
    return BadRequestError(f"{kind} rejected the request (HTTP {status}): {message}", provider=kind)


def stainless_map(sdk: ModuleType) -> ErrorMap:
    """The table of a Stainless-generated SDK (``openai``, ``groq``, ``anthropic``: the same
    exception classes), keyed by type; the most specific class wins."""

    def status(provider: ProviderCore, exc: Any) -> LLMError:
        message, code = error_detail(exc)
        headers = dict(exc.response.headers) if exc.response is not None else {}
        return map_status_error(provider, exc.status_code, message, code, headers)

    def shape(provider: ProviderCore, exc: Any) -> LLMError:
        return ProviderServerError(
            f"{provider.kind} sent a response in an unexpected shape: {exc}", provider=provider.kind
        )

    def connection(provider: ProviderCore, exc: Any) -> LLMError:
        # The SDK wraps the transport's exception: its type tells broken from unreachable.
        cause = exc.__cause__ or exc.__context__
        found = transport_map().translate(provider, cause) if cause is not None else None
        return found or unreachable(provider, cause if cause is not None else exc)

    return ErrorMap(
        {
            sdk.APITimeoutError: timed_out,
            sdk.APIStatusError: status,
            sdk.APIResponseValidationError: shape,
            sdk.APIConnectionError: connection,
        }
    )
