"""Qdrant through ``qdrant-client``: local mode (``:memory:`` or a folder) or a server.

Local mode is the embedded default: the same client API, no server. Point ids in Qdrant
are unsigned integers or UUIDs; nbinfra ids are strings, so ``"42"`` is stored as 42, a
canonical UUID string as itself, and any other string as a UUID5 of it with the original
kept in the payload under ``_nbinfra_id`` (removed again on the way out).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from nbinfra._secrets import Secret
from nbinfra.connections.factory import ConnectionRegistry, ConnectionType
from nbinfra.connections.settings import describe_target, one_line
from nbinfra.connections.vector import (
    CollectionInfo,
    Condition,
    SearchHit,
    VectorRecord,
)
from nbinfra.connections.vector_local import LocalEngineSettings, LocalEngineVectorStore
from nbinfra.connections.vector_types import make_hit
from nbinfra.errors import ConnectionUnavailableError, ConnError, QueryError

__all__ = ["QdrantConnectionManager", "QdrantSettings"]

T = TypeVar("T")

ID_KEY = "_nbinfra_id"
_NAMESPACE = uuid.UUID("6f1c1a52-7d0e-4c55-9a43-2f7f3f8e2b10")
_MAX_UINT64 = 2**64 - 1
_DISTANCES = {"cosine": "Cosine", "dot": "Dot", "euclid": "Euclid"}


@dataclass
class QdrantSettings(LocalEngineSettings):
    """``url`` for a server; else ``path`` for a local folder; else ``location`` (``:memory:``)."""

    api_key: Secret = field(default_factory=lambda: Secret(""))
    path: str = ""
    location: str = ":memory:"
    prefer_grpc: bool = False

    def target(self) -> str:
        url = self.url
        if url:
            return describe_target({"url": url})
        return self.path or self.location


def point_id(key: str) -> int | str:
    """The Qdrant point id for an nbinfra id (see the module docstring)."""
    if key.isdigit() and (key == "0" or key[0] != "0") and int(key) <= _MAX_UINT64:
        return int(key)
    try:
        if str(uuid.UUID(key)) == key:
            return key
    except ValueError:
        pass
    return str(uuid.uuid5(_NAMESPACE, key))


def _needs_key(key: str, pid: int | str) -> bool:
    return str(pid) != key


@ConnectionRegistry.register(ConnectionType.QDRANT)
class QdrantConnectionManager(LocalEngineVectorStore):
    """Qdrant collections behind the common vector-store contract."""

    kind = "qdrant"
    settings_class = QdrantSettings
    settings: QdrantSettings
    max_workers: ClassVar[int] = 1  # local mode is not thread-safe

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client: Any = None

    # -- connection -------------------------------------------------------------------
    def _open_sync(self) -> None:
        from qdrant_client import QdrantClient

        s = self.settings
        timeout = max(1, int(s.timeout))
        if s.url:
            self.client = QdrantClient(
                url=s.url,
                api_key=s.api_key.reveal() or None,
                prefer_grpc=s.prefer_grpc,
                timeout=timeout,
                # Its background version check warns from a thread; connect checks instead.
                check_compatibility=False,
            )
            self.client.get_collections()  # fail here, not on first use
        elif s.path:
            self.client = QdrantClient(path=s.path, force_disable_check_same_thread=True)
        else:
            self.client = QdrantClient(location=s.location or ":memory:")

    def _close_sync(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close()

    def _ping_sync(self) -> str | None:
        from importlib.metadata import version

        self._require().get_collections()
        if self.settings.url:
            try:
                return f"qdrant {self._require().info().version}"
            except Exception:  # noqa: BLE001 - version is optional
                return "qdrant server"
        return f"qdrant local mode (qdrant-client {version('qdrant-client')})"

    # -- errors -------------------------------------------------------------------------
    def _translate(self, exc: BaseException, what: str) -> ConnError:
        detail = one_line(str(exc)) or type(exc).__name__
        if "already accessed by another instance" in detail:
            return ConnectionUnavailableError(
                f"qdrant '{self.name}': the folder {self.settings.path} is open in another "
                "client (one process at a time in local mode); close it, use another path, or "
                "run a Qdrant server."
            )
        return super()._translate(exc, what)

    def _is_disconnect(self, exc: BaseException) -> bool:
        from qdrant_client.http.exceptions import ResponseHandlingException

        if isinstance(exc, ResponseHandlingException):
            return True
        return super()._is_disconnect(exc)

    def _payload_problem(self, payload: Mapping[str, Any]) -> str | None:
        if ID_KEY in payload:
            return f"the key '{ID_KEY}' is reserved for ids Qdrant cannot store."
        return super()._payload_problem(payload)

    # -- hooks ----------------------------------------------------------------------------
    async def _v_create(self, name: str, dim: int, distance: str) -> None:
        from qdrant_client import models

        params = models.VectorParams(size=dim, distance=models.Distance(_DISTANCES[distance]))
        await self.to_thread(lambda: self._require().create_collection(name, vectors_config=params))

    async def _v_drop(self, name: str) -> bool:
        def drop() -> bool:
            client = self._require()
            if not client.collection_exists(name):
                return False
            client.delete_collection(name)
            return True

        return await self.to_thread(drop)

    async def _v_list(self) -> list[str]:
        response = await self.to_thread(lambda: self._require().get_collections())
        return [c.name for c in response.collections]

    async def _v_describe(self, name: str) -> CollectionInfo | None:
        def describe() -> CollectionInfo | None:
            client = self._require()
            if not client.collection_exists(name):
                return None
            vectors = client.get_collection(name).config.params.vectors
            if isinstance(vectors, Mapping):
                raise QueryError(
                    f"Collection '{name}' has named vectors ({', '.join(vectors)}); the "
                    "common contract covers one unnamed vector per point: use .client for it."
                )
            reverse = {v: k for k, v in _DISTANCES.items()}
            metric = getattr(vectors.distance, "value", str(vectors.distance))
            return CollectionInfo(name, int(vectors.size), reverse.get(metric, metric.lower()))

        return await self.to_thread(describe)

    async def _v_upsert(
        self, name: str, ids: list[str], vectors: Any, payloads: list[dict[str, Any] | None]
    ) -> None:
        from qdrant_client import models

        pids: list[Any] = [point_id(k) for k in ids]
        bodies: list[dict[str, Any]] = []
        for key, pid, payload in zip(ids, pids, payloads, strict=True):
            # The payloads are the store's own copies (VectorStore._check_payloads): no
            # second copy; setting the id key again on a retried batch changes nothing.
            body = payload if payload is not None else {}
            if _needs_key(key, pid):
                body[ID_KEY] = key
            bodies.append(body)
        batch = models.Batch(ids=pids, vectors=vectors.tolist(), payloads=bodies)
        await self.to_thread(lambda: self._require().upsert(name, points=batch, wait=True))

    async def _v_search(
        self, info: CollectionInfo, vector: Any, top_k: int, conditions: list[Condition]
    ) -> list[SearchHit]:
        query_filter = build_filter(conditions)
        response = await self.to_thread(
            lambda: self._require().query_points(
                info.name,
                query=vector,
                limit=top_k,
                query_filter=query_filter,
                with_payload=True,
            )
        )
        negate = info.distance not in ("cosine", "dot")  # Qdrant reports distances there
        hits = []
        for point in response.points:
            payload = dict(point.payload or {})
            key = payload.pop(ID_KEY, None) or str(point.id)
            score = float(point.score)
            hits.append(make_hit(str(key), -score if negate else score, payload))
        return hits

    async def _v_get(self, name: str, ids: list[str], with_vectors: bool) -> list[VectorRecord]:
        pids = [point_id(k) for k in ids]
        points = await self.to_thread(
            lambda: self._require().retrieve(
                name, ids=pids, with_payload=True, with_vectors=with_vectors
            )
        )
        records = []
        for point in points:
            payload = dict(point.payload or {})
            key = payload.pop(ID_KEY, None) or str(point.id)
            vector = [float(x) for x in point.vector] if with_vectors and point.vector else None
            records.append(VectorRecord(str(key), payload, vector))
        return records

    async def _v_delete(
        self, name: str, ids: list[str] | None, conditions: list[Condition]
    ) -> None:
        from qdrant_client import models

        selector: Any
        if ids is not None and not conditions:
            selector = models.PointIdsList(points=[point_id(k) for k in ids])
        else:
            query_filter = build_filter(conditions) or models.Filter()
            if ids is not None:
                has_id = models.HasIdCondition(has_id=[point_id(k) for k in ids])
                query_filter.must = [*(_as_list(query_filter.must)), has_id]
            selector = models.FilterSelector(filter=query_filter)
        await self.to_thread(
            lambda: self._require().delete(name, points_selector=selector, wait=True)
        )

    async def _v_count(self, name: str, conditions: list[Condition]) -> int:
        query_filter = build_filter(conditions)
        result = await self.to_thread(
            lambda: self._require().count(name, count_filter=query_filter, exact=True)
        )
        return int(result.count)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def build_filter(conditions: list[Condition]) -> Any:
    """The ``qdrant_client.models.Filter`` for portable filter terms (``None`` if none)."""
    if not conditions:
        return None
    from qdrant_client import models

    must: list[Any] = []
    must_not: list[Any] = []
    for cond in conditions:
        if cond.op == "eq":
            must.append(_equals(cond.key, cond.value))
        elif cond.op == "ne":
            must_not.append(_equals(cond.key, cond.value))
        elif cond.op == "in":
            must.append(models.Filter(should=[_equals(cond.key, v) for v in cond.value]))
        elif cond.op == "nin":
            must_not.extend(_equals(cond.key, v) for v in cond.value)
        else:
            bound = models.Range(**{cond.op: cond.value})
            must.append(models.FieldCondition(key=cond.key, range=bound))
    return models.Filter(must=must or None, must_not=must_not or None)


def _equals(key: str, value: Any) -> Any:
    from qdrant_client import models

    if isinstance(value, float):
        # MatchValue takes str/int/bool only; a float is matched as a one-point range.
        return models.FieldCondition(key=key, range=models.Range(gte=value, lte=value))
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))
