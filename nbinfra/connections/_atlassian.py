"""What the Jira and Confluence managers share: settings, client and auth, error translation.

atlassian-python-api is synchronous (requests), so both managers use the sync base: the
client runs in the manager's worker thread and every call is awaited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nbinfra._bounds import AtLeastOne, PositiveFloat
from nbinfra._secrets import Secret, mask_url, reveal
from nbinfra.connections._client import ClientManager
from nbinfra.connections.settings import ConnectionSettings, one_line
from nbinfra.errors import ConfigError, ConnectionUnavailableError, ConnError, QueryError

__all__ = ["AtlassianManager", "AtlassianSettings", "flatten"]


@dataclass
class AtlassianSettings(ConnectionSettings):
    """Jira/Confluence settings. A token wins over username/password."""

    url: str = ""
    token: Secret | None = None  # personal access token (Server/Data Center)
    username: str | None = None
    password: Secret | None = None  # on Atlassian Cloud: the API token
    cloud: bool = False
    verify_ssl: bool = True
    page_size: AtLeastOne = 50  # results asked per request while paginating
    connect_timeout: PositiveFloat = 10.0
    timeout: PositiveFloat = 60.0

    def target(self) -> str:
        return mask_url(self.url) if self.url else "(no url)"


class AtlassianManager(ClientManager):
    """Shared lifecycle of the Jira and Confluence managers."""

    settings: AtlassianSettings

    # -- hooks for subclasses -----------------------------------------------------------
    def _make_client(self, kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _server_version(self, client: Any) -> str | None:
        raise NotImplementedError

    # -- lifecycle ----------------------------------------------------------------------
    def _open_sync(self) -> None:
        s = self.settings
        if not s.url:
            raise ConfigError(
                f"No URL for {self.label} connection '{self.name}': set url under "
                f"connections.{self.name} in resources/application-external.yaml."
            )
        kwargs: dict[str, Any] = {
            "url": s.url.rstrip("/"),
            "cloud": s.cloud,
            "verify_ssl": s.verify_ssl,
        }
        token, password = reveal(s.token), reveal(s.password)
        if token:
            kwargs["token"] = token
        elif s.username and password:
            kwargs["username"] = s.username
            kwargs["password"] = password
        client = self._make_client(kwargs)
        # The constructor truncates timeouts to whole seconds; requests takes a
        # (connect, read) pair, which keeps a dead host from costing the read timeout.
        client.timeout = (float(s.connect_timeout), float(s.timeout))
        self._keep(client, self._server_version)

    def _ping_sync(self) -> str | None:
        return self._server_version(self.client)

    def _is_idempotent(self, query: Any) -> bool:
        return True  # execute_query only searches

    # -- errors (the one boundary for requests/atlassian exceptions) --------------------
    def _translate(self, exc: BaseException, what: str) -> ConnError:
        import requests

        where = f"{self.label} at {self.target}"
        if isinstance(exc, requests.exceptions.Timeout):
            return ConnectionUnavailableError(
                f"{where} did not answer in time ({what}); check the url or raise "
                "connect_timeout/timeout."
            )
        if isinstance(exc, requests.exceptions.ConnectionError):
            return ConnectionUnavailableError(
                f"Cannot reach {where} ({what}): {_reason(exc)}; check the url and that the "
                "server is up."
            )
        response = getattr(exc, "response", None)
        reason = getattr(exc, "reason", None)
        if response is None and reason is not None:
            response = getattr(reason, "response", None)
        status = getattr(response, "status_code", None)
        detail = one_line(str(exc)) or (f"HTTP {status}" if status else type(exc).__name__)
        if status in (401, 403):
            return ConnError(
                f"{where} refused the credentials (HTTP {status}); set token, or username "
                f"and password, under connections.{self.name}."
            )
        if status == 404:
            return QueryError(f"{where}: not found ({what}): {detail}")
        if status is not None and status >= 500:
            return ConnectionUnavailableError(f"{where} failed (HTTP {status}): {detail}")
        if status is not None:
            return QueryError(f"{where} rejected the {what} (HTTP {status}): {detail}")
        return QueryError(f"{where}: {what} failed: {detail}")


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


def flatten(value: Any) -> Any:
    """A table cell from a JSON field: named objects become their name, lists are joined."""
    if isinstance(value, dict):
        for key in ("displayName", "name", "value", "key", "id"):
            if key in value:
                return value[key]
        return json.dumps(value, sort_keys=True)
    if isinstance(value, list):
        return ", ".join(str(flatten(v)) for v in value)
    return value
