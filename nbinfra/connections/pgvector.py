"""PgVector: vector collections as PostgreSQL tables, on the PostgreSQL manager.

A collection is a table ``<schema>.<name> (id text primary key, embedding vector(dim),
payload jsonb)`` with an HNSW index for its distance (``index: none`` keeps exact scans).
Everything PostgreSQL-side comes from ``PostgresConnectionManager``: settings (``url`` or
host/port/..., pool sizes), the embedded server when nothing is configured (shared with the
``postgres`` connection), health probes, reconnects and error translation. ``execute_query``
follows the vector contract (a text or vector search); ``sql(query, params)`` runs SQL.
"""

from __future__ import annotations

import contextlib
import json
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from nbinfra.connections.base import is_read_only_sql
from nbinfra.connections.factory import ConnectionRegistry, ConnectionType
from nbinfra.connections.pgpool import Checkout
from nbinfra.connections.postgres import PostgresConnectionManager, PostgresSettings
from nbinfra.connections.types import QueryResult
from nbinfra.connections.vector import (
    CollectionInfo,
    Condition,
    SearchHit,
    VectorRecord,
    VectorStore,
    VectorStoreSettings,
)
from nbinfra.connections.vector_types import make_hit
from nbinfra.logs import get_logger

__all__ = ["PgVectorConnectionManager", "PgVectorSettings"]

log = get_logger(__name__)
T = TypeVar("T")

_MARK = "nbinfra vector collection"
_OPS = {
    "cosine": ("<=>", "vector_cosine_ops"),
    "dot": ("<#>", "vector_ip_ops"),
    "euclid": ("<->", "vector_l2_ops"),
}
_RANGE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass
class PgVectorSettings(VectorStoreSettings, PostgresSettings):
    """PostgreSQL settings (``url``...; none = embedded) plus where collections live."""

    schema: str = "public"
    index: Literal["hnsw", "none"] = "hnsw"  # "none": exact scans


@ConnectionRegistry.register(ConnectionType.PGVECTOR)
class PgVectorConnectionManager(VectorStore, PostgresConnectionManager):
    """PostgreSQL + pgvector tables behind the common vector-store contract."""

    kind = "pgvector"
    speaks_sql = True
    dialect_name = "postgres"
    settings_class = PgVectorSettings
    settings: PgVectorSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.settings.index not in ("hnsw", "none"):
            raise ValueError(
                f"pgvector index must be 'hnsw' or 'none', got {self.settings.index!r}."
            )
        self._vector_info: Any = None
        self._statements: dict[tuple[Any, ...], str] = {}
        self._ready: weakref.WeakSet[Any] = weakref.WeakSet()
        self._iterative = False  # the server's pgvector has hnsw.iterative_scan (>= 0.8)

    # -- connection -------------------------------------------------------------------
    async def _open(self) -> None:
        from psycopg.types import TypeInfo

        await super()._open()
        async with super()._connection() as conn:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            self._vector_info = await TypeInfo.fetch(conn, "vector")
            cur = await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = await cur.fetchone()
        self._iterative = _version(row[0] if row else "") >= (0, 8)
        self._ready = weakref.WeakSet()

    async def _ping(self) -> str | None:
        version = await super()._ping()
        async with self._vconn() as conn:
            cur = await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = await cur.fetchone()
        return f"{version}, pgvector {row[0] if row else '?'}"

    async def _call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        what: str,
        idempotent: bool,
        timeout: float | None = None,
    ) -> T:
        result = await super()._call(fn, what=what, idempotent=idempotent, timeout=timeout)
        if self._tx.get() is None and not self._probed_alive():
            # As the postgres manager does after a query: a server restart closed the
            # monitor connection behind is_healthy(); the call that just worked restores it.
            await self._refresh_monitor()
        return result

    def _vconn(self) -> Checkout:
        """A pooled connection that knows the ``vector`` type (``async with``)."""
        return self._connection(self._register)

    def _register(self, conn: Any) -> None:
        if conn not in self._ready:
            from pgvector.psycopg.vector import register_vector_info

            register_vector_info(conn, self._vector_info)
            self._ready.add(conn)

    async def _fetchone(self, query: Any, params: Any = None) -> Any:
        async with self._vconn() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

    async def _fetchall(self, query: Any, params: Any = None) -> list[Any]:
        async with self._vconn() as conn:
            cur = await conn.execute(query, params)
            return list(await cur.fetchall())

    async def sql(
        self,
        query: str,
        params: Any = None,
        *,
        limit: int | None = None,
        frames: Mapping[str, object] | None = None,
    ) -> QueryResult:
        """Run SQL as the ``postgres`` connection does (bound parameters, scripts, limit)."""
        self.check_frames(frames)
        return await self._call(
            lambda: PostgresConnectionManager._execute(self, query, params, limit),
            what="query",
            idempotent=is_read_only_sql(query),
        )

    def _table(self, name: str) -> Any:
        from psycopg import sql

        if len(name.encode()) > 63 or "\x00" in name:
            raise ValueError(
                f"A pgvector collection name is a table name of <= 63 bytes: {name!r}."
            )
        return sql.Identifier(self.settings.schema, name)

    # -- hooks ----------------------------------------------------------------------------
    async def _v_create(self, name: str, dim: int, distance: str) -> None:
        from psycopg import sql

        table = self._table(name)
        comment = f"{_MARK}: " + json.dumps({"dim": dim, "distance": distance})
        async with self._vconn() as conn, conn.transaction():
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (id text PRIMARY KEY, embedding vector({}) NOT NULL, "
                    "payload jsonb NOT NULL DEFAULT '{{}}'::jsonb)"
                ).format(table, sql.Literal(dim))
            )
            await conn.execute(
                sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(comment))
            )
            if self.settings.index == "hnsw":
                await conn.execute(
                    sql.SQL("CREATE INDEX ON {} USING hnsw (embedding {})").format(
                        table, sql.SQL(_OPS[distance][1])
                    )
                )

    async def _v_drop(self, name: str) -> bool:
        from psycopg import sql

        if await self._v_describe(name) is None:
            return False
        async with self._vconn() as conn:
            await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._table(name)))
        return True

    async def _v_list(self) -> list[str]:
        rows = await self._fetchall(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'embedding' "
            "JOIN pg_type t ON t.oid = a.atttypid AND t.typname = 'vector' "
            "WHERE n.nspname = %s AND c.relkind = 'r'",
            (self.settings.schema,),
        )
        return [r[0] for r in rows]

    async def _v_describe(self, name: str) -> CollectionInfo | None:
        self._table(name)
        row = await self._fetchone(
            "SELECT a.atttypmod, obj_description(c.oid, 'pg_class') FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'embedding' "
            "JOIN pg_type t ON t.oid = a.atttypid AND t.typname = 'vector' "
            "WHERE n.nspname = %s AND c.relname = %s AND c.relkind = 'r'",
            (self.settings.schema, name),
        )
        if row is None:
            return None
        distance = "cosine"
        comment = row[1] or ""
        if comment.startswith(_MARK):
            with contextlib.suppress(ValueError, KeyError, IndexError):
                distance = str(json.loads(comment.split(":", 1)[1])["distance"])
        return CollectionInfo(name, int(row[0]), distance)

    async def _v_upsert(
        self, name: str, ids: list[str], vectors: Any, payloads: list[dict[str, Any] | None]
    ) -> None:
        from psycopg import sql
        from psycopg.types.json import Jsonb

        query = sql.SQL(
            "INSERT INTO {} (id, embedding, payload) VALUES (%s, %s, %s) ON CONFLICT (id) "
            "DO UPDATE SET embedding = EXCLUDED.embedding, payload = EXCLUDED.payload"
        ).format(self._table(name))
        rows = [(key, vectors[i], Jsonb(payloads[i] or {})) for i, key in enumerate(ids)]
        async with (
            self._vconn() as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            await cur.executemany(query, rows)

    async def _v_search(
        self, info: CollectionInfo, vector: Any, top_k: int, conditions: list[Condition]
    ) -> list[SearchHit]:
        if conditions:
            where, params = build_where(conditions)
            args = [vector, *params, vector, top_k]
            ops = tuple(c.op for c in conditions)
        else:  # the usual search: nothing to compose
            where, args, ops = None, [vector, vector, top_k], ()
        # The statement text depends only on table, metric and filter operators: composing
        # and quoting it again on every search costs more than a small HNSW lookup.
        key = (self.settings.schema, info.name, info.distance, ops)
        async with self._vconn() as conn:
            query = self._statements.get(key)
            if query is None:
                query = self._search_statement(conn, info, where)
                if len(self._statements) > 256:
                    self._statements.clear()
                self._statements[key] = query
            if conditions or top_k > 40:
                scoped = self._search_settings(top_k, filtered=bool(conditions))
            else:
                scoped = {}
            if scoped:
                # Settings for this search only (set_config(..., true) lasts until COMMIT),
                # sent with it in one pipeline: one round trip, as for a plain search.
                names = ", ".join("set_config(%s, %s, true)" for _ in scoped)
                values = [item for pair in scoped.items() for item in pair]
                async with conn.pipeline(), conn.transaction():
                    await conn.execute(f"SELECT {names}", values)
                    cur = await conn.execute(query, args)
                rows = await cur.fetchall()
            else:
                rows = await (await conn.execute(query, args)).fetchall()
        # psycopg builds a new dict per payload: the hits can own them.
        if info.distance == "cosine":
            return [make_hit(r[0], 1.0 - r[2], r[1] or {}) for r in rows]
        return [make_hit(r[0], _score(info.distance, float(r[2])), r[1] or {}) for r in rows]

    def _search_statement(self, conn: Any, info: CollectionInfo, where: Any) -> str:
        from psycopg import sql

        if where is None:
            where = sql.SQL("")
        op = sql.SQL(_OPS[info.distance][0])
        return (
            sql.SQL(
                "SELECT id, payload, embedding {op} %s FROM {t}{w} "
                "ORDER BY embedding {op} %s LIMIT %s"
            )
            .format(op=op, t=self._table(info.name), w=where)
            .as_string(conn)
        )

    def _search_settings(self, top_k: int, *, filtered: bool) -> dict[str, str]:
        """HNSW settings one search needs; none for the usual unfiltered top-k <= 40.

        A filtered search keeps scanning until ``top_k`` rows match (pgvector >= 0.8's
        iterative scan; otherwise the index yields ``ef_search`` candidates and the filter
        may leave fewer). Set per search, not per connection: the setting slows an
        unfiltered search by about a tenth.
        """
        if self.settings.index != "hnsw":
            return {}
        scoped: dict[str, str] = {}
        if filtered and self._iterative:
            scoped["hnsw.iterative_scan"] = "strict_order"
        if top_k > 40:  # ef_search bounds how many rows an HNSW scan returns
            scoped["hnsw.ef_search"] = str(top_k)
        return scoped

    async def _v_get(self, name: str, ids: list[str], with_vectors: bool) -> list[VectorRecord]:
        from psycopg import sql

        columns = sql.SQL("id, payload, embedding" if with_vectors else "id, payload")
        rows = await self._fetchall(
            sql.SQL("SELECT {} FROM {} WHERE id = ANY(%s)").format(columns, self._table(name)),
            (ids,),
        )
        return [
            VectorRecord(r[0], dict(r[1] or {}), _floats(r[2]) if with_vectors else None)
            for r in rows
        ]

    async def _v_delete(
        self, name: str, ids: list[str] | None, conditions: list[Condition]
    ) -> None:
        from psycopg import sql

        where, params = build_where(conditions, ids)
        async with self._vconn() as conn:
            await conn.execute(sql.SQL("DELETE FROM {}{}").format(self._table(name), where), params)

    async def _v_count(self, name: str, conditions: list[Condition]) -> int:
        from psycopg import sql

        where, params = build_where(conditions)
        row = await self._fetchone(
            sql.SQL("SELECT count(*) FROM {}{}").format(self._table(name), where), params
        )
        return int(row[0])


def _floats(value: Any) -> list[float]:
    values = value.to_list() if hasattr(value, "to_list") else value
    return [float(x) for x in values]


def _score(distance: str, d: float) -> float:
    if distance == "cosine":
        return 1.0 - d
    return -d  # <#> is the negative inner product; <-> the L2 distance


def build_where(
    conditions: Sequence[Condition], ids: list[str] | None = None
) -> tuple[Any, list[Any]]:
    """`` WHERE ...`` over ``payload`` for portable filter terms, and its parameters."""
    from psycopg import sql
    from psycopg.types.json import Jsonb

    parts: list[Any] = []
    params: list[Any] = []
    if ids is not None:
        parts.append(sql.SQL("id = ANY(%s)"))
        params.append(ids)
    for cond in conditions:
        if cond.op == "eq":
            parts.append(sql.SQL("(payload -> %s) = %s"))
            params += [cond.key, Jsonb(cond.value)]
        elif cond.op == "ne":
            parts.append(sql.SQL("NOT coalesce((payload -> %s) = %s, false)"))
            params += [cond.key, Jsonb(cond.value)]
        elif cond.op in ("in", "nin"):
            test = "(payload -> %s) = ANY(%s::jsonb[])"
            text = test if cond.op == "in" else f"NOT coalesce({test}, false)"
            parts.append(sql.SQL(text))
            params += [cond.key, [Jsonb(v) for v in cond.value]]
        else:
            parts.append(
                sql.SQL(
                    "(jsonb_typeof(payload -> %s) = 'number' AND (payload -> %s) {} %s)"
                ).format(sql.SQL(_RANGE[cond.op]))
            )
            params += [cond.key, cond.key, Jsonb(cond.value)]
    if not parts:
        return sql.SQL(""), params
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts), params


def _version(text: str) -> tuple[int, ...]:
    """``"0.8.1"`` -> ``(0, 8, 1)``; unparsable parts end the tuple."""
    parts: list[int] = []
    for piece in text.split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)
