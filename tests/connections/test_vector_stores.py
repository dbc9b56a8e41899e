"""The vector-store contract (``nbinfra.testing.vector_contract``) on the real engines:
Qdrant local, Chroma persistent, PostgreSQL + pgvector (embedded server); and the same 20
documents giving the same top-5 on all three."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from nbinfra.connections.chromadb import ChromaConnectionManager
from nbinfra.connections.pgvector import PgVectorConnectionManager
from nbinfra.connections.qdrant import QdrantConnectionManager
from nbinfra.connections.vector import SearchHit, VectorStore
from nbinfra.testing import PostgresServer
from nbinfra.testing.vector_contract import VectorStoreContract, unit


def make_qdrant(tmp_path: Path, pg: PostgresServer | None) -> VectorStore:
    return QdrantConnectionManager(name="qdrant-test")


def make_chroma(tmp_path: Path, pg: PostgresServer | None) -> VectorStore:
    return ChromaConnectionManager(name="chroma-test", path=str(tmp_path / "chroma"))


def make_pgvector(tmp_path: Path, pg: PostgresServer | None) -> VectorStore:
    assert pg is not None
    return PgVectorConnectionManager(name="pgvector-test", url=pg.url, max_size=2)


BACKENDS = {"qdrant": make_qdrant, "chromadb": make_chroma, "pgvector": make_pgvector}


class TestQdrantStore(VectorStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[VectorStore]:
        async with make_qdrant(tmp_path, None) as manager:
            yield manager


class TestChromaStore(VectorStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[VectorStore]:
        async with make_chroma(tmp_path, None) as manager:
            yield manager


class TestPgVectorStore(VectorStoreContract):
    @pytest.fixture
    async def store(
        self, tmp_path: Path, postgres_server: PostgresServer
    ) -> AsyncIterator[VectorStore]:
        async with make_pgvector(tmp_path, postgres_server) as manager:
            yield manager


@pytest.fixture
def name() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


# -- the same answers everywhere ------------------------------------------------------------
async def test_same_top5_on_all_three(
    tmp_path: Path, postgres_server: PostgresServer, name: str
) -> None:
    rng = np.random.default_rng(2024)
    vectors = rng.normal(size=(20, 32))
    ids = [f"d{i:02d}" for i in range(20)]
    payloads = [{"n": i, "half": "low" if i < 10 else "high"} for i in range(20)]
    queries = rng.normal(size=(5, 32))
    answers: dict[str, list[list[SearchHit]]] = {}
    for kind, make in BACKENDS.items():
        store = make(tmp_path, postgres_server)
        async with store:
            await store.create_collection(name, 32)
            await store.upsert(name, ids, vectors, payloads, batch_size=7)
            answers[kind] = [await store.search(name, q, top_k=5) for q in queries]
            answers[kind].append(await store.search(name, queries[0], 5, {"half": "high"}))
            await store.drop_collection(name)
    reference = answers.pop("qdrant")
    exact = unit(vectors) @ unit(queries).T
    for qi, hits in enumerate(reference[:5]):
        assert [h.id for h in hits] == [ids[i] for i in np.argsort(-exact[:, qi])[:5]]
    for kind, result in answers.items():
        for mine, theirs in zip(result, reference, strict=True):
            assert [h.id for h in mine] == [h.id for h in theirs], kind
            for a, b in zip(mine, theirs, strict=True):
                assert abs(a.score - b.score) <= 1e-5, (kind, a, b)
                assert a.payload == b.payload
