"""What pgvector adds on top of the vector contract: SQL beside it, bound values only,
transactions shared with the postgres manager, exact scans without an index."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest

from nbinfra.connections.pgvector import PgVectorConnectionManager
from nbinfra.testing import PostgresServer

HOSTILE = "'; DROP TABLE users; --"


@pytest.fixture
async def store(postgres_server: PostgresServer) -> AsyncIterator[PgVectorConnectionManager]:
    manager = PgVectorConnectionManager(url=postgres_server.url, max_size=2)
    async with manager:
        yield manager


@pytest.fixture
def name() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


async def test_sql_runs_beside_the_vector_api(store: PgVectorConnectionManager, name: str) -> None:
    await store.create_collection(name, 3)
    await store.upsert(name, ["a", "b"], [[1, 0, 0], [0, 1, 0]], [{"k": 1}, {"k": 2}])
    result = await store.sql(
        f"SELECT id, payload->>'k' AS k FROM {name} WHERE id = %(id)s", {"id": "b"}
    )
    assert result.columns == ["id", "k"] and result.rows == [("b", "2")]
    info = await store.sql(f"SELECT obj_description('{name}'::regclass)")
    assert "nbinfra vector collection" in info.scalar()


async def test_hostile_strings_are_stored_and_matched_literally(
    store: PgVectorConnectionManager, name: str
) -> None:
    await store.sql("CREATE TABLE IF NOT EXISTS users (id int)")
    await store.create_collection(name, 3)
    await store.upsert(name, [HOSTILE], [[1, 2, 3]], [{"note": HOSTILE}])
    hits = await store.search(name, [1, 2, 3], filter={"note": HOSTILE})
    assert [(h.id, h.payload["note"]) for h in hits] == [(HOSTILE, HOSTILE)]
    assert await store.count(name, {"note": {"$in": [HOSTILE, "x"]}}) == 1
    await store.delete(name, [HOSTILE])
    assert await store.count(name) == 0
    assert (await store.sql("SELECT to_regclass('users') IS NOT NULL")).scalar() is True


async def test_failed_transaction_leaves_no_points(
    store: PgVectorConnectionManager, name: str
) -> None:
    await store.create_collection(name, 3)
    with pytest.raises(RuntimeError, match="stop"):
        async with store.transaction():
            await store.upsert(name, ["a", "b", "c"], np.eye(3), batch_size=1)
            assert await store.count(name) == 3  # visible inside the transaction
            raise RuntimeError("stop")
    assert await store.count(name) == 0
    async with store.transaction():
        await store.upsert(name, ["a"], [[1, 0, 0]])
    assert await store.count(name) == 1


async def test_exact_scan_without_index(postgres_server: PostgresServer, name: str) -> None:
    manager = PgVectorConnectionManager(url=postgres_server.url, index="none")
    async with manager:
        await manager.create_collection(name, 4)
        indexes = await manager.sql(
            "SELECT count(*) FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%hnsw%%'",
            [name],
        )
        assert indexes.scalar() == 0
        vectors = np.random.default_rng(0).normal(size=(50, 4))
        await manager.upsert(name, range(50), vectors)
        hits = await manager.search(name, vectors[7], top_k=60)
        assert len(hits) == 50 and hits[0].id == "7"
        await manager.drop_collection(name)


async def test_large_top_k_with_hnsw_returns_everything(
    store: PgVectorConnectionManager, name: str
) -> None:
    await store.create_collection(name, 4)
    vectors = np.random.default_rng(1).normal(size=(120, 4))
    await store.upsert(name, range(120), vectors)
    hits = await store.search(name, vectors[0], top_k=100, filter={})
    assert len(hits) == 100  # past hnsw.ef_search's default of 40
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


async def test_filtered_hnsw_search_still_returns_top_k(
    store: PgVectorConnectionManager, name: str
) -> None:
    """A filter that 1 point in 10 passes, through the HNSW index: without pgvector's
    iterative scan the index yields its ef_search (40) nearest and the filter leaves
    about four of them."""
    await store.create_collection(name, 8)
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(2000, 8))
    payloads = [{"group": "rare" if i % 10 == 0 else "common"} for i in range(2000)]
    await store.upsert(name, range(2000), vectors, payloads)
    query = rng.normal(size=8)
    async with store.transaction():
        # A table this small would be scanned, not searched through the index.
        await store.sql("SET LOCAL enable_seqscan = off")
        plan = await store.sql(
            f"EXPLAIN SELECT id FROM {name} WHERE payload->'group' = '\"rare\"' "
            "ORDER BY embedding <=> '[1,0,0,0,0,0,0,0]' LIMIT 10"
        )
        assert "Index Scan" in "\n".join(row[0] for row in plan.rows)
        hits = await store.search(name, query, top_k=10, filter={"group": "rare"})
    assert len(hits) == 10 and {h.payload["group"] for h in hits} == {"rare"}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # the setting lasted for that search only: the pooled connections are unchanged
    setting = await store.sql("SELECT current_setting('hnsw.iterative_scan', true)")
    assert setting.scalar() in (None, "off")
    assert len(await store.search(name, query, top_k=10)) == 10
