"""The vector-store contract shared by qdrant, chromadb and pgvector.

Every store offers the same async API with the same meaning:

- ``create_collection(name, dim, distance="cosine")``, ``drop_collection``,
  ``list_collections``, ``collection_exists``;
- ``upsert(collection, ids, vectors, payloads=None, *, batch_size=None, progress=None)``:
  inputs are checked whole before the first write (lengths, unique ids, dimension, finite
  and, for cosine, non-zero vectors, JSON payloads), then written in batches; ``progress``
  is called as ``progress(done, total)`` after each batch;
- ``search(collection, vector, top_k=10, filter=None) -> list[SearchHit]``, best first.
  ``score`` is higher-is-better everywhere: the cosine similarity for ``cosine``, the inner
  product for ``dot``, minus the Euclidean distance for ``euclid``;
- ``get``, ``delete`` (by ids and/or filter), ``count`` (optionally filtered);
- ``add_texts``/``search_text`` embed with the store's ``embedder`` (hashing by default);
- ``execute_query(text_or_vector, {"collection": ..., "top_k": ..., "filter": ...})``
  returns the search as a ``QueryResult`` (columns ``id``, ``score``, then payload keys).

Payloads are JSON mappings; a ``None`` value means the key is absent (Chroma cannot store
it), and Chroma also refuses nested mappings. Cosine collections store unit-length vectors
on every store (Qdrant always does), so ``get(..., with_vectors=True)`` agrees across them.

Ids are strings (integers are accepted and turned into their decimal string). Filters are
one portable dialect, ANDed over keys: ``{"lang": "en", "year": {"$gte": 2020},
"tag": {"$in": ["a", "b"]}}`` with ``$eq $ne $in $nin $gt $gte $lt $lte``. ``$ne``/``$nin``
also match records that lack the key, on every backend.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from nbinfra._bounds import AtLeastOne
from nbinfra.connections.base import ConnectionManager
from nbinfra.connections.settings import ConnectionSettings
from nbinfra.connections.vector_text import TextsMixin
from nbinfra.connections.vector_types import (
    DISTANCES,
    CollectionInfo,
    Condition,
    Distance,
    Ids,
    Progress,
    SearchHit,
    VectorRecord,
    as_matrix,
    as_vector,
    check_unique,
    is_json,
    normalise_ids,
    parse_filter,
    portable_name,
)
from nbinfra.errors import QueryError

if TYPE_CHECKING:
    import numpy as np

    from nbinfra.connections.embeddings import Embedder

__all__ = [
    "DISTANCES",
    "CollectionInfo",
    "Condition",
    "Distance",
    "Progress",
    "SearchHit",
    "VectorRecord",
    "VectorStore",
    "VectorStoreSettings",
    "parse_filter",
]


@dataclass
class VectorStoreSettings(ConnectionSettings):
    """Settings every vector store accepts, on top of the connection ones."""

    collection: str = ""  # default collection for execute_query / search_text
    embedder: str = "hashing"  # see nbinfra.connections.embeddings.get_embedder
    embedder_options: dict[str, Any] = field(default_factory=dict)
    batch_size: AtLeastOne = 256  # points per write


class VectorStore(TextsMixin, ConnectionManager):
    """The vector-store API; backends implement the ``_v_*`` hooks (validated inputs).

    Public methods check their arguments, look the collection up (cached), and run the
    hook through ``_call`` (timeout, error translation, reconnect, retries for the
    idempotent ones: every read, upserts and deletes by id).
    """

    settings_class: ClassVar[type[ConnectionSettings]] = VectorStoreSettings
    settings: VectorStoreSettings
    default_batch_size: int = 256
    max_batch_size: int | None = None

    def __init__(self, *args: Any, embedder: Embedder | str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._embedder: Embedder | None = None
        self._embedder_spec = embedder
        self._collections: dict[str, CollectionInfo] = {}

    # -- embedder -------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        """The embedder for ``add_texts``/``search_text`` (``settings.embedder``)."""
        if self._embedder is None:
            from nbinfra.connections.embeddings import get_embedder

            spec = self._embedder_spec
            if spec is None or isinstance(spec, str):
                options = dict(self.settings.embedder_options) if spec is None else {}
                self._embedder = get_embedder(spec or self.settings.embedder, **options)
            else:
                self._embedder = spec
        return self._embedder

    # -- collections --------------------------------------------------------------
    async def create_collection(
        self, name: str, dim: int, distance: str = "cosine", *, exist_ok: bool = False
    ) -> None:
        """Create ``name`` for ``dim``-sized vectors; ``exist_ok`` accepts a matching one.

        Names follow the one rule all three stores accept (so a collection can move between
        them): 3-63 letters, digits, ``.``, ``_`` or ``-``, starting and ending with a letter
        or digit.
        """
        self._check_name(name)
        if not portable_name(name):
            raise ValueError(
                f"Collection name {name!r}: use 3-63 letters, digits, '.', '_' or '-', "
                "starting and ending with a letter or digit (accepted by every vector store)."
            )
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}.")
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {', '.join(DISTANCES)}, got {distance!r}.")
        existing = await self._info(name, required=False)
        if existing is not None:
            if not exist_ok:
                raise QueryError(
                    f"Collection '{name}' already exists in {self.kind} '{self.name}'; pass "
                    "exist_ok=True to reuse it or drop_collection() it first."
                )
            if (existing.dim, existing.distance) != (dim, distance):
                raise QueryError(
                    f"Collection '{name}' exists with dim={existing.dim}, "
                    f"distance={existing.distance}, not dim={dim}, distance={distance}."
                )
            return
        await self._call(
            lambda: self._v_create(name, dim, distance), what="create collection", idempotent=False
        )
        self._collections[name] = CollectionInfo(name, dim, distance)

    async def drop_collection(self, name: str, *, missing_ok: bool = True) -> bool:
        """Drop ``name``; returns whether it existed."""
        self._check_name(name)
        self._collections.pop(name, None)
        existed = await self._call(
            lambda: self._v_drop(name), what="drop collection", idempotent=True
        )
        if not existed and not missing_ok:
            raise QueryError(self._missing(name))
        return existed

    async def list_collections(self) -> list[str]:
        """Collection names, sorted."""
        names = await self._call(self._v_list, what="list collections", idempotent=True)
        return sorted(names)

    async def collection_exists(self, name: str) -> bool:
        return await self._info(name, required=False, fresh=True) is not None

    async def collection_info(self, name: str) -> CollectionInfo:
        """Dimension and distance of ``name``."""
        info = await self._info(name)
        assert info is not None
        return info

    # -- points -------------------------------------------------------------------
    async def upsert(
        self,
        collection: str,
        ids: Ids,
        vectors: Any,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        batch_size: int | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Insert or replace points; returns how many were written."""
        import numpy as np

        info = await self._info(collection)
        assert info is not None
        keys = normalise_ids(ids)
        check_unique(keys)
        matrix = as_matrix(vectors, info.dim, info.distance)
        if info.distance == "cosine":
            # Stored at unit length everywhere (Qdrant always does), so get() agrees.
            matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        if matrix.shape[0] != len(keys):
            raise ValueError(f"Got {len(keys)} ids but {matrix.shape[0]} vectors; pass one each.")
        items = self._check_payloads(payloads, len(keys))
        size = self._batch_size(batch_size)
        total = len(keys)
        done = 0
        for start in range(0, total, size):
            stop = min(total, start + size)
            batch = (keys[start:stop], matrix[start:stop], items[start:stop])
            await self._call(
                lambda b=batch: self._v_upsert(collection, *b),  # type: ignore[misc]
                what="upsert",
                idempotent=True,
            )
            done = stop
            if progress is not None:
                progress(done, total)
        return done

    async def search(
        self,
        collection: str,
        vector: Any,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
    ) -> list[SearchHit]:
        """The ``top_k`` nearest points, best first."""
        # A known collection needs no lookup (nor a coroutine for one): the per-search path.
        info = self._collections.get(collection) if collection.__class__ is str else None
        if info is None:
            info = await self._info(collection)
            assert info is not None
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}.")
        query = as_vector(vector, info.dim, info.distance)
        conditions = parse_filter(filter)
        return await self._call(
            lambda: self._v_search(info, query, top_k, conditions), what="search", idempotent=True
        )

    async def get(
        self, collection: str, ids: Ids, *, with_vectors: bool = False
    ) -> list[VectorRecord]:
        """The stored points for ``ids`` in that order; unknown ids are left out."""
        await self._info(collection)
        keys = normalise_ids(ids)
        if not keys:
            return []
        found = await self._call(
            lambda: self._v_get(collection, keys, with_vectors), what="get", idempotent=True
        )
        by_id = {record.id: record for record in found}
        return [by_id[k] for k in keys if k in by_id]

    async def delete(
        self,
        collection: str,
        ids: Ids | None = None,
        *,
        filter: Mapping[str, Any] | None = None,
    ) -> None:
        """Delete points by ids, by filter, or both (ANDed). Use ``drop_collection`` for all."""
        await self._info(collection)
        keys = normalise_ids(ids) if ids is not None else None
        conditions = parse_filter(filter)
        if keys is None and not conditions:
            raise ValueError(
                "delete() needs ids or a filter; to remove everything use drop_collection()."
            )
        if keys is not None and not keys:
            return
        await self._call(
            lambda: self._v_delete(collection, keys, conditions), what="delete", idempotent=True
        )

    async def count(self, collection: str, filter: Mapping[str, Any] | None = None) -> int:
        """How many points (matching ``filter``) the collection holds."""
        await self._info(collection)
        conditions = parse_filter(filter)
        return await self._call(
            lambda: self._v_count(collection, conditions), what="count", idempotent=True
        )

    # -- helpers ------------------------------------------------------------------
    async def _info(
        self, name: str, *, required: bool = True, fresh: bool = False
    ) -> CollectionInfo | None:
        self._check_name(name)
        info = None if fresh else self._collections.get(name)
        if info is None:
            info = await self._call(
                lambda: self._v_describe(name), what="describe collection", idempotent=True
            )
            if info is not None:
                self._collections[name] = info
            else:
                self._collections.pop(name, None)
        if info is None and required:
            raise QueryError(self._missing(name))
        return info

    def _missing(self, name: str) -> str:
        return (
            f"Collection '{name}' does not exist in {self.kind} '{self.name}'; create it with "
            "create_collection(name, dim)."
        )

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"A collection name must be a non-empty string, got {name!r}.")

    def _batch_size(self, batch_size: int | None) -> int:
        size = batch_size if batch_size is not None else self.settings.batch_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {size!r}.")
        return min(size, self.max_batch_size) if self.max_batch_size else size

    def _check_payloads(
        self, payloads: Sequence[Mapping[str, Any] | None] | None, n: int
    ) -> list[dict[str, Any] | None]:
        if payloads is None:
            return [None] * n
        if isinstance(payloads, Mapping):
            raise TypeError("payloads is a list with one mapping (or None) per id.")
        items = list(payloads)
        if len(items) != n:
            raise ValueError(f"Got {n} ids but {len(items)} payloads; pass one each (or None).")
        out: list[dict[str, Any] | None] = []
        for i, payload in enumerate(items):
            if payload is None:
                out.append(None)
                continue
            if not isinstance(payload, Mapping):
                raise TypeError(f"payload {i} must be a mapping or None, not {type(payload)}.")
            problem = self._payload_problem(payload)
            if problem:
                raise ValueError(f"payload {i}: {problem}")
            # A None value means "no such key" on every store (Chroma cannot store it).
            out.append({k: v for k, v in payload.items() if v is not None} or None)
        return out

    def _payload_problem(self, payload: Mapping[str, Any]) -> str | None:
        """Why ``payload`` cannot be stored here (``None`` when it can)."""
        for key, value in payload.items():
            # Exact scalar types first: the usual payload is flat, checked in one pass.
            if key.__class__ is str:
                cls = value.__class__
                if cls is str or cls is int or cls is bool or value is None:
                    continue
                if cls is float and math.isfinite(value):
                    continue
            if not (isinstance(key, str) and is_json(value)):
                return "keys must be strings and values JSON (str, number, bool, None, list, dict)."
        return None

    # -- backend hooks --------------------------------------------------------------
    @abc.abstractmethod
    async def _v_create(self, name: str, dim: int, distance: str) -> None: ...

    @abc.abstractmethod
    async def _v_drop(self, name: str) -> bool: ...

    @abc.abstractmethod
    async def _v_list(self) -> list[str]: ...

    @abc.abstractmethod
    async def _v_describe(self, name: str) -> CollectionInfo | None: ...

    @abc.abstractmethod
    async def _v_upsert(
        self,
        name: str,
        ids: list[str],
        vectors: np.ndarray[Any, Any],
        payloads: list[dict[str, Any] | None],
    ) -> None: ...

    @abc.abstractmethod
    async def _v_search(
        self,
        info: CollectionInfo,
        vector: np.ndarray[Any, Any],
        top_k: int,
        conditions: list[Condition],
    ) -> list[SearchHit]: ...

    @abc.abstractmethod
    async def _v_get(self, name: str, ids: list[str], with_vectors: bool) -> list[VectorRecord]: ...

    @abc.abstractmethod
    async def _v_delete(
        self, name: str, ids: list[str] | None, conditions: list[Condition]
    ) -> None: ...

    @abc.abstractmethod
    async def _v_count(self, name: str, conditions: list[Condition]) -> int: ...
