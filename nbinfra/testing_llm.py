"""Local servers that speak LLM providers' wire formats, for tests with the real SDKs.

An ``LLMWireServer`` runs on ``nbinfra.testing.LocalHTTPServer`` and answers in one or
more ``WireFormat``\\ s (``openai``, ``azure``, ``groq`` here; add others to ``FORMATS``).
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
    "AzureFormat",
    "Fault",
    "GroqFormat",
    "LLMWireServer",
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


FORMATS: dict[str, type[WireFormat]] = {
    "azure": AzureFormat,
    "groq": GroqFormat,
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
