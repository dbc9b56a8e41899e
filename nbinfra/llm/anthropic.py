"""Anthropic's Messages API on the official ``anthropic`` SDK.

System messages travel as the top-level ``system`` field; the stream's
``message_start`` carries the input tokens and ``message_delta`` the output tokens.
Finish reasons are reported in the common vocabulary (``end_turn`` -> ``stop``,
``max_tokens`` -> ``length``); the provider's own value stays in ``raw``. ``schema=`` is a
forced tool (``tools`` with the schema as ``input_schema``, ``tool_choice`` naming it); the
answer is the tool call's input, as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from nbinfra.errors import BadRequestError, LLMError
from nbinfra.llm import LLMProvider, LLMRegistry
from nbinfra.llm.base import BaseLLMProvider, CallOptions, Completion, Delta, ProviderCore
from nbinfra.llm.boundary import ErrorMap
from nbinfra.llm.http_errors import error_detail, map_status_error, stainless_map
from nbinfra.llm.types import Message, Usage
from nbinfra.logs import get_logger

__all__ = ["AnthropicProvider"]

log = get_logger(__name__)

DEFAULT_MAX_TOKENS = 4096  # the API requires max_tokens; used when neither call nor config sets it
JSON_INSTRUCTION = "Answer with one valid JSON object and nothing else."
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Error types a stream can announce mid-way (``event: error``), with the HTTP status
# the same failure has outside a stream.
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def finish_reason(value: str | None) -> str | None:
    return FINISH_REASONS.get(value, value) if value else None


def _prompt_tokens(usage: object) -> int:
    """The whole prompt: Anthropic counts cache reads and writes apart from input_tokens."""
    names = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    return sum(int(getattr(usage, name, None) or 0) for name in names)


@LLMRegistry.register(LLMProvider.ANTHROPIC)
class AnthropicProvider(BaseLLMProvider):
    """Claude models through ``anthropic.AsyncAnthropic`` (its retries off, ours on)."""

    kind = "anthropic"
    env_key = "ANTHROPIC_API_KEY"
    default_rank = 20
    default_model = "claude-3-5-haiku-latest"

    def _sdk_timeout(self, seconds: float | None = None) -> Any:
        import anthropic

        read = seconds if seconds is not None else self.timeout
        return anthropic.Timeout(read, connect=min(self.connect_timeout, read))

    def _create_client(self) -> Any:
        import anthropic

        return anthropic.AsyncAnthropic(
            api_key=self.api_key(),
            base_url=self.base_url or None,
            timeout=self._sdk_timeout(),
            max_retries=0,  # our RetryPolicy retries; the SDK's would multiply them
        )

    # -- request -------------------------------------------------------------------
    def _params(self, messages: list[Message], opts: CallOptions) -> dict[str, Any]:
        system = [m.content for m in messages if m.role == "system"]
        if opts.json and opts.schema is None:
            system.append(JSON_INSTRUCTION)  # Anthropic has no schema-free JSON mode
        turns = [
            {"role": "assistant" if m.role == "assistant" else "user", "content": m.content}
            for m in messages
            if m.role != "system"
        ]
        info = self.model_info(opts.model)
        params: dict[str, Any] = {
            "model": opts.model,
            "messages": turns,
            "max_tokens": opts.max_tokens
            or min(DEFAULT_MAX_TOKENS, info.max_output_tokens or DEFAULT_MAX_TOKENS),
        }
        if system:
            params["system"] = "\n\n".join(system)
        if opts.stop:
            params["stop_sequences"] = list(opts.stop)
        if opts.schema is not None:
            # Structured output: one tool whose input is the schema, and the model forced to
            # call it; the answer is the tool call's input (see _complete).
            params["tools"] = [
                {
                    "name": opts.schema.name,
                    "description": f"Give the answer as {opts.schema.name}.",
                    "input_schema": opts.schema.json_schema,
                }
            ]
            params["tool_choice"] = {"type": "tool", "name": opts.schema.name}
        # Sampling options go in the body directly: not every SDK version has them as
        # parameters, and the API accepts them either way.
        extra: dict[str, Any] = {}
        if opts.temperature is not None:
            if opts.temperature > 1.0:
                raise BadRequestError(
                    f"anthropic takes temperature between 0 and 1, got {opts.temperature:g}.",
                    provider=self.kind,
                )
            extra["temperature"] = opts.temperature
        if opts.top_p is not None:
            extra["top_p"] = opts.top_p
        if extra:
            params["extra_body"] = extra
        if opts.seed is not None:
            log.debug("anthropic has no seed option; seed=%s is not sent", opts.seed)
        if opts.timeout is not None:
            params["timeout"] = self._sdk_timeout(opts.timeout)
        return params

    # -- hooks ---------------------------------------------------------------------
    async def _check_model(self) -> int | None:
        info = await self.client.models.retrieve(self.model)
        window = getattr(info, "max_input_tokens", None)
        return window if isinstance(window, int) and window > 0 else None

    async def _complete(self, messages: list[Message], opts: CallOptions) -> Completion:
        resp = await self.client.messages.create(**self._params(messages, opts))
        text = "".join(block.text for block in resp.content if getattr(block, "type", "") == "text")
        finish = finish_reason(resp.stop_reason)
        if opts.schema is not None:
            called = [b for b in resp.content if getattr(b, "type", "") == "tool_use"]
            if called:  # the forced tool's input is the structured answer
                text = json.dumps(called[0].input)
                finish = "stop" if finish == "tool_calls" else finish
        usage = None
        if resp.usage is not None:
            usage = Usage(_prompt_tokens(resp.usage), int(resp.usage.output_tokens or 0))
        return Completion(text, resp.model or None, finish, usage, resp)

    async def _stream(
        self, messages: list[Message], opts: CallOptions
    ) -> AsyncIterator[str | Delta]:
        stream = await self.client.messages.create(**self._params(messages, opts), stream=True)
        input_tokens: int | None = None
        output_tokens: int | None = None
        model: str | None = None
        stop: str | None = None
        try:
            async for event in stream:
                kind = getattr(event, "type", "")
                if kind == "message_start":
                    model = event.message.model or None
                    if event.message.usage is not None:
                        input_tokens = _prompt_tokens(event.message.usage)
                        output_tokens = event.message.usage.output_tokens
                elif kind == "content_block_delta":
                    text = getattr(event.delta, "text", None)
                    if text:
                        yield Delta(text, model=model, raw=event)
                elif kind == "message_delta":
                    stop = event.delta.stop_reason or stop
                    usage = event.usage
                    if usage is not None:
                        output_tokens = usage.output_tokens
                        if getattr(usage, "input_tokens", None):
                            input_tokens = _prompt_tokens(usage)
                elif kind == "message_stop":
                    usage_now = None
                    if input_tokens is not None and output_tokens is not None:
                        usage_now = Usage(int(input_tokens), int(output_tokens))
                    yield Delta(
                        finish_reason=finish_reason(stop) or "stop",
                        usage=usage_now,
                        model=model,
                        raw=event,
                    )
        finally:
            await stream.close()

    # -- the error boundary --------------------------------------------------------
    def error_map(self) -> ErrorMap:
        import anthropic

        def in_stream(provider: ProviderCore, exc: Any) -> LLMError | None:
            if exc.status_code >= 400:
                return None  # a real HTTP status: the SDK's own table below
            # ``event: error`` inside a 200 stream: map its type to the status it has
            # outside a stream.
            message, code = error_detail(exc)
            return map_status_error(
                provider, _STREAM_ERROR_STATUS.get(code, 500), message, code, {}
            )

        return ErrorMap({anthropic.APIStatusError: in_stream}) | stainless_map(anthropic)
