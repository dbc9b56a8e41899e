"""Real services for tests, as plain classes and as pytest fixtures.

Load the fixtures with ``pytest_plugins = ["nbinfra.testing"]`` in a ``conftest.py``.

- ``servers``: ``RedisServer``, ``PostgresServer`` (with pgvector), ``MongoServer``,
  ``S3Server``, ``MariaDBServer``, ``free_port`` and the missing-service policy
  (``service_unavailable``:
  a skip, or a failure under ``NBINFRA_REQUIRE_SERVICES=1``, which CI sets).
- ``http``: ``LocalHTTPServer``, ``Request``, ``Response``, for faking REST and
  streaming (SSE/NDJSON) APIs: Jira, Confluence, LLM providers.
- ``fixtures``: the pytest fixtures over them.
- The contracts a backend's test file subclasses, one module each (imported by name, so
  that loading the fixtures pulls in no test framework beyond pytest):
  ``cache_contract.CacheContract`` (with ``cache_compute_once.ComputeOnceContract``),
  ``connection_contract.ConnectionContract``, ``sql_contract.SQLContract``,
  ``vector_contract.VectorStoreContract`` and ``llm_wire_contract.LLMWireContract``.

The names of the first three are importable from ``nbinfra.testing`` itself.
"""

from __future__ import annotations

from nbinfra.testing.fixtures import local_http_server as local_http_server
from nbinfra.testing.fixtures import mariadb_server as mariadb_server
from nbinfra.testing.fixtures import mongo_server as mongo_server
from nbinfra.testing.fixtures import nbinfra_session as nbinfra_session
from nbinfra.testing.fixtures import postgres_server as postgres_server
from nbinfra.testing.fixtures import redis_server as redis_server
from nbinfra.testing.fixtures import redis_server_factory as redis_server_factory
from nbinfra.testing.fixtures import s3_server as s3_server
from nbinfra.testing.fixtures import silent_port as silent_port
from nbinfra.testing.http import Handler as Handler
from nbinfra.testing.http import LocalHTTPServer, Request, Response
from nbinfra.testing.servers import (
    MariaDBServer,
    MongoServer,
    PostgresServer,
    RedisServer,
    S3Server,
    free_port,
    require_services,
    service_unavailable,
)
from nbinfra.testing.servers import _die_with_parent as _die_with_parent
from nbinfra.testing.servers import find_redis_server as find_redis_server
from nbinfra.testing.servers import warnings_ignored as warnings_ignored

__all__ = [
    "LocalHTTPServer",
    "MariaDBServer",
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
