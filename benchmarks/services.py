"""Real services shared by every benchmark area of one run (started once, closed at the end).

An embedded PostgreSQL takes seconds to initialise; the areas that need one share it
(and MariaDB's data folder likewise).
"""

from __future__ import annotations

import contextlib
from typing import Any

_started: dict[str, Any] = {}


def postgres() -> Any:
    """The run's embedded PostgreSQL (``nbinfra.testing.PostgresServer``), with pgvector."""
    if "postgres" not in _started:
        from nbinfra.testing import PostgresServer

        _started["postgres"] = PostgresServer().start()
    return _started["postgres"]


def mariadb() -> Any:
    """The run's private MariaDB (``nbinfra.testing.MariaDBServer``)."""
    if "mariadb" not in _started:
        from nbinfra.testing import MariaDBServer

        _started["mariadb"] = MariaDBServer().start()
    return _started["mariadb"]


def close_all() -> None:
    for server in _started.values():
        with contextlib.suppress(Exception):
            server.close()
    _started.clear()
