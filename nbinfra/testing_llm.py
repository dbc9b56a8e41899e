"""Local servers that speak LLM providers' wire formats, for tests with the real SDKs.

An ``LLMWireServer`` runs on ``nbinfra.testing.LocalHTTPServer`` and answers in one or
more ``WireFormat``\\ s (``openai``, ``azure``, ``groq``, ``anthropic``, ``google``,
``huggingface``, ``ollama``; add others to ``FORMATS``).
Point the official SDK at ``server.base_url(fmt)`` and script what it answers::

    with LLMWireServer("openai") as server:
        server.push(Reply("Hello!", usage=(12, 3)))
        server.push(Fault.rate_limited(retry_after=0.1), Reply("after the wait"))
        ... call the SDK / provider ...
        body = server.last("chat").json()

Queued items are used in order: a ``Fault`` answers whatever request comes next
(including a models lookup); a ``Reply`` answers the next chat request. With an empty
queue, chat answers ``server.default``.

Adding a format: subclass ``WireFormat``, list its ``routes`` (method, path, endpoint),
implement ``chat`` (JSON and streaming) and ``error``, and register it in ``FORMATS``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nbinfra.testing import LocalHTTPServer, Request, Response

__all__ = [
    "FORMATS",
    "AnthropicFormat",
    "AzureFormat",
    "Fault",
    "GoogleFormat",
    "GroqFormat",
    "HuggingFaceFormat",
    "LLMWireServer",
    "OllamaFormat",
    "OpenAIFormat",
    "Reply",
    "WireFormat",
    "header",
    "split_words",
]


def split_words(text: str) -> list[str]:
    """``"a b c"`` -> ``["a ", "b ", "c"]``: the default stream chunks."""
    return re.findall(r"\S+\s*|\s+", text)


def header(request: Request, name: str) -> str | None:
    """A request header, case-insensitively."""
    lower = name.lower()
    for key, value in request.headers.items():
        if key.lower() == lower:
            return value
    return None


@dataclass
class Reply:
    """A successful answer. ``usage=None`` leaves usage out (the client must estimate)."""

    text: str = "Hello from the local wire server."
    chunks: list[str] | None = None  # stream deltas; default: ``split_words(text)``
    finish_reason: str = "stop"
    usage: tuple[int, int] | None = (10, 7)  # (input tokens, output tokens)
    model: str | None = None  # default: the model the request asked for

    def stream_chunks(self) -> list[str]:
        return list(self.chunks) if self.chunks is not None else split_words(self.text)


@dataclass
class Fault:
    """A failure the server plays once. Build with the class methods."""

    kind: str  # "status", "hang", "cut", "malformed"
    status: int = 500
    message: str = "injected fault"
    code: str | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    after: int = 0  # for "cut" and "hang": stream chunks sent first
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def unauthorized(cls, message: str = "Incorrect API key provided.") -> Fault:
        return cls("status", 401, message, code="invalid_api_key")

    @classmethod
    def rate_limited(cls, retry_after: float | None = 1.0) -> Fault:
        return cls("status", 429, "Rate limit reached.", "rate_limit_exceeded", retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls("status", status, "The server had an error.", "server_error")

    @classmethod
    def context_length(cls) -> Fault:
        return cls(
            "status",
            400,
            "This model's maximum context length is 8192 tokens; your messages resulted "
            "in 9000 tokens.",
            "context_length_exceeded",
        )

    @classmethod
    def bad_request(cls, message: str = "Invalid value for 'temperature'.") -> Fault:
        return cls("status", 400, message, "invalid_request_error")

    @classmethod
    def hang(cls, seconds: float = 2.0, after: int = 0) -> Fault:
        """Say nothing for ``seconds`` (after ``after`` stream chunks when streaming)."""
        return cls("hang", seconds=seconds, after=after)

    @classmethod
    def cut(cls, after: int = 2) -> Fault:
        """Close the connection mid-stream after ``after`` chunks."""
        return cls("cut", after=after)

    @classmethod
    def malformed(cls) -> Fault:
        """A 200 answer whose body is not valid JSON."""
        return cls("malformed")


class WireFormat:
    """One provider's wire format. ``server`` is set when it is attached."""

    name: ClassVar[str] = ""
    stream_content_type: ClassVar[str] = "text/event-stream"  # NDJSON formats override
    server: LLMWireServer

    def routes(self) -> list[tuple[str, str, str]]:
        """(method, path, endpoint) triples; a path ending in ``*`` is a prefix."""
        raise NotImplementedError

    def base_url(self) -> str:
        """What to pass to the SDK as its base URL / endpoint."""
        return self.server.url

    def handle(self, endpoint: str, request: Request) -> Response:
        item = self.server.next_item(endpoint)
        is_stream = endpoint == "chat" and self.is_stream(request)
        if isinstance(item, Fault):
            return self.fault(item, request, is_stream)
        if endpoint == "chat":
            return self.chat(item, request, is_stream)
        return self.other(endpoint, request)

    def is_stream(self, request: Request) -> bool:
        try:
            return bool(request.json().get("stream"))
        except (ValueError, AttributeError):
            return False

    def chat(self, reply: Reply, request: Request, stream: bool) -> Response:
        raise NotImplementedError

    def error(self, fault: Fault) -> Response:
        raise NotImplementedError

    def other(self, endpoint: str, request: Request) -> Response:
        return Response(404, {"error": f"{self.name} wire server: no endpoint {endpoint}"})

    def stream_events(self, reply: Reply, request: Request) -> list[bytes]:
        """The encoded stream pieces of ``reply`` (used for faults that cut or hang)."""
        raise NotImplementedError

    def malformed(self, stream: bool) -> Response:
        if stream:
            return Response(200, headers=self._stream_headers(), chunks=[b"data: {not json\n\n"])
        return Response(
            200, b'{"id": "x", "choices": [', headers={"Content-Type": "application/json"}
        )

    def _stream_headers(self) -> dict[str, str]:
        return {"Content-Type": self.stream_content_type, "Cache-Control": "no-cache"}

    def fault(self, fault: Fault, request: Request, stream: bool) -> Response:
        if fault.kind == "status":
            return self.error(fault)
        if fault.kind == "malformed":
            return self.malformed(stream)
        if stream:
            pieces = self.stream_events(self.server.default, request)
            head = pieces[: fault.after]
            if fault.kind == "cut":
                return Response(
                    200, headers=self._stream_headers(), chunks=pieces, cut_after=fault.after
                )
            return Response(
                200, headers=self._stream_headers(), chunks=_stall(head, fault.seconds, pieces)
            )
        body = self.chat(self.server.default, request, False).body
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        json_headers = {"Content-Type": "application/json"}
        if fault.kind == "hang":
            return Response(200, payload, headers=json_headers, delay=fault.seconds)
        # "cut" on a JSON answer: half the body, then the connection closes.
        half = len(payload) // 2
        return Response(
            200, headers=json_headers, chunks=[payload[:half], payload[half:]], cut_after=1
        )


def _stall(head: list[bytes], seconds: float, rest: list[bytes]) -> Iterator[bytes]:
    yield from head
    time.sleep(seconds)
    yield from rest[len(head) :]


def embedding_for(text: str, dim: int = 8) -> list[float]:
    """A deterministic unit vector for ``text``."""
    digest = hashlib.sha256(text.encode()).digest()
    values = [(b - 127.5) / 127.5 for b in digest[:dim]]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


# -- OpenAI chat completions ----------------------------------------------------------
class OpenAIFormat(WireFormat):
    """OpenAI's ``/v1/chat/completions`` (JSON and SSE), ``/v1/models``, ``/v1/embeddings``."""

    name = "openai"
    prefix = "/v1"

    def routes(self) -> list[tuple[str, str, str]]:
        p = self.prefix
        return [
            ("POST", f"{p}/chat/completions", "chat"),
            ("POST", f"{p}/embeddings", "embeddings"),
            ("GET", f"{p}/models", "models"),
            ("GET", f"{p}/models/*", "model"),
        ]

    def base_url(self) -> str:
        return self.server.url + self.prefix

    def _model(self, reply: Reply, request: Request) -> str:
        if reply.model:
            return reply.model
        try:
            return str(request.json().get("model") or "test-model")
        except (ValueError, AttributeError):
            return "test-model"

    def _usage(self, reply: Reply) -> dict[str, int] | None:
        if reply.usage is None:
            return None
        i, o = reply.usage
        return {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o}

    def chat(self, reply: Reply, request: Request, stream: bool) -> Response:
        if stream:
            return Response(
                200, headers=self._stream_headers(), chunks=self.stream_events(reply, request)
            )
        body: dict[str, Any] = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1700000000,
            "model": self._model(reply, request),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "finish_reason": reply.finish_reason,
                    "logprobs": None,
                }
            ],
        }
        usage = self._usage(reply)
        if usage is not None:
            body["usage"] = usage
        return Response(200, body)

    def chunk(self, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    def first_events(self, model: str) -> list[dict[str, Any]]:
        return [self.chunk(model, {"role": "assistant", "content": ""}, None)]

    def last_events(self, reply: Reply, model: str, include_usage: bool) -> list[dict[str, Any]]:
        events = [self.chunk(model, {}, reply.finish_reason)]
        usage = self._usage(reply)
        if include_usage and usage is not None:
            events.append({**self.chunk(model, {}, None), "choices": [], "usage": usage})
        return events

    def stream_events(self, reply: Reply, request: Request) -> list[bytes]:
        model = self._model(reply, request)
        try:
            options = request.json().get("stream_options") or {}
        except (ValueError, AttributeError):
            options = {}
        include_usage = bool(options.get("include_usage"))
        events = self.first_events(model)
        events += [self.chunk(model, {"content": c}, None) for c in reply.stream_chunks()]
        events += self.last_events(reply, model, include_usage)
        out = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
        out.append(b"data: [DONE]\n\n")
        return out

    def error(self, fault: Fault) -> Response:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        body = {
            "error": {
                "message": fault.message,
                "type": fault.code or "error",
                "param": None,
                "code": fault.code,
            }
        }
        return Response(fault.status, body, headers=headers)

    def other(self, endpoint: str, request: Request) -> Response:
        if endpoint == "model":
            model_id = request.path.rsplit("/models/", 1)[-1]
            return Response(200, self.model_object(model_id))
        if endpoint == "models":
            ids = sorted(self.server.models) or ["test-model"]
            return Response(200, {"object": "list", "data": [self.model_object(m) for m in ids]})
        if endpoint == "embeddings":
            data = request.json()
            inputs = data.get("input")
            texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
            tokens = sum(max(1, len(t) // 4) for t in texts)
            return Response(
                200,
                {
                    "object": "list",
                    "data": [
                        {"object": "embedding", "index": i, "embedding": embedding_for(t)}
                        for i, t in enumerate(texts)
                    ],
                    "model": data.get("model"),
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
            )
        return super().other(endpoint, request)

    def model_object(self, model_id: str) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": model_id,
            "object": "model",
            "created": 1700000000,
            "owned_by": "nbinfra-test",
        }
        obj.update(self.server.models.get(model_id, {}))
        return obj


class GroqFormat(OpenAIFormat):
    """Groq: OpenAI's shape under ``/openai/v1``; stream usage in ``x_groq.usage``."""

    name = "groq"
    prefix = "/openai/v1"

    def base_url(self) -> str:
        return self.server.url  # the groq SDK appends /openai/v1 itself

    def last_events(self, reply: Reply, model: str, include_usage: bool) -> list[dict[str, Any]]:
        last = self.chunk(model, {}, reply.finish_reason)
        usage = self._usage(reply)
        if usage is not None:
            last["x_groq"] = {"id": "req_test", "usage": usage}
        return [last]


class AzureFormat(OpenAIFormat):
    """Azure OpenAI: deployments in the path, ``api-version`` in the query, ``api-key``
    header, and a first stream chunk with empty ``choices`` (content-filter results)."""

    name = "azure"
    prefix = "/openai"

    def routes(self) -> list[tuple[str, str, str]]:
        return [
            ("POST", "/openai/deployments/*", "deployment"),
            ("GET", "/openai/models", "models"),
        ]

    def base_url(self) -> str:
        return self.server.url  # azure_endpoint

    def handle(self, endpoint: str, request: Request) -> Response:
        if endpoint == "deployment":
            endpoint = "chat" if request.path.endswith("/chat/completions") else "embeddings"
        return super().handle(endpoint, request)

    def _model(self, reply: Reply, request: Request) -> str:
        if reply.model:
            return reply.model
        match = re.match(r"/openai/deployments/([^/]+)/", request.path)
        return match.group(1) if match else "test-deployment"

    def first_events(self, model: str) -> list[dict[str, Any]]:
        empty = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [
                {"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False}}}
            ],
        }
        return [empty, *super().first_events(model)]


# -- shared by the formats below ------------------------------------------------------
def _body(request: Request) -> dict[str, Any]:
    try:
        data = request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _sse(event: str | None, data: dict[str, Any]) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(data).encode() + b"\n\n"


# -- Anthropic messages ---------------------------------------------------------------
class AnthropicFormat(WireFormat):
    """Anthropic's ``/v1/messages`` (JSON and SSE events ``message_start``,
    ``content_block_delta``, ``message_delta`` with usage, ...) and ``/v1/models/{id}``."""

    name = "anthropic"
    ERROR_TYPES: ClassVar[dict[int, str]] = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        529: "overloaded_error",
    }
    STOP: ClassVar[dict[str, str]] = {"stop": "end_turn", "length": "max_tokens"}

    def routes(self) -> list[tuple[str, str, str]]:
        return [("POST", "/v1/messages", "chat"), ("GET", "/v1/models/*", "model")]

    def _model(self, reply: Reply, request: Request) -> str:
        return reply.model or str(_body(request).get("model") or "claude-test")

    def _message(self, reply: Reply, request: Request, content: list[Any]) -> dict[str, Any]:
        i, o = reply.usage or (0, 0)
        return {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": self._model(reply, request),
            "content": content,
            "stop_reason": self.STOP.get(reply.finish_reason, reply.finish_reason),
            "stop_sequence": None,
            "usage": {"input_tokens": i, "output_tokens": o},
        }

    def chat(self, reply: Reply, request: Request, stream: bool) -> Response:
        if stream:
            return Response(
                200, headers=self._stream_headers(), chunks=self.stream_events(reply, request)
            )
        return Response(200, self._message(reply, request, [{"type": "text", "text": reply.text}]))

    def stream_events(self, reply: Reply, request: Request) -> list[bytes]:
        start = self._message(reply, request, [])
        start["stop_reason"] = None
        i, o = reply.usage or (0, 0)
        start["usage"] = {"input_tokens": i, "output_tokens": 1}
        out = [
            _sse("message_start", {"type": "message_start", "message": start}),
            _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            _sse("ping", {"type": "ping"}),
        ]
        out += [
            _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": c},
                },
            )
            for c in reply.stream_chunks()
        ]
        stop = self.STOP.get(reply.finish_reason, reply.finish_reason)
        out += [
            _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": o},
                },
            ),
            _sse("message_stop", {"type": "message_stop"}),
        ]
        return out

    def error(self, fault: Fault) -> Response:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        message = fault.message
        if fault.code == "context_length_exceeded":
            message = "prompt is too long: 9000 tokens > 8192 maximum"
        kind = self.ERROR_TYPES.get(fault.status, "api_error" if fault.status >= 500 else "error")
        body = {"type": "error", "error": {"type": kind, "message": message}}
        return Response(fault.status, body, headers=headers)

    def malformed(self, stream: bool) -> Response:
        if stream:
            return Response(
                200,
                headers=self._stream_headers(),
                chunks=[b"event: message_start\ndata: {not json\n\n"],
            )
        return Response(200, b'{"id": "msg_x", "content": [', headers=_JSON)

    def other(self, endpoint: str, request: Request) -> Response:
        if endpoint == "model":
            model_id = request.path.rsplit("/models/", 1)[-1]
            obj: dict[str, Any] = {
                "type": "model",
                "id": model_id,
                "display_name": model_id,
                "created_at": "2025-01-01T00:00:00Z",
                "lifecycle": "active",
            }
            obj.update(self.server.models.get(model_id, {}))
            return Response(200, obj)
        return super().other(endpoint, request)


_JSON = {"Content-Type": "application/json"}


# -- Google Gemini (generativelanguage) -----------------------------------------------
class GoogleFormat(WireFormat):
    """Gemini's ``/v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``,
    ``:batchEmbedContents`` and ``GET /v1beta/models/{model}``. A rejected key is HTTP 400
    with reason ``API_KEY_INVALID`` (what Gemini really answers), not 401."""

    name = "google"
    api_version = "v1beta"
    STATUS: ClassVar[dict[int, str]] = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }
    FINISH: ClassVar[dict[str, str]] = {"stop": "STOP", "length": "MAX_TOKENS"}

    def routes(self) -> list[tuple[str, str, str]]:
        p = f"/{self.api_version}/models/"
        return [("POST", p + "*", "action"), ("GET", p + "*", "model")]

    def handle(self, endpoint: str, request: Request) -> Response:
        if endpoint == "action":
            action = request.path.rpartition(":")[2]
            endpoint = {"generateContent": "chat", "streamGenerateContent": "chat"}.get(
                action, action
            )
        return super().handle(endpoint, request)

    def is_stream(self, request: Request) -> bool:
        return request.path.endswith(":streamGenerateContent")

    def _model(self, reply: Reply, request: Request) -> str:
        if reply.model:
            return reply.model
        return request.path.split("/models/", 1)[-1].partition(":")[0] or "gemini-test"

    def _response(self, reply: Reply, request: Request, text: str, *, last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
        if last:
            candidate["finishReason"] = self.FINISH.get(reply.finish_reason, reply.finish_reason)
        candidate["index"] = 0
        out: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": self._model(reply, request),
        }
        if last and reply.usage is not None:
            i, o = reply.usage
            out["usageMetadata"] = {
                "promptTokenCount": i,
                "candidatesTokenCount": o,
                "totalTokenCount": i + o,
            }
        out["responseId"] = "resp-test"
        return out

    def chat(self, reply: Reply, request: Request, stream: bool) -> Response:
        if stream:
            return Response(
                200, headers=self._stream_headers(), chunks=self.stream_events(reply, request)
            )
        return Response(200, self._response(reply, request, reply.text, last=True))

    def stream_events(self, reply: Reply, request: Request) -> list[bytes]:
        chunks = reply.stream_chunks() or [""]
        out = []
        for n, text in enumerate(chunks):
            event = self._response(reply, request, text, last=n == len(chunks) - 1)
            out.append(b"data: " + json.dumps(event).encode() + b"\r\n\r\n")
        return out

    def error(self, fault: Fault) -> Response:
        headers = dict(fault.headers)
        status, message = fault.status, fault.message
        details: list[dict[str, Any]] = []
        if status == 401:
            status, message = 400, "API key not valid. Please pass a valid API key."
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            )
        if fault.code == "context_length_exceeded":
            message = (
                "The input token count (9000) exceeds the maximum number of tokens allowed (8192)."
            )
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{fault.retry_after:g}s",
                }
            )
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": self.STATUS.get(status, "UNKNOWN"),
        }
        if details:
            error["details"] = details
        return Response(status, {"error": error}, headers=headers)

    def malformed(self, stream: bool) -> Response:
        if stream:
            return Response(
                200, headers=self._stream_headers(), chunks=[b"data: {not json\r\n\r\n"]
            )
        return Response(200, b'{"candidates": [', headers=_JSON)

    def other(self, endpoint: str, request: Request) -> Response:
        if endpoint == "model":
            model_id = request.path.split("/models/", 1)[-1]
            obj: dict[str, Any] = {
                "name": f"models/{model_id}",
                "version": "001",
                "displayName": model_id,
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 8192,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            }
            obj.update(self.server.models.get(model_id, {}))
            return Response(200, obj)
        if endpoint == "batchEmbedContents":
            requests = _body(request).get("requests") or []
            texts = [
                "".join(p.get("text", "") for p in r.get("content", {}).get("parts", []))
                for r in requests
            ]
            return Response(200, {"embeddings": [{"values": embedding_for(t)} for t in texts]})
        return super().other(endpoint, request)


# -- Hugging Face (TGI / Inference Providers: OpenAI-compatible messages API) ---------
class HuggingFaceFormat(OpenAIFormat):
    """What ``InferenceClient(base_url=...)`` talks to: TGI's OpenAI-compatible
    ``/v1/chat/completions``; errors in TGI's shape ``{"error": ..., "error_type": ...}``."""

    name = "huggingface"

    def routes(self) -> list[tuple[str, str, str]]:
        return [("POST", "/v1/chat/completions", "chat")]

    def base_url(self) -> str:
        return self.server.url  # the client appends /v1/chat/completions

    def error(self, fault: Fault) -> Response:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        message = fault.message
        status = fault.status
        if fault.code == "context_length_exceeded":
            status = 422
            message = (
                "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8192. "
                "Given: 9000 `inputs` tokens and 100 `max_new_tokens`"
            )
        kind = {401: "authentication", 429: "overloaded", 422: "validation"}.get(status, "error")
        return Response(status, {"error": message, "error_type": kind}, headers=headers)


# -- Ollama ---------------------------------------------------------------------------


class OllamaFormat(WireFormat):
    """Ollama's ``/api/chat`` (JSON, and NDJSON streams whose last line has ``done``,
    ``prompt_eval_count`` and ``eval_count``), ``/api/show``, ``/api/tags``, ``/api/embed``.

    ``server.models`` lists the pulled models (``{"llama3.2": {"num_ctx": 4096}}``);
    a model not listed answers 404 "not found, try pulling it first". With no models
    listed, every model counts as pulled."""

    name = "ollama"
    stream_content_type = "application/x-ndjson"

    def routes(self) -> list[tuple[str, str, str]]:
        return [
            ("POST", "/api/chat", "chat"),
            ("POST", "/api/show", "show"),
            ("GET", "/api/tags", "tags"),
            ("POST", "/api/embed", "embed"),
        ]

    def is_stream(self, request: Request) -> bool:
        return bool(_body(request).get("stream", True))  # Ollama streams unless told not to

    def _model(self, reply: Reply, request: Request) -> str:
        return reply.model or str(_body(request).get("model") or "llama-test")

    def _pulled(self, name: str) -> bool:
        if not self.server.models:
            return True
        base = name.removesuffix(":latest")
        return base in self.server.models or name in self.server.models

    def _line(self, model: str, text: str, done: bool, reply: Reply | None = None) -> bytes:
        line: dict[str, Any] = {
            "model": model,
            "created_at": "2025-01-01T00:00:00.000000Z",
            "message": {"role": "assistant", "content": text},
            "done": done,
        }
        if done and reply is not None:
            line["done_reason"] = reply.finish_reason
            line.update(self._counts(reply))
        return json.dumps(line).encode() + b"\n"

    def _counts(self, reply: Reply) -> dict[str, int]:
        out = {"total_duration": 5_000_000, "load_duration": 1_000_000}
        if reply.usage is not None:
            i, o = reply.usage
            out.update(
                prompt_eval_count=i,
                prompt_eval_duration=1_000_000,
                eval_count=o,
                eval_duration=2_000_000,
            )
        return out

    def handle(self, endpoint: str, request: Request) -> Response:
        model = str(_body(request).get("model") or "")
        fault_next = bool(self.server._queue) and isinstance(self.server._queue[0], Fault)
        missing = bool(model) and not fault_next and not self._pulled(model)
        if endpoint in ("chat", "show", "embed") and missing:
            return Response(404, {"error": f'model "{model}" not found, try pulling it first'})
        return super().handle(endpoint, request)

    def chat(self, reply: Reply, request: Request, stream: bool) -> Response:
        if stream:
            return Response(
                200, headers=self._stream_headers(), chunks=self.stream_events(reply, request)
            )
        model = self._model(reply, request)
        body = json.loads(self._line(model, reply.text, True, reply))
        return Response(200, body)

    def stream_events(self, reply: Reply, request: Request) -> list[bytes]:
        model = self._model(reply, request)
        out = [self._line(model, c, False) for c in reply.stream_chunks()]
        out.append(self._line(model, "", True, reply))
        return out

    def error(self, fault: Fault) -> Response:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        message = "unauthorized" if fault.status == 401 else fault.message
        return Response(fault.status, {"error": message}, headers=headers)

    def malformed(self, stream: bool) -> Response:
        if stream:
            return Response(
                200, headers=self._stream_headers(), chunks=[b'{"model": "x", "message": {\n']
            )
        return Response(200, b'{"model": "x", "message": {', headers=_JSON)

    def other(self, endpoint: str, request: Request) -> Response:
        data = _body(request)
        if endpoint == "show":
            facts = dict(
                self.server.models.get(str(data.get("model", "")).removesuffix(":latest"), {})
            )
            num_ctx = facts.pop("num_ctx", None)
            length = facts.pop("context_length", 131072)
            params = 'stop "<|eot_id|>"'
            if num_ctx:
                params += f"\nnum_ctx {num_ctx}"
            return Response(
                200,
                {
                    "modelfile": "FROM llama3.2",
                    "parameters": params,
                    "template": "{{ .Prompt }}",
                    "details": {"family": "llama", "parameter_size": "3.2B"},
                    "model_info": {"general.architecture": "llama", "llama.context_length": length},
                    "capabilities": ["completion"],
                    "modified_at": "2025-01-01T00:00:00Z",
                },
            )
        if endpoint == "tags":
            names = sorted(self.server.models) or ["llama3.2"]
            return Response(
                200,
                {
                    "models": [
                        {"name": f"{n}:latest", "model": f"{n}:latest", "size": 1, "digest": "0"}
                        for n in names
                    ]
                },
            )
        if endpoint == "embed":
            inputs = data.get("input")
            texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
            return Response(
                200,
                {
                    "model": data.get("model"),
                    "embeddings": [embedding_for(t) for t in texts],
                    "prompt_eval_count": sum(max(1, len(t) // 4) for t in texts),
                },
            )
        return super().other(endpoint, request)


FORMATS: dict[str, type[WireFormat]] = {
    "anthropic": AnthropicFormat,
    "azure": AzureFormat,
    "google": GoogleFormat,
    "groq": GroqFormat,
    "huggingface": HuggingFaceFormat,
    "ollama": OllamaFormat,
    "openai": OpenAIFormat,
}


class LLMWireServer:
    """A local HTTP server answering in the given wire formats, with a script of replies."""

    def __init__(self, *formats: str | WireFormat, server: LocalHTTPServer | None = None) -> None:
        self.http = server or LocalHTTPServer()
        self.formats: dict[str, WireFormat] = {}
        self.default = Reply()
        self.models: dict[str, dict[str, Any]] = {}  # model id -> extra fields (context_window)
        self._queue: deque[Reply | Fault] = deque()
        self._lock = threading.Lock()
        self._routes: set[tuple[str, str]] = set()
        for fmt in formats or ("openai",):
            self.add_format(fmt)

    def add_format(self, fmt: str | WireFormat) -> WireFormat:
        instance = FORMATS[fmt]() if isinstance(fmt, str) else fmt
        instance.server = self
        for method, path, endpoint in instance.routes():
            if (method, path) in self._routes:
                raise ValueError(
                    f"{instance.name}: route {method} {path} is taken by another format; "
                    "use a second LLMWireServer."
                )
            self._routes.add((method, path))
            self.http.route(method, path, _bind(instance, endpoint))
        self.formats[instance.name] = instance
        return instance

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> LLMWireServer:
        self.http.start()
        httpd = getattr(self.http, "_httpd", None)
        if httpd is not None:
            default = httpd.handle_error

            def handle_error(request: Any, client_address: Any) -> None:
                # Clients hanging up on purpose (timeouts, cut streams) are expected here.
                import sys

                if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    default(request, client_address)

            httpd.handle_error = handle_error
        return self

    def stop(self) -> None:
        self.http.stop()

    def __enter__(self) -> LLMWireServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.http.url

    def base_url(self, fmt: str | None = None) -> str:
        name = fmt or next(iter(self.formats))
        return self.formats[name].base_url()

    # -- script --------------------------------------------------------------------
    def push(self, *items: Reply | Fault | str) -> None:
        """Queue answers (a plain string is ``Reply(text)``)."""
        with self._lock:
            self._queue.extend(Reply(i) if isinstance(i, str) else i for i in items)

    def clear(self) -> None:
        """Forget queued answers and received requests."""
        with self._lock:
            self._queue.clear()
        self.http.requests.clear()

    def reset(self) -> None:
        """``clear()``, and back to the default reply and no model facts."""
        self.clear()
        self.default = Reply()
        self.models.clear()

    def next_item(self, endpoint: str) -> Reply | Fault:
        with self._lock:
            if self._queue:
                head = self._queue[0]
                if isinstance(head, Fault) or endpoint == "chat":
                    return self._queue.popleft()
        return self.default

    @property
    def pending(self) -> int:
        return len(self._queue)

    # -- what was received ---------------------------------------------------------
    @property
    def requests(self) -> list[Request]:
        return self.http.requests

    def last(self, path_part: str = "") -> Request:
        """The newest request whose path contains ``path_part``."""
        for request in reversed(self.http.requests):
            if path_part in request.path:
                return request
        raise AssertionError(f"no request with '{path_part}' in its path was received")


def _bind(fmt: WireFormat, endpoint: str) -> Any:
    def handler(request: Request) -> Response:
        return fmt.handle(endpoint, request)

    return handler


def sse_lines(chunks: Iterable[bytes]) -> list[str]:
    """Decode SSE pieces into their ``data:`` payloads (a helper for format tests)."""
    out: list[str] = []
    for piece in chunks:
        for line in piece.decode().splitlines():
            if line.startswith("data: "):
                out.append(line[6:])
    return out
