"""MongoDB's document operations: ``find``, ``aggregate``, ``insert_*``, ``update_*``,
``delete_*`` and the rest, each one call in the manager's worker thread.

A mixin for ``MongoDBConnectionManager``: reads are retried after a lost connection,
writes never are (``_on`` tells them apart by the method's name).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from nbinfra.connections.mongo_query import documents_table, update_document, update_summary

__all__ = ["DocumentsMixin"]

T = TypeVar("T")


class DocumentsMixin:
    """The document API of a MongoDB manager."""

    if TYPE_CHECKING:  # provided by the manager

        @property
        def database(self) -> Any: ...

        def _collection(self, name: str) -> Any: ...

        async def _op(
            self, what: str, fn: Callable[..., T], *args: Any, idempotent: bool = True, **kw: Any
        ) -> T: ...

        _find_sync: Callable[..., list[dict[str, Any]]]
        _aggregate_sync: Callable[..., list[dict[str, Any]]]

    async def _on(self, collection: str, method: str, *args: Any, **kw: Any) -> Any:
        """``collection.method(*args, **kw)``; writes are never retried."""
        writes = ("insert", "update", "delete", "replace")

        def run() -> Any:
            return getattr(self._collection(collection), method)(*args, **kw)

        return await self._op(
            f"{method} on {collection}", run, idempotent=not method.startswith(writes)
        )

    # -- reads ----------------------------------------------------------------------------
    async def find(
        self,
        collection: str,
        filter: Mapping[str, Any] | None = None,
        *,
        projection: Mapping[str, Any] | Sequence[str] | None = None,
        sort: Sequence[tuple[str, int]] | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Documents matching ``filter`` (all of them unless ``limit``)."""
        return await self._op(
            f"find on {collection}",
            self._find_sync,
            collection,
            dict(filter or {}),
            projection,
            sort,
            skip,
            limit,
        )

    async def find_one(
        self,
        collection: str,
        filter: Mapping[str, Any] | None = None,
        *,
        projection: Mapping[str, Any] | Sequence[str] | None = None,
    ) -> dict[str, Any] | None:
        found = await self.find(collection, filter, projection=projection, limit=1)
        return found[0] if found else None

    async def aggregate(
        self, collection: str, pipeline: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """The documents an aggregation pipeline produces (``$out``/``$merge`` not retried)."""
        stages = [dict(stage) for stage in pipeline]
        writes = any("$out" in stage or "$merge" in stage for stage in stages)
        return await self._op(
            f"aggregate on {collection}",
            self._aggregate_sync,
            collection,
            stages,
            None,
            idempotent=not writes,
        )

    async def count_documents(
        self, collection: str, filter: Mapping[str, Any] | None = None
    ) -> int:
        return int(await self._on(collection, "count_documents", dict(filter or {})))

    async def list_collections(self) -> list[str]:
        names: list[str] = await self._op(
            "list collections", lambda: sorted(self.database.list_collection_names())
        )
        return names

    async def find_df(
        self, collection: str, filter: Mapping[str, Any] | None = None, **options: Any
    ) -> Any:
        """``find`` as a pandas DataFrame (``_id`` as text)."""
        return documents_table(await self.find(collection, filter, **options)).df()

    # -- writes (never retried) -----------------------------------------------------------
    async def insert_one(self, collection: str, document: Mapping[str, Any]) -> Any:
        """Insert one document; returns its ``_id``."""
        answer = await self._on(collection, "insert_one", dict(document))
        return answer.inserted_id

    async def insert_many(
        self, collection: str, documents: Sequence[Mapping[str, Any]]
    ) -> list[Any]:
        """Insert documents in order; returns their ``_id`` values."""
        if not documents:
            return []
        answer = await self._on(collection, "insert_many", [dict(d) for d in documents])
        return list(answer.inserted_ids)

    async def update_one(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        upsert: bool = False,
    ) -> dict[str, Any]:
        """Update the first match; returns ``matched``, ``modified``, ``upserted_id``."""
        answer = await self._on(
            collection, "update_one", dict(filter), update_document(update), upsert=upsert
        )
        return update_summary(answer)

    async def update_many(
        self,
        collection: str,
        filter: Mapping[str, Any],
        update: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        upsert: bool = False,
    ) -> dict[str, Any]:
        """Update every match; returns ``matched``, ``modified``, ``upserted_id``."""
        answer = await self._on(
            collection, "update_many", dict(filter), update_document(update), upsert=upsert
        )
        return update_summary(answer)

    async def delete_one(self, collection: str, filter: Mapping[str, Any]) -> int:
        answer = await self._on(collection, "delete_one", dict(filter))
        return int(answer.deleted_count)

    async def delete_many(self, collection: str, filter: Mapping[str, Any]) -> int:
        """Delete every match (``{}`` deletes all: it must be passed explicitly)."""
        answer = await self._on(collection, "delete_many", dict(filter))
        return int(answer.deleted_count)

    async def drop_collection(self, collection: str) -> None:
        await self._op(
            f"drop {collection}",
            lambda: self.database.drop_collection(collection),
            idempotent=False,
        )
