"""HTTP-level error mapping every provider can reuse (one boundary per provider calls it).

- ``map_status_error``: an HTTP status + message -> our error (401/403 -> authentication
  naming the variable to set, 429 -> rate limit with ``Retry-After``, context-length
  markers or 413 -> context length, 5xx -> server error, other 4xx -> bad request).
- ``map_stainless_error``: the exceptions of the Stainless-generated SDKs (``openai``,
  ``groq``, ``anthropic``) -> the above.
- ``parse_retry_after``: seconds from ``retry-after-ms`` / ``retry-after`` headers.
- ``generic_error``: transport failures any SDK shares (timeouts, sockets, bad JSON).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from nbinfra._secrets import mask_url
from nbinfra.errors import (
    BadRequestError,
    ContextLengthError,
    LLMError,
    ProviderServerError,
    RateLimitError,
)

if TYPE_CHECKING:
    from nbinfra.llm.base import BaseLLMProvider

__all__ = [
    "error_detail",
    "generic_error",
    "map_stainless_error",
    "map_status_error",
    "parse_retry_after",
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
    provider: BaseLLMProvider, status: int, message: str, code: str, headers: Mapping[str, str]
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


def map_stainless_error(
    provider: BaseLLMProvider, exc: BaseException, sdk: ModuleType
) -> LLMError | None:
    """Map an exception of a Stainless-generated SDK (``openai``, ``groq``, ``anthropic``:
    same exception names) to our tree; ``None`` when it is not one of the SDK's."""
    if isinstance(exc, sdk.APITimeoutError):
        return provider.timeout_error()
    if isinstance(exc, sdk.APIStatusError):
        message, code = error_detail(exc)
        headers = dict(exc.response.headers) if exc.response is not None else {}
        return map_status_error(provider, exc.status_code, message, code, headers)
    if isinstance(exc, sdk.APIResponseValidationError):
        return ProviderServerError(
            f"{provider.kind} sent a response in an unexpected shape: {exc}", provider=provider.kind
        )
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        name = type(cause).__name__ if cause is not None else "connection error"
        where = mask_url(provider.base_url) if provider.base_url else "the default endpoint"
        if cause is not None and ("Protocol" in name or "Read" in name):
            return ProviderServerError(
                f"The connection to {provider.kind} at {where} broke mid-response ({name}).",
                provider=provider.kind,
            )
        return ProviderServerError(
            f"Cannot reach {provider.kind} at {where} ({name}); check that it runs and "
            f"llm.providers.{provider.kind}.base_url.",
            provider=provider.kind,
        )
    return None


def generic_error(provider: BaseLLMProvider, exc: BaseException) -> LLMError:
    """Transport-level failures every SDK shares (httpx, sockets, bad JSON)."""
    name = type(exc).__name__
    if isinstance(exc, TimeoutError) or "Timeout" in name:
        return provider.timeout_error()
    where = f" at {mask_url(provider.base_url)}" if provider.base_url else ""
    if isinstance(exc, ValueError) and ("JSON" in name or "json" in str(exc).lower()):
        return ProviderServerError(
            f"{provider.kind}{where} sent a response that is not valid JSON ({name}).",
            provider=provider.kind,
        )
    if "Protocol" in name or "ReadError" in name or "Incomplete" in name:
        return ProviderServerError(
            f"The connection to {provider.kind}{where} broke mid-response ({name}).",
            provider=provider.kind,
        )
    if isinstance(exc, OSError) or "Connect" in name:
        return ProviderServerError(
            f"Cannot reach {provider.kind}{where} ({name}); check that it runs and the "
            f"base_url in llm.providers.{provider.kind}.",
            provider=provider.kind,
        )
    return ProviderServerError(
        f"{provider.kind} call failed: {name}: {exc}", provider=provider.kind
    )
