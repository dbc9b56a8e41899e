"""The pytest fixtures over ``nbinfra.testing``'s services (registered by loading
``nbinfra.testing`` as a plugin: ``pytest_plugins = ["nbinfra.testing"]``)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from nbinfra.testing.http import LocalHTTPServer
from nbinfra.testing.servers import (
    MariaDBServer,
    MongoServer,
    PostgresServer,
    RedisServer,
    S3Server,
    service_unavailable,
)

__all__ = [
    "local_http_server",
    "mariadb_server",
    "mongo_server",
    "nbinfra_session",
    "postgres_server",
    "redis_server",
    "redis_server_factory",
    "s3_server",
    "silent_port",
]


S = TypeVar("S", RedisServer, MariaDBServer, MongoServer)


def _started(server_class: type[S], label: str) -> S:
    """A started private server, or the missing-service policy (skip, or fail in CI)."""
    try:
        return server_class().start()
    except (FileNotFoundError, RuntimeError, TimeoutError) as exc:
        service_unavailable(label, str(exc))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private Redis for the whole test session (flush it in tests that need empty)."""
    server = _started(RedisServer, "redis-server")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[[], RedisServer]]:
    """Start private Redis servers a test may kill and restart; all stopped afterwards."""
    started: list[RedisServer] = []

    def make() -> RedisServer:
        server = _started(RedisServer, "redis-server")
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
def mariadb_server() -> Iterator[MariaDBServer]:
    """One private MariaDB (``mariadbd``) for the whole test session; tests that restart
    it must leave it running."""
    server = _started(MariaDBServer, "MariaDB server")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[MongoServer]:
    """One private nx-27017 MongoDB server for the whole test session."""
    server = _started(MongoServer, "nx-27017 MongoDB server")
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
