"""Milvus as an nbinfra vector store (kind ``milvus``), on ``pymilvus``.

Registered through the ``nbinfra.connections`` entry point; configure it as any vector
store::

    connections:
      docs:
        kind: milvus
        path: .nbinfra/milvus.db        # Milvus Lite in this process (the default)
        # url: http://localhost:19530   # or a Milvus server; token: "user:password"

``pymilvus`` is imported when the manager first connects, never with nbinfra. A collection
is ``id`` (VARCHAR primary key: the nbinfra id), ``vector`` (FLOAT_VECTOR, one FLAT index
with metric COSINE, IP or L2) and ``payload`` (JSON), created with Strong consistency so a
write is visible to the next read. Milvus names are letters, digits and ``_``: a portable
name that is not one is stored as ``_nb`` followed by the name with every other character
written ``_<hex>_`` (``my-docs`` is ``_nbmy_2d_docs``), and listed back as itself.

Filters become Milvus expressions, every value written as a literal here (strings in JSON
string syntax, which Milvus reads with the same escapes). ``in`` takes no JSON path, so
``$in``/``$nin`` are OR chains; ``$ne``/``$nin`` also match records without the key
(``not exists``). Milvus reports COSINE and IP as similarities and L2 as the squared
distance, turned into ``-sqrt(d)`` (higher is better, as on every store).
"""

from __future__ import annotations

import importlib
import json
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from nbinfra._secrets import Secret
from nbinfra.connections.settings import describe_target
from nbinfra.connections.vector import CollectionInfo, Condition, SearchHit, VectorRecord
from nbinfra.connections.vector_local import LocalEngineSettings, LocalEngineVectorStore
from nbinfra.connections.vector_types import make_hit
from nbinfra.errors import QueryError

__all__ = ["MilvusConnectionManager", "MilvusSettings", "build_expr", "milvus_name", "nb_name"]

DEFAULT_PATH = ".nbinfra/milvus.db"
_METRICS = {"cosine": "COSINE", "dot": "IP", "euclid": "L2"}
_RANGE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_MAX_ID = 65_535  # the longest VARCHAR Milvus allows
_MAX_PAYLOAD = 65_536  # bytes in one JSON value (Milvus's default limit)
_NOT_LOADED = 101  # Milvus's error code for a released collection
_PREFIX = "_nb"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_ESCAPE = re.compile(r"_([0-9a-f]+)_")


def _module(name: str) -> Any:
    """A driver module, imported on first use (none of them ships type information)."""
    return importlib.import_module(name)


def _pymilvus() -> Any:
    return _module("pymilvus")


# -- names ---------------------------------------------------------------------------
def milvus_name(name: str) -> str:
    """The Milvus collection name for an nbinfra one (see the module docstring)."""
    if _IDENTIFIER.match(name) and not name.startswith(_PREFIX):
        return name
    body = "".join(ch if ch.isascii() and ch.isalnum() else f"_{ord(ch):x}_" for ch in name)
    return _PREFIX + body


def nb_name(stored: str) -> str:
    """The nbinfra name for a Milvus collection name (``milvus_name`` reversed)."""
    if not stored.startswith(_PREFIX):
        return stored
    body = stored[len(_PREFIX) :]
    decoded = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), body)
    return decoded if milvus_name(decoded) == stored else stored


# -- filters -----------------------------------------------------------------------
def literal(value: Any) -> str:
    """``value`` as a Milvus expression literal (strings quoted and escaped here)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"no Milvus literal for {type(value).__name__}")


def _term(cond: Condition) -> str:
    path = f"payload[{literal(cond.key)}]"
    if cond.op in _RANGE:
        return f"{path} {_RANGE[cond.op]} {literal(cond.value)}"
    values = cond.value if cond.op in ("in", "nin") else [cond.value]
    either = " or ".join(f"{path} == {literal(v)}" for v in values)
    if cond.op in ("eq", "in"):
        return f"({either})"
    return f"((not exists {path}) or not ({either}))"


def build_expr(conditions: list[Condition], ids: list[str] | None = None) -> str:
    """The Milvus boolean expression for filter terms and ids, ANDed ("" for none)."""
    terms = [_term(c) for c in conditions]
    if ids is not None:
        terms.insert(0, f"id in [{', '.join(literal(k) for k in ids)}]")
    return " and ".join(terms)


def _score(distance: str, d: float) -> float:
    return -math.sqrt(max(d, 0.0)) if distance == "euclid" else d


# -- Milvus Lite servers -------------------------------------------------------------
# Milvus Lite serves each .db folder from one in-process gRPC server that pymilvus starts
# on first use; it is released when the last manager on that folder disconnects.
_LITE_USERS: dict[str, int] = {}
_LITE_LOCK = threading.Lock()


def _hold_lite(uri: str) -> None:
    with _LITE_LOCK:
        _LITE_USERS[uri] = _LITE_USERS.get(uri, 0) + 1


def _release_lite(uri: str) -> None:
    with _LITE_LOCK:
        left = _LITE_USERS.get(uri, 0) - 1
        if left > 0:
            _LITE_USERS[uri] = left
            return
        _LITE_USERS.pop(uri, None)
    _module("milvus_lite.server_manager").server_manager_instance.release_server(uri)


@dataclass
class MilvusSettings(LocalEngineSettings):
    """``url`` for a Milvus server; else ``path``, a Milvus Lite ``.db`` folder."""

    path: str = DEFAULT_PATH
    token: Secret = field(default_factory=lambda: Secret(""))  # "user:password" or API key
    db_name: str = ""

    def target(self) -> str:
        url = self.url
        return describe_target({"url": url}) if url else self.path


class MilvusConnectionManager(LocalEngineVectorStore):
    """Milvus collections behind the common vector-store contract."""

    kind: ClassVar[str] = "milvus"
    settings_class = MilvusSettings
    settings: MilvusSettings
    max_workers: ClassVar[int] = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client: Any = None
        self._lite_uri: str | None = None

    # -- connection -----------------------------------------------------------------
    def _open_sync(self) -> None:
        s = self.settings
        lite = None
        if s.url:
            uri = s.url
        else:
            path = Path(s.path).expanduser().resolve()
            if path.suffix != ".db":
                raise ValueError(f"milvus '{self.name}': path must end in .db, got {s.path!r}.")
            path.parent.mkdir(parents=True, exist_ok=True)
            uri = lite = str(path)
        self.client = _pymilvus().MilvusClient(
            uri=uri,
            token=s.token.reveal(),
            db_name=s.db_name,
            timeout=s.connect_timeout,
            dedicated=True,  # its own channel, closed with the manager
        )
        if lite is not None:
            _hold_lite(lite)
            self._lite_uri = lite

    def _close_sync(self) -> None:
        client, self.client = self.client, None
        lite, self._lite_uri = self._lite_uri, None
        try:
            if client is not None:
                client.close()
        finally:
            if lite is not None:
                _release_lite(lite)

    def _ping_sync(self) -> str | None:
        version = self._require().get_server_version(timeout=self.settings.connect_timeout)
        return f"milvus {version}"

    def _is_disconnect(self, exc: BaseException) -> bool:
        grpc = _module("grpc")
        seen: BaseException | None = exc
        for _ in range(6):
            if seen is None:
                break
            if isinstance(seen, grpc.RpcError) and seen.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.CANCELLED,
            ):
                return True
            text = str(seen)
            if "Fail connecting to server" in text or "should create connection first" in text:
                return True
            seen = seen.__cause__ or seen.__context__
        return super()._is_disconnect(exc)

    def _payload_problem(self, payload: Mapping[str, Any]) -> str | None:
        problem = super()._payload_problem(payload)
        if problem is None and len(json.dumps(payload).encode()) > _MAX_PAYLOAD:
            return f"larger than the {_MAX_PAYLOAD} bytes Milvus stores in one JSON value."
        return problem

    @property
    def _timeout(self) -> float:
        return float(self.settings.timeout)

    def _read(self, name: str, method: str, **kwargs: Any) -> Any:
        """``client.<method>(stored name, **kwargs)``, loading the collection once first
        when Milvus has it released (a restarted Milvus Lite, or another client's release)."""
        client, stored = self._require(), milvus_name(name)
        kwargs.setdefault("timeout", self._timeout)
        try:
            return getattr(client, method)(stored, **kwargs)
        except Exception as exc:
            if getattr(exc, "code", None) != _NOT_LOADED:
                raise
        client.load_collection(stored, timeout=self._timeout)
        return getattr(client, method)(stored, **kwargs)

    # -- hooks ------------------------------------------------------------------------
    async def _v_create(self, name: str, dim: int, distance: str) -> None:
        def create() -> None:
            pymilvus = _pymilvus()
            client = self._require()
            schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            types = pymilvus.DataType
            schema.add_field("id", types.VARCHAR, is_primary=True, max_length=_MAX_ID)
            schema.add_field("vector", types.FLOAT_VECTOR, dim=dim)
            schema.add_field("payload", types.JSON)
            index = client.prepare_index_params()
            index.add_index(field_name="vector", index_type="FLAT", metric_type=_METRICS[distance])
            stored = milvus_name(name)
            client.create_collection(
                stored, schema=schema, consistency_level="Strong", timeout=self._timeout
            )
            # No wait for the index (pymilvus polls every 0.5 s): a FLAT index over an
            # empty collection is ready at once, and loading waits for it anyway.
            client.create_index(stored, index, sync=False, timeout=self._timeout)
            client.load_collection(stored, timeout=self._timeout)

        await self.to_thread(create)

    async def _v_drop(self, name: str) -> bool:
        def drop() -> bool:
            client, stored = self._require(), milvus_name(name)
            if not client.has_collection(stored, timeout=self._timeout):
                return False
            client.drop_collection(stored, timeout=self._timeout)
            return True

        return await self.to_thread(drop)

    async def _v_list(self) -> list[str]:
        names = await self.to_thread(
            lambda: self._require().list_collections(timeout=self._timeout)
        )
        return [nb_name(str(n)) for n in names]

    async def _v_describe(self, name: str) -> CollectionInfo | None:
        def describe() -> CollectionInfo | None:
            client, stored = self._require(), milvus_name(name)
            if not client.has_collection(stored, timeout=self._timeout):
                return None
            fields = client.describe_collection(stored, timeout=self._timeout)["fields"]
            return self._layout(client, name, stored, fields)

        return await self.to_thread(describe)

    def _layout(
        self, client: Any, name: str, stored: str, fields: list[dict[str, Any]]
    ) -> CollectionInfo:
        """Dimension and metric of ``stored``, loaded for search; refuses other layouts."""
        types = _pymilvus().DataType
        by_name = {f["name"]: f for f in fields}
        key, vector, payload = (by_name.get(n) for n in ("id", "vector", "payload"))
        if (
            key is None
            or vector is None
            or payload is None
            or not key.get("is_primary")
            or key["type"] != types.VARCHAR
            or vector["type"] != types.FLOAT_VECTOR
            or payload["type"] != types.JSON
        ):
            raise QueryError(
                f"Milvus collection '{stored}' is not laid out as id (VARCHAR primary key), "
                "vector (FLOAT_VECTOR) and payload (JSON), which the common contract needs; "
                "use .client for it."
            )
        metric = str(client.describe_index(stored, "vector", timeout=self._timeout)["metric_type"])
        reverse = {v: k for k, v in _METRICS.items()}
        state = client.get_load_state(stored, timeout=self._timeout)["state"]
        if getattr(state, "name", str(state)) != "Loaded":
            client.load_collection(stored, timeout=self._timeout)
        dim = int(vector["params"]["dim"])
        return CollectionInfo(name, dim, reverse.get(metric.upper(), metric.lower()))

    async def _v_upsert(
        self, name: str, ids: list[str], vectors: Any, payloads: list[dict[str, Any] | None]
    ) -> None:
        rows = [
            {"id": key, "vector": row, "payload": payload or {}}
            for key, row, payload in zip(ids, vectors.tolist(), payloads, strict=True)
        ]
        await self.to_thread(
            lambda: self._require().upsert(milvus_name(name), rows, timeout=self._timeout)
        )

    async def _v_search(
        self, info: CollectionInfo, vector: Any, top_k: int, conditions: list[Condition]
    ) -> list[SearchHit]:
        expr = build_expr(conditions)
        result = await self.to_thread(
            lambda: self._read(
                info.name,
                "search",
                data=[vector.tolist()],
                limit=top_k,
                filter=expr,
                output_fields=["payload"],
                search_params={"metric_type": _METRICS.get(info.distance, info.distance)},
                consistency_level="Strong",
            )
        )
        return [
            make_hit(
                str(hit["id"]),
                _score(info.distance, float(hit["distance"])),
                dict((hit.get("entity") or {}).get("payload") or {}),
            )
            for hit in result[0]
        ]

    async def _v_get(self, name: str, ids: list[str], with_vectors: bool) -> list[VectorRecord]:
        fields = ["payload", "vector"] if with_vectors else ["payload"]
        rows = await self.to_thread(
            lambda: self._read(
                name,
                "query",
                filter=build_expr([], ids),
                output_fields=fields,
                consistency_level="Strong",
            )
        )
        return [
            VectorRecord(
                str(row["id"]),
                dict(row.get("payload") or {}),
                [float(x) for x in row["vector"]] if with_vectors else None,
            )
            for row in rows
        ]

    async def _v_delete(
        self, name: str, ids: list[str] | None, conditions: list[Condition]
    ) -> None:
        expr = build_expr(conditions, ids)
        await self.to_thread(lambda: self._read(name, "delete", filter=expr))

    async def _v_count(self, name: str, conditions: list[Condition]) -> int:
        expr = build_expr(conditions)
        rows = await self.to_thread(
            lambda: self._read(
                name, "query", filter=expr, output_fields=["count(*)"], consistency_level="Strong"
            )
        )
        return int(rows[0]["count(*)"])
