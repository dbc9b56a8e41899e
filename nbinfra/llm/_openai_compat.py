"""What OpenAI, Azure OpenAI and Groq share: the chat-completions wire shape and an SDK
family (Stainless-generated, same exception names). Imported only by those providers.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Mapping
from types import ModuleType
from typing import Any, ClassVar

from nbinfra._secrets import mask_url
from nbinfra.errors import (
    BadRequestError,
    ContextLengthError,
    LLMError,
    ProviderServerError,
    RateLimitError,
)
from nbinfra.llm.base import BaseLLMProvider, CallOptions, Completion, Delta
from nbinfra.llm.types import Message, Usage

__all__ = ["OpenAICompatibleProvider", "map_status_error", "parse_retry_after"]

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


def _detail(exc: Any) -> tuple[str, str]:
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


class OpenAICompatibleProvider(BaseLLMProvider):
    """A provider speaking OpenAI chat completions through an OpenAI-family SDK."""

    sdk_name: ClassVar[str] = "openai"
    max_tokens_param: ClassVar[str] = "max_tokens"
    ask_stream_usage: ClassVar[bool] = True  # send stream_options.include_usage

    def _sdk(self) -> ModuleType:
        import importlib

        return importlib.import_module(self.sdk_name)

    def _sdk_timeout(self, seconds: float | None = None) -> Any:
        read = seconds if seconds is not None else self.timeout
        return self._sdk().Timeout(read, connect=min(self.connect_timeout, read))

    # -- request -------------------------------------------------------------------
    def _params(
        self, messages: list[Message], opts: CallOptions, *, stream: bool
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": opts.model,
            "messages": [m.to_dict() for m in messages],
        }
        if opts.temperature is not None:
            params["temperature"] = opts.temperature
        if opts.max_tokens is not None:
            params[self.max_tokens_param] = opts.max_tokens
        if opts.top_p is not None:
            params["top_p"] = opts.top_p
        if opts.stop:
            params["stop"] = list(opts.stop)
        if opts.seed is not None:
            params["seed"] = opts.seed
        if opts.response_format == "json":
            params["response_format"] = {"type": "json_object"}
        if opts.timeout is not None:
            params["timeout"] = self._sdk_timeout(opts.timeout)
        if stream:
            params["stream"] = True
            if self.ask_stream_usage:
                params["stream_options"] = {"include_usage": True}
        return params

    # -- hooks ---------------------------------------------------------------------
    async def _check_model(self) -> int | None:
        info = await self.client.models.retrieve(self.model)
        return _window_of(info)

    async def _complete(self, messages: list[Message], opts: CallOptions) -> Completion:
        resp = await self.client.chat.completions.create(
            **self._params(messages, opts, stream=False)
        )
        choice = resp.choices[0] if resp.choices else None
        content = (choice.message.content or "") if choice is not None else ""
        return Completion(
            content=content,
            model=resp.model or None,
            finish_reason=choice.finish_reason if choice is not None else None,
            usage=self._usage(resp),
            raw=resp,
        )

    async def _stream(self, messages: list[Message], opts: CallOptions) -> AsyncIterator[Delta]:
        stream = await self.client.chat.completions.create(
            **self._params(messages, opts, stream=True)
        )
        try:
            async for chunk in stream:
                text = ""
                finish = None
                # Azure sends a first chunk with empty ``choices`` (content-filter results).
                if chunk.choices:
                    choice = chunk.choices[0]
                    if choice.delta is not None:
                        text = choice.delta.content or ""
                    finish = choice.finish_reason
                # Usage comes on the last chunks only (finish, or empty choices).
                usage = self._usage(chunk) if finish or not chunk.choices else None
                if text or finish or usage is not None:
                    yield Delta(text, finish, usage, chunk.model or None, chunk)
        finally:
            await stream.close()

    async def _embed(self, texts: list[str], model: str) -> list[list[float]]:
        resp = await self.client.embeddings.create(model=model, input=texts)
        ordered = sorted(resp.data, key=lambda d: d.index)
        return [list(d.embedding) for d in ordered]

    def _usage(self, obj: Any) -> Usage | None:
        usage = getattr(obj, "usage", None)
        if usage is None:
            return None
        return Usage(int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0))

    # -- the error boundary --------------------------------------------------------
    def _map_error(self, exc: BaseException) -> LLMError | None:
        sdk = self._sdk()
        if isinstance(exc, sdk.APITimeoutError):
            return self.timeout_error()
        if isinstance(exc, sdk.APIStatusError):
            message, code = _detail(exc)
            headers = dict(exc.response.headers) if exc.response is not None else {}
            return map_status_error(self, exc.status_code, message, code, headers)
        if isinstance(exc, sdk.APIResponseValidationError):
            return ProviderServerError(
                f"{self.kind} sent a response in an unexpected shape: {exc}", provider=self.kind
            )
        if isinstance(exc, sdk.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            name = type(cause).__name__ if cause is not None else "connection error"
            where = mask_url(self.base_url) if self.base_url else "the default endpoint"
            if cause is not None and ("Protocol" in name or "Read" in name):
                return ProviderServerError(
                    f"The connection to {self.kind} at {where} broke mid-response ({name}).",
                    provider=self.kind,
                )
            return ProviderServerError(
                f"Cannot reach {self.kind} at {where} ({name}); check that it runs and "
                f"llm.providers.{self.kind}.base_url.",
                provider=self.kind,
            )
        return None


def _window_of(info: Any) -> int | None:
    """The context window some OpenAI-compatible servers put on a model object."""
    extra = getattr(info, "model_extra", None) or {}
    for key in ("context_window", "context_length", "max_model_len", "max_context_length"):
        value = extra.get(key, getattr(info, key, None))
        if isinstance(value, int) and value > 0:
            return value
    return None
