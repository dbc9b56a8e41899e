"""Hugging Face on the official ``huggingface_hub`` SDK (``AsyncInferenceClient``).

Without ``base_url`` calls go to Hugging Face Inference Providers (``provider`` setting,
default ``auto``); with ``base_url`` to that server's OpenAI-compatible
``/v1/chat/completions`` (a TGI endpoint, a dedicated Inference Endpoint, vLLM).
The client has no timeout of its own, so ours is always set.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from nbinfra.errors import LLMError, ProviderServerError
from nbinfra.llm import LLMProvider, LLMRegistry
from nbinfra.llm._fixed_timeout import FixedTimeoutProvider
from nbinfra.llm.base import CallOptions, Completion, Delta, ProviderCore
from nbinfra.llm.boundary import ErrorMap, timed_out
from nbinfra.llm.http_errors import map_status_error
from nbinfra.llm.schema import OutputSchema
from nbinfra.llm.types import Message, Usage

__all__ = ["HuggingFaceProvider"]

# TGI's own finish reasons, in the common vocabulary
FINISH_REASONS = {"eos_token": "stop", "stop_sequence": "stop", "length": "length"}
# TGI's wording when a prompt does not fit: "`inputs` tokens + `max_new_tokens` must be <= N"
_CONTEXT = re.compile(r"inputs.{0,40}tokens.{0,80}must be <=|must have less than", re.I)


@LLMRegistry.register(LLMProvider.HUGGINGFACE)
class HuggingFaceProvider(FixedTimeoutProvider):
    """Chat completions through ``huggingface_hub.AsyncInferenceClient``."""

    kind = "huggingface"
    env_key = "HF_TOKEN"
    default_rank = 60
    public_endpoint = "Hugging Face Inference Providers"
    default_model = "meta-llama/Llama-3.1-8B-Instruct"
    extra_settings = frozenset({"provider"})

    def _new_client(self, timeout: float) -> Any:
        from huggingface_hub import AsyncInferenceClient

        if self.base_url:
            return AsyncInferenceClient(
                base_url=self.base_url, token=self.api_key(), timeout=timeout
            )
        return AsyncInferenceClient(
            provider=self.settings.extra.get("provider") or "auto",
            token=self.api_key(),
            timeout=timeout,
        )

    def _params(self, messages: list[Message], opts: CallOptions) -> dict[str, Any]:
        params: dict[str, Any] = {
            "messages": [m.to_dict() for m in messages],
            "model": opts.model,
        }
        if opts.temperature is not None:
            params["temperature"] = opts.temperature
        if opts.max_tokens is not None:
            params["max_tokens"] = opts.max_tokens
        if opts.top_p is not None:
            params["top_p"] = opts.top_p
        if opts.stop:
            params["stop"] = list(opts.stop)
        if opts.seed is not None:
            params["seed"] = opts.seed
        if opts.schema is not None:
            params["response_format"] = self._schema_format(opts.schema)
        elif opts.json:
            params["response_format"] = {"type": "json_object"}
        return params

    def _schema_format(self, schema: OutputSchema) -> dict[str, Any]:
        """``response_format`` for ``schema=``: TGI's grammar (``{"type": "json", "value":
        schema}``) on a ``base_url`` server, OpenAI's strict ``json_schema`` on Inference
        Providers (OpenAI-compatible routes, which want the strict form)."""
        if self.base_url:
            return {"type": "json", "value": schema.json_schema}
        return {
            "type": "json_schema",
            "json_schema": {"name": schema.name, "schema": schema.strict_schema, "strict": True},
        }

    # -- hooks ---------------------------------------------------------------------
    async def _check_model(self) -> int | None:
        # No model lookup is common to TGI and Inference Providers; one token of chat
        # proves the key, the server and the model at once.
        await self.client.chat_completion(
            messages=[{"role": "user", "content": "ping"}], model=self.model, max_tokens=1
        )
        return None

    async def _complete(self, messages: list[Message], opts: CallOptions) -> Completion:
        async with self._client_for(opts) as client:
            resp = await client.chat_completion(**self._params(messages, opts))
        choice = resp.choices[0] if resp.choices else None
        content = (choice.message.content or "") if choice is not None else ""
        return Completion(
            content,
            resp.model or None,
            _finish_reason(choice.finish_reason if choice is not None else None),
            _usage(resp),
            resp,
        )

    async def _stream(
        self, messages: list[Message], opts: CallOptions
    ) -> AsyncIterator[str | Delta]:
        async with self._client_for(opts) as client:
            stream = await client.chat_completion(
                **self._params(messages, opts),
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                text = ""
                finish = None
                if chunk.choices:
                    choice = chunk.choices[0]
                    if choice.delta is not None:
                        text = choice.delta.content or ""
                    finish = _finish_reason(choice.finish_reason)
                usage = _usage(chunk)
                if text or finish or usage is not None:
                    yield Delta(text, finish, usage, chunk.model or None, chunk)

    # -- the error boundary --------------------------------------------------------
    def error_map(self) -> ErrorMap:
        from huggingface_hub import errors

        return ErrorMap(
            {
                errors.InferenceTimeoutError: timed_out,
                errors.HfHubHTTPError: _http_error,
                # error events inside a stream
                errors.OverloadedError: lambda p, e: map_status_error(p, 503, _short(e), "", {}),
                errors.ValidationError: lambda p, e: map_status_error(
                    p, 422, _short(e), _context_code(_short(e)), {}
                ),
                errors.TextGenerationError: lambda p, e: ProviderServerError(
                    f"huggingface failed mid-stream: {_short(e)}", provider=p.kind
                ),
            }
        )


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _context_code(message: str) -> str:
    return "context_length_exceeded" if _CONTEXT.search(message) else ""


def _http_error(provider: ProviderCore, exc: Any) -> LLMError:
    response = exc.response
    message = _server_message(exc)
    return map_status_error(
        provider, response.status_code, message, _context_code(message), dict(response.headers)
    )


def _finish_reason(value: str | None) -> str | None:
    return FINISH_REASONS.get(value, value) if value else None


def _usage(obj: Any) -> Usage | None:
    usage = getattr(obj, "usage", None)
    if usage is None:
        return None
    return Usage(int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0))


def _server_message(exc: Any) -> str:
    """The server's own words (TGI: ``{"error": ..., "error_type": ...}``), shortened."""
    message = str(getattr(exc, "server_message", "") or "")
    if not message:
        try:
            body = exc.response.json()
        except Exception:  # noqa: BLE001 - not JSON: fall back to the text
            body = None
        if isinstance(body, dict):
            error = body.get("error")
            message = str(error.get("message") if isinstance(error, dict) else error or "")
        if not message:
            message = str(getattr(exc.response, "text", "") or exc)
    message = " ".join(message.split())
    return (message[:300] + "...") if len(message) > 300 else message
