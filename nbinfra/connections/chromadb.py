"""ChromaDB: a persistent client under ``.nbinfra/chroma`` by default, or a server.

Embeddings are always passed explicitly and collections are opened with
``embedding_function=None``: Chroma's default embedding function downloads a model.
Chroma reports distances; scores are turned back into similarities (``1 - d`` for cosine
and dot, ``-sqrt(d)`` for ``l2``, which Chroma squares). Metadata is flat in Chroma:
payload values must be strings, numbers, booleans or lists of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from nbinfra._secrets import Secret
from nbinfra.connections.factory import ConnectionRegistry, ConnectionType
from nbinfra.connections.settings import describe_target
from nbinfra.connections.vector import (
    CollectionInfo,
    Condition,
    SearchHit,
    VectorRecord,
)
from nbinfra.connections.vector_local import LocalEngineSettings, LocalEngineVectorStore
from nbinfra.connections.vector_types import make_hit

__all__ = ["ChromaConnectionManager", "ChromaSettings"]

T = TypeVar("T")

DEFAULT_PATH = ".nbinfra/chroma"
_SPACES = {"cosine": "cosine", "dot": "ip", "euclid": "l2"}
_DIM_KEY = "nbinfra_dim"
_DISTANCE_KEY = "nbinfra_distance"
_SCALARS = (str, int, float, bool)


@dataclass
class ChromaSettings(LocalEngineSettings):
    """``url`` for a Chroma server; else ``path`` (``:memory:`` for an ephemeral client)."""

    path: str = DEFAULT_PATH
    token: Secret = field(default_factory=lambda: Secret(""))  # sent as a Bearer token
    tenant: str = "default_tenant"
    database: str = "default_database"

    def target(self) -> str:
        url = self.url
        return describe_target({"url": url}) if url else self.path


@ConnectionRegistry.register(ConnectionType.CHROMADB)
class ChromaConnectionManager(LocalEngineVectorStore):
    """Chroma collections behind the common vector-store contract."""

    kind = "chromadb"
    settings_class = ChromaSettings
    settings: ChromaSettings
    max_workers: ClassVar[int] = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client: Any = None
        self._handles: dict[str, Any] = {}

    # -- connection -------------------------------------------------------------------
    def _open_sync(self) -> None:
        import chromadb
        from chromadb.config import Settings

        s = self.settings
        options = Settings(anonymized_telemetry=False)  # no phoning home from a notebook
        url = s.url
        if url:
            parts = urlsplit(url)
            self.client = chromadb.HttpClient(
                host=parts.hostname or "localhost",
                port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https",
                headers={"Authorization": f"Bearer {s.token.reveal()}"} if s.token else None,
                settings=options,
                tenant=s.tenant,
                database=s.database,
            )
        elif s.path in ("", ":memory:"):
            self.client = chromadb.EphemeralClient(
                settings=options, tenant=s.tenant, database=s.database
            )
        else:
            Path(s.path).expanduser().mkdir(parents=True, exist_ok=True)
            self.client = chromadb.PersistentClient(
                path=str(Path(s.path).expanduser()),
                settings=options,
                tenant=s.tenant,
                database=s.database,
            )
        self.client.heartbeat()
        self.max_batch_size = int(self.client.get_max_batch_size())

    def _close_sync(self) -> None:
        client, self.client = self.client, None
        self._handles.clear()
        close = getattr(client, "close", None)
        if callable(close):
            close()

    def _ping_sync(self) -> str | None:
        client = self._require()
        client.heartbeat()
        return f"chroma {client.get_version()}"

    def _collection(self, name: str) -> Any:
        handle = self._handles.get(name)
        if handle is None:
            handle = self._require().get_collection(name, embedding_function=None)
            self._handles[name] = handle
        return handle

    def _is_disconnect(self, exc: BaseException) -> bool:
        import httpx  # chromadb's HTTP client

        # Chroma wraps transport errors in a ValueError ("Could not connect ...").
        seen: BaseException | None = exc
        for _ in range(5):
            if seen is None:
                break
            if isinstance(seen, (httpx.TransportError, ConnectionError)):
                return True
            seen = seen.__cause__ or seen.__context__
        return super()._is_disconnect(exc)

    def _payload_problem(self, payload: Mapping[str, Any]) -> str | None:
        for key, value in payload.items():
            if not isinstance(key, str):
                return "keys must be strings."
            if value is None or isinstance(value, _SCALARS):
                continue
            if isinstance(value, list) and value and all(isinstance(v, _SCALARS) for v in value):
                continue
            return (
                f"'{key}' is a {type(value).__name__}; Chroma metadata is flat: values must be "
                "strings, numbers, booleans or non-empty lists of them."
            )
        return super()._payload_problem(payload)

    # -- hooks ----------------------------------------------------------------------------
    async def _v_create(self, name: str, dim: int, distance: str) -> None:
        def create() -> None:
            self._handles[name] = self._require().create_collection(
                name,
                embedding_function=None,
                configuration={"hnsw": {"space": _SPACES[distance]}},
                metadata={_DIM_KEY: dim, _DISTANCE_KEY: distance},
            )

        await self.to_thread(create)

    async def _v_drop(self, name: str) -> bool:
        from chromadb.errors import NotFoundError

        def drop() -> bool:
            self._handles.pop(name, None)
            try:
                self._require().delete_collection(name)
            except NotFoundError:
                return False
            return True

        return await self.to_thread(drop)

    async def _v_list(self) -> list[str]:
        def names() -> list[str]:
            return [getattr(c, "name", c) for c in self._require().list_collections()]

        return await self.to_thread(names)

    async def _v_describe(self, name: str) -> CollectionInfo | None:
        from chromadb.errors import NotFoundError

        def describe() -> CollectionInfo | None:
            self._handles.pop(name, None)
            try:
                handle = self._collection(name)
            except NotFoundError:
                return None
            meta = handle.metadata or {}
            if _DIM_KEY in meta and _DISTANCE_KEY in meta:
                return CollectionInfo(name, int(meta[_DIM_KEY]), str(meta[_DISTANCE_KEY]))
            return _describe_foreign(handle)

        return await self.to_thread(describe)

    async def _v_upsert(
        self, name: str, ids: list[str], vectors: Any, payloads: list[dict[str, Any] | None]
    ) -> None:
        def upsert() -> None:
            handle = self._collection(name)
            # Chroma merges metadata on upsert; the contract replaces it, so keys the new
            # payload lacks are set to None, which Chroma removes.
            new = dict(zip(ids, payloads, strict=True))
            old = handle.get(ids=ids, include=["metadatas"])
            for key, meta in zip(old["ids"], old["metadatas"] or [], strict=False):
                stale = [k for k in (meta or {}) if k not in (new[key] or {})]
                if stale:
                    new[key] = {**(new[key] or {}), **dict.fromkeys(stale, None)}
            metadatas = [new[key] or None for key in ids]
            handle.upsert(
                ids=ids, embeddings=vectors, metadatas=metadatas if any(metadatas) else None
            )

        await self.to_thread(upsert)

    async def _v_search(
        self, info: CollectionInfo, vector: Any, top_k: int, conditions: list[Condition]
    ) -> list[SearchHit]:
        where = build_where(conditions)
        result = await self.to_thread(
            lambda: self._collection(info.name).query(
                query_embeddings=[vector],
                n_results=top_k,
                where=where,
                include=["metadatas", "distances"],
            )
        )
        ids = result["ids"][0]
        distances = result["distances"][0]
        metadatas = (result.get("metadatas") or [[None] * len(ids)])[0]
        return [
            make_hit(str(i), _score(info.distance, float(d)), dict(m or {}))
            for i, d, m in zip(ids, distances, metadatas, strict=True)
        ]

    async def _v_get(self, name: str, ids: list[str], with_vectors: bool) -> list[VectorRecord]:
        include = ["metadatas", "embeddings"] if with_vectors else ["metadatas"]
        result = await self.to_thread(lambda: self._collection(name).get(ids=ids, include=include))
        metadatas = result.get("metadatas") or [None] * len(result["ids"])
        embeddings = result.get("embeddings") if with_vectors else None
        records = []
        for index, key in enumerate(result["ids"]):
            vector = None
            if embeddings is not None:
                vector = [float(x) for x in embeddings[index]]
            records.append(VectorRecord(str(key), dict(metadatas[index] or {}), vector))
        return records

    async def _v_delete(
        self, name: str, ids: list[str] | None, conditions: list[Condition]
    ) -> None:
        where = build_where(conditions)
        await self.to_thread(lambda: self._collection(name).delete(ids=ids, where=where))

    async def _v_count(self, name: str, conditions: list[Condition]) -> int:
        where = build_where(conditions)

        def count() -> int:
            handle = self._collection(name)
            if where is None:
                return int(handle.count())
            return len(handle.get(where=where, include=[])["ids"])

        return await self.to_thread(count)


def _score(distance: str, d: float) -> float:
    if distance == "euclid":
        return -math.sqrt(max(d, 0.0))
    return 1.0 - d


def _describe_foreign(handle: Any) -> CollectionInfo | None:
    """Dimension and metric of a collection nbinfra did not create."""
    config = getattr(getattr(handle, "_model", None), "configuration_json", None) or {}
    space = str((config.get("hnsw") or {}).get("space") or "l2")
    distance = {v: k for k, v in _SPACES.items()}.get(space, space)
    dim = getattr(getattr(handle, "_model", None), "dimension", None)
    if not dim:
        sample = handle.get(limit=1, include=["embeddings"])
        embeddings = sample.get("embeddings")
        if embeddings is None or len(embeddings) == 0:
            return None
        dim = len(embeddings[0])
    return CollectionInfo(handle.name, int(dim), distance)


def build_where(conditions: list[Condition]) -> dict[str, Any] | None:
    """Chroma's ``where`` for portable filter terms (``None`` if none)."""
    terms = [{c.key: {f"${c.op}": c.value}} for c in conditions]
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else {"$and": terms}
