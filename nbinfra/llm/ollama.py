"""Ollama on the official ``ollama`` SDK (``AsyncClient(host=...)``): local models.

``initialize()`` asks ``/api/show`` whether the model is pulled (and learns its context
size); a missing model says which ``ollama pull`` to run. Streams are NDJSON; usage is
``prompt_eval_count`` / ``eval_count`` from the last line. Ollama cuts a prompt longer
than its ``num_ctx`` without an error, so a reported ``prompt_eval_count`` clearly below
our count of what was sent flags the response (``"prompt_truncated"`` in
``response.warnings``, one WARNING log per model). Embeddings use ``/api/embed``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from nbinfra.errors import BadRequestError, LLMError, ProviderServerError
from nbinfra.llm import LLMProvider, LLMRegistry
from nbinfra.llm._fixed_timeout import FixedTimeoutProvider
from nbinfra.llm.base import CallOptions, Completion, Delta, ProviderCore
from nbinfra.llm.boundary import ErrorMap
from nbinfra.llm.http_errors import map_status_error
from nbinfra.llm.types import LLMResponse, Message, Usage

__all__ = ["OllamaProvider"]

DEFAULT_HOST = "http://127.0.0.1:11434"
_NUM_CTX = re.compile(r"^\s*num_ctx\s+(\d+)", re.M)
_QUOTED = re.compile(r"""model ["']([^"']+)["']""")


@LLMRegistry.register(LLMProvider.OLLAMA)
class OllamaProvider(FixedTimeoutProvider):
    """Chat and embeddings from a local (or remote) Ollama server. No key needed."""

    kind = "ollama"
    env_key = "OLLAMA_API_KEY"  # only for hosted Ollama; a local server needs none
    needs_key = False
    default_rank = 100  # after every keyed kind: chosen when a local server answers
    default_base_url = DEFAULT_HOST
    default_model = "llama3.2"
    default_embedding_model = "nomic-embed-text"
    extra_settings = frozenset({"keep_alive", "num_ctx"})

    @property
    def host(self) -> str:
        return self.base_url or DEFAULT_HOST

    @property
    def num_ctx(self) -> int | None:
        """The context size we ask for (``llm.providers.ollama.num_ctx``), if set."""
        value = self.settings.extra.get("num_ctx") or self.settings.options.get("num_ctx")
        return int(value) if value else None

    def _new_client(self, timeout: float) -> Any:
        import httpx
        import ollama

        headers = {}
        if self.settings.api_key:
            headers["authorization"] = f"Bearer {self.api_key()}"
        return ollama.AsyncClient(
            host=self.host,
            timeout=httpx.Timeout(timeout, connect=min(self.connect_timeout, timeout)),
            headers=headers,
        )

    # -- request -------------------------------------------------------------------
    def _params(self, messages: list[Message], opts: CallOptions) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if opts.temperature is not None:
            options["temperature"] = opts.temperature
        if opts.top_p is not None:
            options["top_p"] = opts.top_p
        if opts.max_tokens is not None:
            options["num_predict"] = opts.max_tokens
        if opts.stop:
            options["stop"] = list(opts.stop)
        if opts.seed is not None:
            options["seed"] = opts.seed
        if self.num_ctx:
            options["num_ctx"] = self.num_ctx
        params: dict[str, Any] = {
            "model": opts.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        if options:
            params["options"] = options
        if opts.schema is not None:
            params["format"] = opts.schema.json_schema  # Ollama constrains to the schema
        elif opts.json:
            params["format"] = "json"
        keep_alive = self.settings.extra.get("keep_alive")
        if keep_alive not in (None, ""):
            params["keep_alive"] = keep_alive
        return params

    # -- hooks ---------------------------------------------------------------------
    async def _check_model(self) -> int | None:
        info = await self.client.show(self.model)  # 404 when not pulled: see _map_error
        if self.num_ctx:
            return self.num_ctx
        match = _NUM_CTX.search(info.parameters or "")
        if match:
            return int(match.group(1))
        model_info: Mapping[str, Any] = info.modelinfo or {}
        for key, value in model_info.items():
            if key.endswith(".context_length") and isinstance(value, int):
                return value
        return None

    async def _complete(self, messages: list[Message], opts: CallOptions) -> Completion:
        async with self._client_for(opts) as client:
            resp = await client.chat(**self._params(messages, opts), stream=False)
        return Completion(
            resp.message.content or "",
            resp.model or None,
            _finish_reason(resp.done_reason),
            self._usage(resp, messages, opts.model),
            resp,
        )

    async def _stream(
        self, messages: list[Message], opts: CallOptions
    ) -> AsyncIterator[str | Delta]:
        async with self._client_for(opts) as client:
            stream = await client.chat(**self._params(messages, opts), stream=True)
            async for part in stream:
                text = part.message.content or "" if part.message is not None else ""
                if part.done:
                    usage = self._usage(part, messages, opts.model)
                    yield Delta(text, _finish_reason(part.done_reason), usage, part.model, part)
                elif text:
                    yield Delta(text, model=part.model or None, raw=part)

    def _usage(self, resp: Any, messages: list[Message], model: str) -> Usage | None:
        if resp.prompt_eval_count is None and resp.eval_count is None:
            return None
        output = int(resp.eval_count or 0)
        if resp.prompt_eval_count:
            return Usage(int(resp.prompt_eval_count), output)
        # Some Ollama versions send no (or a zero) prompt_eval_count when the prompt came
        # from their cache: count it ourselves and say so.
        return Usage(self.count_tokens(messages, model).tokens, output, exact=False)

    async def _embed(self, texts: list[str], model: str) -> list[list[float]]:
        resp = await self.client.embed(model=model, input=texts)
        return [list(v) for v in resp.embeddings]

    def _finish(
        self,
        messages: list[Message],
        opts: CallOptions,
        content: str,
        **kwargs: Any,
    ) -> LLMResponse:
        response = super()._finish(messages, opts, content, **kwargs)
        if response.usage.exact and response.finish_reason != "error":
            from nbinfra.llm.truncation import check_prompt_tokens

            check_prompt_tokens(
                self.count_tokens(messages, response.model),
                response.usage.input_tokens,
                response=response,
            )
        return response

    # -- the error boundary --------------------------------------------------------
    def error_map(self) -> ErrorMap:
        import ollama

        return ErrorMap(
            {
                ollama.ResponseError: _response_error,
                ollama.RequestError: lambda p, e: BadRequestError(
                    f"ollama refused the request: {e.error}", provider=p.kind
                ),
                # the SDK raises the builtin ConnectionError for a refused connection
                ConnectionRefusedError: _not_running,
                ConnectionError: _not_running,
            }
        )


def _not_running(provider: ProviderCore, exc: BaseException) -> LLMError | None:
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return None  # a connection that broke: the shared table
    return ProviderServerError(
        f"Cannot reach Ollama at {provider.where}: start it (`ollama serve`) or set "
        "OLLAMA_HOST / llm.providers.ollama.base_url.",
        provider=provider.kind,
    )


def _response_error(provider: ProviderCore, exc: Any) -> LLMError:
    message = " ".join(str(exc.error).split())[:300]
    if exc.status_code == 404 and "not found" in message:
        named = _QUOTED.search(message)
        model = named.group(1) if named else "<model>"
        return BadRequestError(
            f"Model '{model}' is not pulled in Ollama at {provider.where}: run "
            f"`ollama pull {model}`, or pick a pulled one (`ollama list`).",
            provider=provider.kind,
        )
    if exc.status_code < 0:  # an error line inside a stream
        return ProviderServerError(f"ollama failed mid-stream: {message}", provider=provider.kind)
    # The SDK raises ``from None``; the httpx error (with headers) is the context.
    response = getattr(exc.__context__, "response", None)
    headers = dict(response.headers) if response is not None else {}
    return map_status_error(provider, exc.status_code, message, "", headers)


def _finish_reason(reason: str | None) -> str | None:
    return reason if reason in ("stop", "length") else (reason or None)
