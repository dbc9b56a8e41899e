"""The connection-manager contract now ships in ``nbinfra.testing.connection_contract``."""

from __future__ import annotations

from nbinfra.testing.connection_contract import ConnectionContract

ManagerContract = ConnectionContract

__all__ = ["ManagerContract"]
