"""Confluence through atlassian-python-api: CQL search as a table, get and create pages.

::

    wiki = ConnectionFactory.get_connection_manager("confluence")
    (await wiki.execute_query("space = DOCS AND type = page")).df()
    page = await wiki.get_page("65001")             # with body.storage, version, space
    await wiki.create_page("DOCS", "Release notes", "<p>Shipped.</p>")

Search follows ``_links.next`` page by page until ``limit`` results are read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import islice
from typing import Any

from nbinfra.connections._atlassian import AtlassianManager, AtlassianSettings, flatten
from nbinfra.connections.factory import ConnectionRegistry, ConnectionType
from nbinfra.connections.types import QueryResult
from nbinfra.errors import QueryError
from nbinfra.logs import get_logger

__all__ = ["ConfluenceConnectionManager", "ConfluenceSettings", "results_table"]

log = get_logger(__name__)

COLUMNS = ["id", "title", "type", "space", "last_modified", "url", "excerpt"]


@dataclass
class ConfluenceSettings(AtlassianSettings):
    """``connections.confluence`` in application-external.yaml."""

    page_size: int = 25


@ConnectionRegistry.register(ConnectionType.CONFLUENCE)
class ConfluenceConnectionManager(AtlassianManager):
    """Confluence Server/Data Center (REST v1 search); auth by token or user/password."""

    kind = "confluence"
    label = "Confluence"
    settings_class = ConfluenceSettings
    settings: ConfluenceSettings

    def _make_client(self, kwargs: dict[str, Any]) -> Any:
        from atlassian import Confluence

        wrapper = Confluence(**kwargs)  # type: ignore[no-untyped-call]
        # The legacy class forwards attribute reads to a server or cloud client; use that
        # client directly so attributes set on it (the timeout) reach the requests made.
        return getattr(wrapper, "_impl", wrapper)

    def _server_version(self, client: Any) -> str | None:
        client.get_all_spaces(start=0, limit=1)  # cheap, authenticated; no version exposed
        return None

    # -- native operations ------------------------------------------------------------
    async def search_content(
        self, cql: str, *, limit: int | None = None, expand: str | None = None
    ) -> list[dict[str, Any]]:
        """CQL results as Confluence returns them (every page, up to ``limit``)."""
        return await self._op("search", self._search_sync, cql, limit, expand)

    async def search(self, cql: str, *, limit: int | None = None) -> QueryResult:
        """CQL results as a table: id, title, type, space, last_modified, url, excerpt."""
        return await self._op("search", self._table_sync, cql, limit)

    async def get_page(
        self, page_id: str | int, *, expand: str = "body.storage,version,space"
    ) -> dict[str, Any]:
        """One page by id with its storage body and version; ``QueryError`` when absent."""
        page: dict[str, Any] = await self._op(
            "get page", lambda: self.client.get_page_by_id(str(page_id), expand=expand)
        )
        return page

    async def create_page(
        self,
        space: str,
        title: str,
        body: str,
        *,
        parent_id: str | int | None = None,
        representation: str = "storage",
    ) -> dict[str, Any]:
        """Create a page in ``space`` (a space key, never retried); returns the new page."""
        parent = str(parent_id) if parent_id is not None else None
        page: dict[str, Any] = await self._op(
            "create page",
            lambda: self.client.create_page(
                space, title, body, parent_id=parent, representation=representation
            ),
            idempotent=False,
        )
        log.info("confluence '%s': created page %s in %s", self.name, page.get("id"), space)
        return page

    # -- sync work (worker thread) ------------------------------------------------------
    def _execute_sync(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        if not isinstance(query, str) or not query.strip():
            raise QueryError('A Confluence query is a CQL string, e.g. "space = DOCS".')
        return self._table_sync(query, limit)

    def _table_sync(self, cql: str, limit: int | None) -> QueryResult:
        started = time.perf_counter()
        results = self._search_sync(cql, limit, None)
        table = results_table(results)
        table.elapsed = time.perf_counter() - started
        table.statement = cql
        table.truncated = limit is not None and len(results) >= limit
        return table

    def _search_sync(self, cql: str, limit: int | None, expand: str | None) -> list[dict[str, Any]]:
        page_size = max(1, self.settings.page_size)
        if limit is not None:
            page_size = min(page_size, max(1, limit))
        # iter_cql follows _links.next lazily, so islice stops before an extra request.
        pages = self.client.iter_cql(cql, start=0, limit=page_size, expand=expand)
        return list(islice(pages, limit) if limit is not None else pages)


def results_table(results: list[dict[str, Any]]) -> QueryResult:
    """CQL search results as rows of ``COLUMNS``."""
    rows = []
    for item in results:
        content = item.get("content") or {}
        rows.append(
            (
                content.get("id"),
                item.get("title") or content.get("title"),
                content.get("type") or item.get("entityType"),
                flatten((content.get("space") or {}).get("key")),
                item.get("lastModified"),
                item.get("url") or (content.get("_links") or {}).get("webui"),
                item.get("excerpt"),
            )
        )
    return QueryResult(columns=list(COLUMNS), rows=rows)
