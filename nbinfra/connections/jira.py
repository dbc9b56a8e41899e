"""Jira through atlassian-python-api: JQL search as a table, get and create issues.

::

    jira = ConnectionFactory.get_connection_manager("jira")
    result = await jira.execute_query("project = DEMO AND status = 'To Do'")
    result.df()                       # key, summary, status, issuetype, assignee, ...
    issue = await jira.create_issue("DEMO", "Broken build", issue_type="Bug")

Search reads ``startAt``/``maxResults``/``total`` pages on Jira Server/Data Center and
``nextPageToken`` pages on Jira Cloud (``cloud: true``) until ``limit`` issues are read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from nbinfra.connections._atlassian import AtlassianManager, AtlassianSettings, flatten
from nbinfra.connections.factory import ConnectionRegistry, ConnectionType
from nbinfra.connections.types import QueryResult
from nbinfra.errors import QueryError
from nbinfra.logs import get_logger

__all__ = ["JiraConnectionManager", "JiraSettings", "issues_table"]

log = get_logger(__name__)

# Columns of a search table (after ``key``), before any extra fields asked for.
BASE_FIELDS = ("summary", "status", "issuetype", "assignee", "priority", "created", "updated")


@dataclass
class JiraSettings(AtlassianSettings):
    """``connections.jira`` in application-external.yaml."""


@ConnectionRegistry.register(ConnectionType.JIRA)
class JiraConnectionManager(AtlassianManager):
    """Jira Server/Data Center or Cloud; auth by token or username/password."""

    kind = "jira"
    label = "Jira"
    settings_class = JiraSettings
    settings: JiraSettings

    def _make_client(self, kwargs: dict[str, Any]) -> Any:
        from atlassian import Jira

        return Jira(**kwargs)

    def _server_version(self, client: Any) -> str | None:
        if self.settings.cloud:  # Cloud hides serverInfo details from most users
            client.myself()
            return "Jira Cloud"
        info = client.get_server_info()
        return f"Jira {info.get('version')}" if isinstance(info, dict) else None

    # -- native operations ------------------------------------------------------------
    async def search_issues(
        self, jql: str, *, fields: list[str] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Issues matching ``jql`` as Jira returns them (every page, up to ``limit``)."""
        return await self._op("search", self._search_sync, jql, fields, limit)

    async def search(
        self, jql: str, *, fields: list[str] | None = None, limit: int | None = None
    ) -> QueryResult:
        """Issues matching ``jql`` as a table: key, the base fields, then ``fields``."""
        return await self._op("search", self._table_sync, jql, fields, limit)

    async def get_issue(self, key: str, *, fields: list[str] | None = None) -> dict[str, Any]:
        """One issue by key or id; ``QueryError`` when it does not exist."""
        wanted = ",".join(fields) if fields else "*all"
        issue: dict[str, Any] = await self._op(
            "get issue", lambda: self.client.issue(key, fields=wanted)
        )
        return issue

    async def create_issue(
        self,
        project: str,
        summary: str,
        *,
        issue_type: str = "Task",
        description: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create an issue (never retried); returns ``{"id", "key", "self"}``."""
        payload: dict[str, Any] = {
            "project": {"key": project},
            "summary": summary,
            "issuetype": {"name": issue_type},
            **fields,
        }
        if description is not None:
            payload["description"] = description
        created: dict[str, Any] = await self._op(
            "create issue", lambda: self.client.create_issue(fields=payload), idempotent=False
        )
        log.info("jira '%s': created issue %s", self.name, created.get("key"))
        return created

    # -- sync work (worker thread) ------------------------------------------------------
    def _execute_sync(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        if not isinstance(query, str) or not query.strip():
            raise QueryError('A Jira query is a JQL string, e.g. "project = DEMO".')
        fields = None
        if isinstance(params, dict) and params.get("fields"):
            fields = [str(f) for f in params["fields"]]
        return self._table_sync(query, fields, limit)

    def _table_sync(self, jql: str, fields: list[str] | None, limit: int | None) -> QueryResult:
        started = time.perf_counter()
        issues = self._search_sync(jql, fields, limit)
        result = issues_table(issues, fields)
        result.elapsed = time.perf_counter() - started
        result.statement = jql
        result.truncated = limit is not None and len(issues) >= limit
        return result

    def _search_sync(
        self, jql: str, fields: list[str] | None, limit: int | None
    ) -> list[dict[str, Any]]:
        client = self.client
        wanted = ",".join(dict.fromkeys([*BASE_FIELDS, *(fields or [])]))
        page_size = max(1, self.settings.page_size)
        found: list[dict[str, Any]] = []
        if self.settings.cloud:
            token: str | None = None
            while limit is None or len(found) < limit:
                size = page_size if limit is None else min(page_size, limit - len(found))
                page = client.enhanced_jql(jql, fields=wanted, nextPageToken=token, limit=size)
                issues = page.get("issues") or []
                found.extend(issues)
                token = page.get("nextPageToken")
                if page.get("isLast") or not token or not issues:
                    break
            return found if limit is None else found[:limit]
        start = 0
        while limit is None or len(found) < limit:
            size = page_size if limit is None else min(page_size, limit - len(found))
            page = client.jql(jql, fields=wanted, start=start, limit=size)
            issues = page.get("issues") or []
            found.extend(issues)
            start += len(issues)
            # The server may cap maxResults below what was asked: trust startAt + total.
            if not issues or start >= int(page.get("total") or 0):
                break
        return found if limit is None else found[:limit]


def issues_table(issues: list[dict[str, Any]], extra: list[str] | None = None) -> QueryResult:
    """Jira issues as rows: ``key``, the base fields, then ``extra`` (flattened)."""
    names = list(dict.fromkeys([*BASE_FIELDS, *(extra or [])]))
    rows = []
    for issue in issues:
        values = issue.get("fields") or {}
        rows.append((issue.get("key"), *(flatten(values.get(n)) for n in names)))
    return QueryResult(columns=["key", *names], rows=rows)
