"""Texts and the uniform query on a vector store: ``add_texts``, ``search_text`` and
``execute_query(text_or_vector, {"collection": ..., "top_k": ..., "filter": ...})``.

A mixin for ``VectorStore`` (see vector.py for the contract): it embeds with the store's
``embedder`` and calls the store's own validated methods.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from nbinfra.connections._parts import ManagerParts
from nbinfra.connections.types import QueryResult
from nbinfra.connections.vector_types import (
    CollectionInfo,
    Ids,
    Progress,
    SearchHit,
    VectorRecord,
    as_vector,
    hits_to_result,
    normalise_ids,
    parse_filter,
)

if TYPE_CHECKING:
    from nbinfra.connections.embeddings import Embedder
    from nbinfra.connections.vector import VectorStoreSettings

__all__ = ["TextsMixin"]

T = TypeVar("T")


class TextsMixin(ManagerParts):
    """Embedding on top of the vector-store API."""

    if TYPE_CHECKING:  # provided by VectorStore (see there for the signatures)
        settings: VectorStoreSettings
        collection_exists: Callable[..., Awaitable[bool]]
        create_collection: Callable[..., Awaitable[None]]
        count: Callable[..., Awaitable[int]]
        get: Callable[..., Awaitable[list[VectorRecord]]]
        upsert: Callable[..., Awaitable[int]]
        search: Callable[..., Awaitable[list[SearchHit]]]
        _check_payloads: Callable[..., list[dict[str, Any] | None]]
        _info: Callable[..., Awaitable[CollectionInfo | None]]
        _v_search: Callable[..., Awaitable[list[SearchHit]]]

        @property
        def embedder(self) -> Embedder: ...

    # -- texts --------------------------------------------------------------------
    async def add_texts(
        self,
        collection: str,
        texts: Sequence[str],
        ids: Ids | None = None,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        batch_size: int | None = None,
        progress: Progress | None = None,
    ) -> list[str]:
        """Embed ``texts``, store them with ``{"text": ...}`` in the payload; returns ids.

        The collection is created for the embedder's size when it does not exist. Ids
        default to ``n, n+1, ...`` after the current count ``n`` (random hex UUIDs when one
        of those is taken), so existing points are never overwritten by default.
        """
        items = list(texts)
        vectors = await self.embedder.embed(items)
        if not await self.collection_exists(collection):
            dim = self.embedder.dim or (len(vectors[0]) if vectors else None)
            if dim is None:
                raise ValueError("add_texts() needs at least one text to create a collection.")
            await self.create_collection(collection, dim)
        if ids is None:
            first = await self.count(collection)
            keys = [str(first + i) for i in range(len(items))]
            if keys and await self.get(collection, keys):
                # Deletions left gaps, so counting on would overwrite points: use UUIDs.
                keys = [uuid.uuid4().hex for _ in items]
        else:
            keys = normalise_ids(ids)
        extra = self._check_payloads(payloads, len(items))
        merged = [{**(p or {}), "text": t} for p, t in zip(extra, items, strict=True)]
        await self.upsert(
            collection, keys, vectors, merged, batch_size=batch_size, progress=progress
        )
        return keys

    async def search_text(
        self,
        collection: str,
        text: str,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
    ) -> list[SearchHit]:
        """``search`` with the embedding of ``text``."""
        vector = await self.embedder.embed_query(text)
        return await self.search(collection, vector, top_k, filter)

    # -- execute_query --------------------------------------------------------------
    def _is_idempotent(self, query: Any) -> bool:
        return True  # a vector query only reads

    async def _execute(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        start = time.perf_counter()
        options = dict(params or {})
        unknown = set(options) - {"collection", "top_k", "filter"}
        if unknown:
            raise ValueError(
                f"execute_query params take collection, top_k and filter; got {sorted(unknown)}."
            )
        collection = options.get("collection") or self.settings.collection
        if not collection:
            raise ValueError(
                "No collection: pass params={'collection': name} or set `collection` for "
                f"connection '{self.name}'."
            )
        top_k = int(options.get("top_k") or limit or 10)
        if limit is not None:
            top_k = min(top_k, limit)
        if isinstance(query, str):
            vector: Any = await self.embedder.embed_query(query)
            statement = f"search {collection} for text {query[:60]!r} top {top_k}"
        else:
            vector = query
            statement = f"search {collection} by vector top {top_k}"
        info = await self._info(collection)
        assert info is not None
        row = as_vector(vector, info.dim, info.distance)
        hits = await self._v_search(info, row, top_k, parse_filter(options.get("filter")))
        return hits_to_result(hits, time.perf_counter() - start, statement)
