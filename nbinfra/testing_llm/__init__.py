"""Local servers that speak LLM providers' wire formats, for tests with the real SDKs.

An ``LLMWireServer`` runs on ``nbinfra.testing.LocalHTTPServer`` and answers in one or
more ``WireFormat``\\ s, one module per provider family in this package
(``nbinfra.testing_llm.openai``: ``openai``, ``azure``, ``groq``; ``anthropic``,
``google``, ``huggingface``, ``ollama`` in their own modules), named in ``FORMATS``.
Point the official SDK at ``server.base_url(fmt)`` and script what it answers::

    with LLMWireServer("openai") as server:
        server.push(Reply("Hello!", usage=(12, 3)))
        server.push(Fault.rate_limited(retry_after=0.1), Reply("after the wait"))
        server.latency, server.limit = 0.05, ServerLimit(rpm=600)  # knobs, see .knobs
        ... call the SDK / provider ...
        assert server.traffic.max_in_flight <= 8
        body = server.last("chat").json()

Queued items are used in order: a ``Fault`` answers whatever request comes next
(including a models lookup); a ``Reply`` answers the next chat request. With an empty
queue, chat answers ``server.default``.

Adding a format: in a new module here, subclass ``WireFormat``, list its ``routes``
(method, path, endpoint), implement ``chat`` (JSON and streaming), ``stream_events`` and
``error`` (override ``is_stream``/``stream_content_type`` for NDJSON or path-based
streaming), and name it in ``FORMATS``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from nbinfra.testing import LocalHTTPServer, Request, Response
from nbinfra.testing_llm.knobs import Chaos, ServerLimit, Traffic

__all__ = [
    "FORMATS",
    "Chaos",
    "Fault",
    "LLMWireServer",
    "Reply",
    "ServerLimit",
    "Traffic",
    "WireFormat",
    "embedding_for",
    "format_class",
    "header",
    "split_words",
]


def __getattr__(name: str) -> Any:
    # ``from nbinfra.testing_llm import OpenAIFormat`` still works: format classes load
    # from their modules on first access.
    for target in FORMATS.values():
        module_name, _, attr = target.partition(":")
        if attr == name:
            return getattr(importlib.import_module(module_name), attr)
    raise AttributeError(f"module 'nbinfra.testing_llm' has no attribute {name!r}")


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
    chunk_delay: float = 0.0  # seconds between stream chunks (a slow stream to interrupt)

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
        server = self.server
        if endpoint != "chat":
            return self.answer(endpoint, request, None)
        return server.traffic.serve(
            server.latency,
            server.limit,
            server.chaos,
            lambda fault: self.answer(endpoint, request, fault),
        )

    def answer(self, endpoint: str, request: Request, forced: Fault | None) -> Response:
        """The answer to one request: ``forced`` (a knob's fault), else the script's next."""
        item = forced if forced is not None else self.server.next_item(endpoint)
        is_stream = endpoint == "chat" and self.is_stream(request)
        if isinstance(item, Fault):
            return self.fault(item, request, is_stream)
        if endpoint == "chat" and item is self.server.default:
            schema = self.answer_schema(request)
            if schema is not None:
                item = self.server.schema_reply(schema, request)
        if endpoint == "chat":
            response = self.chat(item, request, is_stream)
            if is_stream and item.chunk_delay:
                response.chunk_delay = item.chunk_delay
            return response
        return self.other(endpoint, request)

    def is_stream(self, request: Request) -> bool:
        try:
            return bool(request.json().get("stream"))
        except (ValueError, AttributeError):
            return False

    def chat(self, reply: Reply, request: Request, stream: bool) -> Response:
        raise NotImplementedError

    def answer_schema(self, request: Request) -> dict[str, Any] | None:
        """The JSON schema the request asks the answer to match (the provider's native
        structured-output mechanism), or None. With one, an unscripted chat request is
        answered with a JSON object generated from it (``LLMWireServer.schema_reply``)."""
        return None

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


# Format name -> "module:Class", imported when a server first uses it. Add yours here
# (one module per provider family under nbinfra/testing_llm/).
FORMATS: dict[str, str] = {
    "anthropic": "nbinfra.testing_llm.anthropic:AnthropicFormat",
    "azure": "nbinfra.testing_llm.openai:AzureFormat",
    "google": "nbinfra.testing_llm.google:GoogleFormat",
    "groq": "nbinfra.testing_llm.openai:GroqFormat",
    "huggingface": "nbinfra.testing_llm.huggingface:HuggingFaceFormat",
    "ollama": "nbinfra.testing_llm.ollama:OllamaFormat",
    "openai": "nbinfra.testing_llm.openai:OpenAIFormat",
}


def format_class(name: str) -> type[WireFormat]:
    """The ``WireFormat`` class registered as ``name``."""
    target = FORMATS.get(name)
    if target is None:
        raise KeyError(f"No wire format '{name}'; known: {', '.join(sorted(FORMATS))}.")
    module_name, _, attr = target.partition(":")
    cls: type[WireFormat] = getattr(importlib.import_module(module_name), attr)
    return cls


class LLMWireServer:
    """A local HTTP server answering in the given wire formats, with a script of replies."""

    def __init__(self, *formats: str | WireFormat, server: LocalHTTPServer | None = None) -> None:
        self.http = server or LocalHTTPServer()
        self.formats: dict[str, WireFormat] = {}
        self.default = Reply()
        self.models: dict[str, dict[str, Any]] = {}  # model id -> extra fields (context_window)
        self._queue: deque[Reply | Fault] = deque()
        # Requests carrying a schema: the first ``broken_schema_answers`` of them are
        # answered with JSON that misses the first required property (to test repair).
        self.broken_schema_answers = 0
        self.schema_answers = 0  # schema requests answered so far
        self._lock = threading.Lock()
        self._routes: set[tuple[str, str]] = set()
        # Knobs on chat requests and what was seen (nbinfra.testing_llm.knobs).
        self.latency = 0.0
        self.limit: ServerLimit | None = None
        self.chaos: Chaos | None = None
        self.traffic = Traffic()
        for fmt in formats or ("openai",):
            self.add_format(fmt)

    def add_format(self, fmt: str | WireFormat) -> WireFormat:
        instance = format_class(fmt)() if isinstance(fmt, str) else fmt
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
        self.traffic.clear()

    def reset(self) -> None:
        """``clear()``, and back to the default reply and no model facts."""
        self.clear()
        self.default = Reply()
        self.models.clear()
        self.broken_schema_answers = 0
        self.schema_answers = 0
        self.latency = 0.0
        self.limit = self.chaos = None

    def schema_reply(self, schema: dict[str, Any], request: Request) -> Reply:
        """The answer to a request carrying ``schema``: a generated object that matches
        it, or a broken one while ``broken_schema_answers`` lasts."""
        from nbinfra.llm.schema_example import broken_example, example

        with self._lock:
            broken = self.broken_schema_answers > 0
            if broken:
                self.broken_schema_answers -= 1
            self.schema_answers += 1
        make = broken_example if broken else example
        value = make(schema, seed=request.body.decode("utf-8", "replace"))
        return replace(self.default, text=json.dumps(value), chunks=None)

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
