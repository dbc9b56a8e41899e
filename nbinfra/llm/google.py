"""Google Gemini (the Gemini Developer API) on the official ``google-genai`` SDK.

``genai.Client(api_key=..., http_options=HttpOptions(base_url=..., api_version=...))``:
``generateContent`` for calls, ``streamGenerateContent?alt=sse`` for streams,
``batchEmbedContents`` for embeddings. Gemini answers a bad key with HTTP 400 and the
reason ``API_KEY_INVALID``; that is mapped to ``AuthenticationError`` like a 401.
``schema=`` sends ``response_mime_type="application/json"`` and ``response_schema`` (the
schema in Gemini's subset, ``gemini_schema``).

The SDK is given our own ``httpx.AsyncClient``: its default aiohttp transport takes the
timeout as one total per request (a long stream would be cut) and retries refused
connections itself; over httpx, ``timeout`` bounds each read, as for the other providers.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from nbinfra.errors import LLMError
from nbinfra.llm import LLMProvider, LLMRegistry
from nbinfra.llm.base import BaseLLMProvider, CallOptions, Completion, Delta, ProviderCore
from nbinfra.llm.boundary import ErrorMap
from nbinfra.llm.http_errors import map_status_error, parse_retry_after
from nbinfra.llm.types import Message, Usage

__all__ = ["GoogleProvider"]

DEFAULT_API_VERSION = "v1beta"
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "tool_calls",
    "UNEXPECTED_TOOL_CALL": "tool_calls",
}
_CONTEXT = re.compile(r"input token count .* exceeds|exceeds the maximum number of tokens", re.I)


def finish_reason(value: Any) -> str | None:
    """Gemini's ``FinishReason`` (an enum or a string) in the common vocabulary."""
    if value is None:
        return None
    name = str(getattr(value, "value", value))
    if name == "FINISH_REASON_UNSPECIFIED":
        return None
    return FINISH_REASONS.get(name, name.lower())


@LLMRegistry.register(LLMProvider.GOOGLE)
class GoogleProvider(BaseLLMProvider):
    """Gemini models through ``google.genai.Client(...).aio`` (its retries off, ours on)."""

    kind = "google"
    env_key = "GOOGLE_API_KEY"
    default_rank = 40
    public_endpoint = "generativelanguage.googleapis.com"
    default_model = "gemini-2.0-flash"
    default_embedding_model = "gemini-embedding-001"
    extra_settings = frozenset({"api_version"})

    @property
    def api_version(self) -> str:
        return str(self.settings.extra.get("api_version") or DEFAULT_API_VERSION)

    def _create_client(self) -> Any:
        import httpx
        from google import genai
        from google.genai import types

        http = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout, connect=min(self.connect_timeout, self.timeout))
        )
        options = types.HttpOptions(
            base_url=self.base_url or None,
            api_version=self.api_version,
            timeout=_ms(self.timeout),
            retry_options=types.HttpRetryOptions(attempts=1),  # no SDK retries
            httpx_async_client=http,
        )
        # vertexai=False: the Gemini Developer API, whatever GOOGLE_GENAI_USE_VERTEXAI says.
        client = genai.Client(api_key=self.api_key(), vertexai=False, http_options=options)
        client._nbinfra_http = http  # type: ignore[attr-defined]  # ours to close with it
        return client

    async def _close_client(self, client: Any) -> None:
        await client.aio.aclose()
        client.close()
        http = getattr(client, "_nbinfra_http", None)
        if http is not None:
            await http.aclose()

    # -- request -------------------------------------------------------------------
    def _request(self, messages: list[Message], opts: CallOptions) -> tuple[list[Any], Any]:
        from google.genai import types

        system = "\n\n".join(m.content for m in messages if m.role == "system")
        contents = [
            types.Content(
                role="model" if m.role == "assistant" else "user",
                parts=[types.Part(text=m.content)],
            )
            for m in messages
            if m.role != "system"
        ]
        per_call = None
        if opts.timeout is not None:
            per_call = types.HttpOptions(timeout=_ms(opts.timeout))
        config = types.GenerateContentConfig(
            system_instruction=system or None,
            temperature=opts.temperature,
            top_p=opts.top_p,
            max_output_tokens=opts.max_tokens,
            stop_sequences=list(opts.stop) if opts.stop else None,
            seed=opts.seed,
            response_mime_type="application/json" if opts.json else None,
            response_schema=gemini_schema(opts.schema.json_schema) if opts.schema else None,
            http_options=per_call,
        )
        return contents, config

    # -- hooks ---------------------------------------------------------------------
    async def _check_model(self) -> int | None:
        info = await self.client.aio.models.get(model=self.model)
        window = getattr(info, "input_token_limit", None)
        return window if isinstance(window, int) and window > 0 else None

    async def _complete(self, messages: list[Message], opts: CallOptions) -> Completion:
        contents, config = self._request(messages, opts)
        resp = await self.client.aio.models.generate_content(
            model=opts.model, contents=contents, config=config
        )
        text, finish = _text_and_finish(resp)
        return Completion(text, _model_of(resp), finish, _usage(resp), resp)

    async def _stream(
        self, messages: list[Message], opts: CallOptions
    ) -> AsyncIterator[str | Delta]:
        contents, config = self._request(messages, opts)
        stream = await self.client.aio.models.generate_content_stream(
            model=opts.model, contents=contents, config=config
        )
        usage: Usage | None = None
        finish: str | None = None
        model: str | None = None
        try:
            async for chunk in stream:
                text, chunk_finish = _text_and_finish(chunk)
                finish = chunk_finish or finish
                usage = _usage(chunk) or usage
                model = _model_of(chunk) or model
                if text:
                    yield Delta(text, model=model, raw=chunk)
            yield Delta(finish_reason=finish or "stop", usage=usage, model=model)
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()

    async def _embed(self, texts: list[str], model: str) -> list[list[float]]:
        resp = await self.client.aio.models.embed_content(model=model, contents=texts)
        return [list(e.values or []) for e in resp.embeddings or []]

    # -- the error boundary --------------------------------------------------------
    def error_map(self) -> ErrorMap:
        from google.genai import errors

        return ErrorMap({errors.APIError: _api_error})


def _api_error(provider: ProviderCore, exc: Any) -> LLMError:
    message = " ".join(str(exc.message or exc.status or exc).split())[:300]
    details = exc.details if isinstance(exc.details, Mapping) else {}
    reasons, retry_delay = _error_info(details)
    status = int(exc.code or 500)
    if "API_KEY_INVALID" in reasons or "api key not valid" in message.lower():
        return provider.auth_error(f"HTTP {status} API_KEY_INVALID")
    headers = _headers_of(exc.response)
    if status == 429 and parse_retry_after(headers) is None and retry_delay is not None:
        headers["retry-after"] = f"{retry_delay:g}"
    code = str(exc.status or "")
    if _CONTEXT.search(message):
        code = "context_length_exceeded"
    return map_status_error(provider, status, message, code, headers)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text_and_finish(resp: Any) -> tuple[str, str | None]:
    candidates = getattr(resp, "candidates", None) or []
    if not candidates:
        feedback = getattr(resp, "prompt_feedback", None)
        blocked = getattr(feedback, "block_reason", None) if feedback is not None else None
        return "", "content_filter" if blocked else None
    first = candidates[0]
    parts = getattr(first.content, "parts", None) or [] if first.content is not None else []
    text = "".join(p.text for p in parts if getattr(p, "text", None) and not p.thought)
    return text, finish_reason(first.finish_reason)


def _usage(resp: Any) -> Usage | None:
    meta = getattr(resp, "usage_metadata", None)
    if meta is None or meta.prompt_token_count is None:
        return None
    output = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return Usage(int(meta.prompt_token_count), int(output))


def _model_of(resp: Any) -> str | None:
    return getattr(resp, "model_version", None) or None


def _headers_of(response: Any) -> dict[str, str]:
    headers = getattr(response, "headers", None)
    return {str(k): str(v) for k, v in headers.items()} if headers is not None else {}


def _error_info(details: Mapping[str, Any]) -> tuple[set[str], float | None]:
    """Reasons (``API_KEY_INVALID``) and the ``RetryInfo`` delay from an error body."""
    error = details.get("error", details)
    items = error.get("details") if isinstance(error, Mapping) else None
    reasons: set[str] = set()
    delay: float | None = None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        if item.get("reason"):
            reasons.add(str(item["reason"]))
        raw = item.get("retryDelay")
        if isinstance(raw, str) and raw.endswith("s"):
            with contextlib.suppress(ValueError):
                delay = float(raw[:-1])
    return reasons, delay


# What Gemini's ``Schema`` (an OpenAPI subset) takes; the SDK inlines ``$defs`` itself.
_GEMINI_KEYS = frozenset(
    {
        "$defs", "$ref", "anyOf", "default", "description", "enum", "example", "format",
        "items", "maxItems", "maxLength", "maxProperties", "maximum", "minItems",
        "minLength", "minProperties", "minimum", "nullable", "pattern", "properties",
        "propertyOrdering", "required", "title", "type",
    }
)  # fmt: skip


def gemini_schema(schema: Any) -> Any:
    """A JSON schema as Gemini's ``response_schema`` takes it (a lossy subset: answers are
    still validated against the original). ``const`` becomes a one-value ``enum``,
    ``oneOf`` ``anyOf``, a type list a type with ``nullable``, exclusive bounds inclusive
    ones, a one-element ``allOf`` its element; other keys (``additionalProperties``, which
    the Gemini Developer API refuses) are dropped."""
    if isinstance(schema, list):
        return [gemini_schema(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    node = dict(schema)
    all_of = node.pop("allOf", None)
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
        node = {**all_of[0], **node}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "oneOf" in node and "anyOf" not in node:
        node["anyOf"] = node.pop("oneOf")
    kind = node.get("type")
    if isinstance(kind, list):
        real = [k for k in kind if k != "null"]
        node["type"] = real[0] if real else "null"
        if len(real) < len(kind):
            node["nullable"] = True
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node:
            node.setdefault(inclusive, node[bound])
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _GEMINI_KEYS:
            continue
        if key in ("properties", "$defs") and isinstance(value, Mapping):
            out[key] = {name: gemini_schema(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf"):
            out[key] = gemini_schema(value)
        else:
            out[key] = value
    return out
