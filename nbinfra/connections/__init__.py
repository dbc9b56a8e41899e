"""Connection managers: databases, vector stores and external services.

Importing this package imports no driver: backends load through ``ConnectionRegistry``
on first use.
"""

from nbinfra.connections.base import (
    AsyncBaseConnectionManager,
    BaseConnectionManager,
    ConnectionManager,
    RetryPolicy,
)
from nbinfra.connections.factory import (
    ConnectionFactory,
    ConnectionRegistry,
    ConnectionType,
    get_connection_manager,
)
from nbinfra.connections.health import HealthReport, check_health
from nbinfra.connections.settings import (
    ConnectionSettings,
    ConnectionSpec,
    configured_connections,
)
from nbinfra.connections.sync import SyncConnection, conn
from nbinfra.connections.types import HealthStatus, QueryResult

__all__ = [
    "AsyncBaseConnectionManager",
    "BaseConnectionManager",
    "ConnectionFactory",
    "ConnectionManager",
    "ConnectionRegistry",
    "ConnectionSettings",
    "ConnectionSpec",
    "ConnectionType",
    "HealthReport",
    "HealthStatus",
    "QueryResult",
    "RetryPolicy",
    "SyncConnection",
    "check_health",
    "configured_connections",
    "conn",
    "get_connection_manager",
]
