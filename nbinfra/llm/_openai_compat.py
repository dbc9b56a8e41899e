"""What OpenAI, Azure OpenAI and Groq share: the chat-completions wire shape and an SDK
family (Stainless-generated, same exception names). Imported only by those providers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any, ClassVar

from nbinfra.errors import BadRequestError
from nbinfra.llm.base import BaseLLMProvider, CallOptions, Completion, Delta
from nbinfra.llm.boundary import ErrorMap
from nbinfra.llm.http_errors import stainless_map
from nbinfra.llm.schema import instruction
from nbinfra.llm.types import Message, Usage
from nbinfra.logs import get_logger

__all__ = ["OpenAICompatibleProvider"]

log = get_logger("nbinfra.llm.base")


class OpenAICompatibleProvider(BaseLLMProvider):
    """A provider speaking OpenAI chat completions through an OpenAI-family SDK."""

    sdk_name: ClassVar[str] = "openai"
    max_tokens_param: ClassVar[str] = "max_tokens"
    ask_stream_usage: ClassVar[bool] = True  # send stream_options.include_usage
    # schema=: True sends response_format json_schema (strict); False, JSON mode with the
    # schema in a system message, for a service without json_schema.
    json_schema_mode: ClassVar[bool] = True

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
        schema = opts.schema
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
        if schema is not None and type(self).json_schema_mode:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema.name,
                    "schema": schema.strict_schema,
                    "strict": True,
                },
            }
        elif opts.json:
            params["response_format"] = {"type": "json_object"}
            if schema is not None:
                params["messages"].insert(0, {"role": "system", "content": instruction(schema)})
        if opts.timeout is not None:
            params["timeout"] = self._sdk_timeout(opts.timeout)
        if stream:
            params["stream"] = True
            if self.ask_stream_usage:
                params["stream_options"] = {"include_usage": True}
        return params

    # -- hooks ---------------------------------------------------------------------
    async def _check_model(self) -> int | None:
        """``GET /models/{id}``; an OpenAI-compatible server (``base_url`` set: vLLM,
        llama.cpp, LM Studio, a LiteLLM proxy) that 404s it is asked ``GET /models``
        instead, and one that serves neither is not checked."""
        not_found = self._sdk().NotFoundError
        try:
            info = await self.client.models.retrieve(self.model)
        except not_found:
            if not self.base_url:
                raise  # the vendor's own API: a 404 means the model does not exist
        else:
            return _window_of(info)
        try:
            page = await self.client.models.list()
        except not_found:
            log.info("llm %s: %s lists no models; model not checked", self.name, self.where)
            return None
        served = {getattr(m, "id", None): m for m in getattr(page, "data", None) or []}
        served.pop(None, None)
        if served and self.model not in served:
            names = ", ".join(sorted(str(k) for k in served)[:10])
            raise BadRequestError(
                f"{self.kind} at {self.where} does not serve model {self.model!r}; it serves "
                f"{names}. Set llm.providers.{self.kind}.model (or pass model=...).",
                provider=self.kind,
            )
        found = served.get(self.model)
        return _window_of(found) if found is not None else None

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

    async def _stream(
        self, messages: list[Message], opts: CallOptions
    ) -> AsyncIterator[str | Delta]:
        stream = await self.client.chat.completions.create(
            **self._params(messages, opts, stream=True)
        )
        try:
            async for chunk in stream:
                choices = chunk.choices
                if choices:
                    choice = choices[0]
                    finish = choice.finish_reason
                    delta = choice.delta
                    text = (delta.content or "") if delta is not None else ""
                    if not finish:
                        if text:
                            yield text  # the common chunk: text only
                        continue
                else:
                    # Azure sends a first chunk with empty ``choices`` (content-filter
                    # results); usage comes on a last chunk with empty ``choices``.
                    finish = None
                    text = ""
                # Usage comes on the last chunks only (finish, or empty choices).
                usage = self._usage(chunk)
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
    def error_map(self) -> ErrorMap:
        return stainless_map(self._sdk())


def _window_of(info: Any) -> int | None:
    """The context window some OpenAI-compatible servers put on a model object."""
    extra = getattr(info, "model_extra", None) or {}
    for key in ("context_window", "context_length", "max_model_len", "max_context_length"):
        value = extra.get(key, getattr(info, key, None))
        if isinstance(value, int) and value > 0:
            return value
    return None
