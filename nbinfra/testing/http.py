"""A local HTTP server with a route table, for faking REST and streaming APIs.

``LocalHTTPServer`` answers each ``route(method, path, handler)`` with a ``Response``
(a body, or ``chunks`` streamed with chunked encoding: SSE, NDJSON) and records every
``Request``: Jira, Confluence and the LLM providers' wire formats are faked on it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Handler", "LocalHTTPServer", "Request", "Response"]


@dataclass
class Request:
    """A request the local server received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    """What a route answers. ``chunks`` streams (each flushed); ``delay`` stalls first."""

    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes | str] | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    cut_after: int | None = None  # close the socket after this many chunks (a cut stream)


Handler = Callable[[Request], Response]


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops the SYNs of a burst of new connections
    # (a client opening 32 at once), which then wait a second for the retransmission.
    request_queue_size = 128


class LocalHTTPServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 with ``route(method, path, handler)``.

    Every request is recorded in ``requests``. A route whose handler returns ``chunks``
    streams them with chunked encoding, flushing each one (SSE, NDJSON).
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Request] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, method: str, path: str, handler: Handler | Response) -> None:
        """Answer ``method path`` (path without query; ``*`` suffix = prefix match)."""
        if isinstance(handler, Response):
            fixed = handler

            def answer(_request: Request) -> Response:
                return fixed

            handler = answer
        self.routes[(method.upper(), path)] = handler

    def _find(self, method: str, path: str) -> Handler | None:
        exact = self.routes.get((method, path))
        if exact is not None:
            return exact
        for (m, p), fn in self.routes.items():
            if m == method and p.endswith("*") and path.startswith(p[:-1]):
                return fn
        return None

    def start(self) -> LocalHTTPServer:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without TCP_NODELAY the body
            # waits for the client's delayed ACK (about 40 ms per request).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                request = Request(self.command, path, query, dict(self.headers.items()), body)
                server.requests.append(request)
                handler = server._find(self.command, path)
                if handler is None:
                    response = Response(404, {"error": f"no route for {self.command} {path}"})
                else:
                    try:
                        response = handler(request)
                    except Exception as exc:  # noqa: BLE001 - report to the client
                        response = Response(500, {"error": repr(exc)})
                self._send(response)

            def _send(self, response: Response) -> None:
                if response.delay:
                    time.sleep(response.delay)
                if response.chunks is not None:
                    self.send_response(response.status)
                    for k, v in response.headers.items():
                        self.send_header(k, v)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i, chunk in enumerate(response.chunks):
                        if response.cut_after is not None and i >= response.cut_after:
                            self.wfile.flush()
                            self.connection.shutdown(socket.SHUT_RDWR)
                            self.close_connection = True
                            return
                        data = chunk.encode() if isinstance(chunk, str) else chunk
                        if not data:
                            continue
                        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                        if response.chunk_delay:
                            time.sleep(response.chunk_delay)
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return
                body = response.body
                headers = dict(response.headers)
                if isinstance(body, (dict, list)):
                    payload = json.dumps(body).encode()
                    headers.setdefault("Content-Type", "application/json")
                elif isinstance(body, str):
                    payload = body.encode()
                else:
                    payload = body or b""
                self.send_response(response.status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        # A short poll interval: stop() waits for the serve loop to notice, once per test.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
