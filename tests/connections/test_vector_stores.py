"""One vector-store contract, run on the real engines: Qdrant local, Chroma persistent,
PostgreSQL + pgvector (embedded server); and the same 20 documents giving the same top-5 on
all three."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nbinfra.connections import ConnectionRegistry, QueryResult
from nbinfra.connections.chromadb import ChromaConnectionManager
from nbinfra.connections.pgvector import PgVectorConnectionManager
from nbinfra.connections.qdrant import QdrantConnectionManager
from nbinfra.connections.vector import SearchHit, VectorStore
from nbinfra.errors import QueryError
from nbinfra.testing import PostgresServer

DIM = 8


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def make_qdrant(tmp_path: Path, pg: PostgresServer | None) -> VectorStore:
    return QdrantConnectionManager(name="qdrant-test")


def make_chroma(tmp_path: Path, pg: PostgresServer | None) -> VectorStore:
    return ChromaConnectionManager(name="chroma-test", path=str(tmp_path / "chroma"))


def make_pgvector(tmp_path: Path, pg: PostgresServer | None) -> VectorStore:
    assert pg is not None
    return PgVectorConnectionManager(name="pgvector-test", url=pg.url, max_size=2)


BACKENDS = {"qdrant": make_qdrant, "chromadb": make_chroma, "pgvector": make_pgvector}


@pytest.fixture(params=sorted(BACKENDS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    pg = request.getfixturevalue("postgres_server") if request.param == "pgvector" else None
    manager = BACKENDS[request.param](tmp_path, pg)
    await manager.connect()
    try:
        yield manager
    finally:
        for name in await manager.list_collections():
            if name.startswith("t_"):
                await manager.drop_collection(name)
        await manager.disconnect()


@pytest.fixture
def name() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


def docs(n: int = 20, dim: int = DIM, seed: int = 7) -> tuple[list[str], np.ndarray, list[dict]]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim))
    ids = [f"doc-{i}" for i in range(n)]
    colours = ["red", "green", "blue"]
    payloads: list[dict[str, Any]] = [
        {"i": i, "colour": colours[i % 3], "even": i % 2 == 0, "weight": i / 4} for i in range(n)
    ]
    payloads[5].pop("colour")  # one record without the key, for $ne / $nin
    return ids, vectors, payloads


async def filled(store: VectorStore, name: str) -> tuple[list[str], np.ndarray, list[dict]]:
    ids, vectors, payloads = docs()
    await store.create_collection(name, DIM)
    await store.upsert(name, ids, vectors, payloads)
    return ids, vectors, payloads


# -- collections ------------------------------------------------------------------------
async def test_registered(store: VectorStore) -> None:
    assert ConnectionRegistry.get(store.kind) is type(store)


async def test_collection_lifecycle(store: VectorStore, name: str) -> None:
    assert not await store.collection_exists(name)
    await store.create_collection(name, DIM)
    assert await store.collection_exists(name)
    assert name in await store.list_collections()
    info = await store.collection_info(name)
    assert (info.dim, info.distance) == (DIM, "cosine")
    await store.create_collection(name, DIM, exist_ok=True)
    with pytest.raises(QueryError, match="already exists"):
        await store.create_collection(name, DIM)
    with pytest.raises(QueryError, match="dim=8"):
        await store.create_collection(name, DIM + 1, exist_ok=True)
    assert await store.drop_collection(name) is True
    assert not await store.collection_exists(name)
    assert await store.drop_collection(name) is False
    with pytest.raises(QueryError, match="does not exist"):
        await store.drop_collection(name, missing_ok=False)


@pytest.mark.parametrize("bad", ["ab", "-abc", "abc-", "with space", "x" * 64, "ünï"])
async def test_collection_names_follow_one_portable_rule(store: VectorStore, bad: str) -> None:
    with pytest.raises(ValueError, match="3-63 letters"):
        await store.create_collection(bad, DIM)


async def test_missing_collection_is_one_line_error(store: VectorStore, name: str) -> None:
    with pytest.raises(QueryError) as info:
        await store.search(name, [1.0] * DIM)
    message = str(info.value)
    assert "\n" not in message and "create_collection" in message and name in message


# -- points -----------------------------------------------------------------------------
async def test_upsert_count_get(store: VectorStore, name: str) -> None:
    _, vectors, payloads = await filled(store, name)
    assert await store.count(name) == 20
    records = await store.get(name, ["doc-3", "missing", "doc-0"], with_vectors=True)
    assert [r.id for r in records] == ["doc-3", "doc-0"]
    assert records[0].payload == payloads[3]
    assert records[0].vector is not None
    # cosine collections keep unit-length vectors on every backend
    np.testing.assert_allclose(records[0].vector, unit(vectors[[3]])[0], atol=1e-6)
    plain = await store.get(name, ["doc-1"])
    assert plain[0].vector is None and plain[0].payload["i"] == 1


async def test_upsert_replaces(store: VectorStore, name: str) -> None:
    _, vectors, _ = await filled(store, name)
    await store.upsert(name, ["doc-1"], vectors[[2]], [{"i": 100}])
    assert await store.count(name) == 20
    (record,) = await store.get(name, ["doc-1"])
    assert record.payload == {"i": 100}
    hits = await store.search(name, vectors[2], top_k=2)
    assert {h.id for h in hits} == {"doc-1", "doc-2"}


async def test_ids_of_every_shape_round_trip(store: VectorStore, name: str) -> None:
    await store.create_collection(name, DIM)
    keys: list[str | int] = [7, "42", "0", "007", str(uuid.uuid4()), "a/b c", "DOC-x"]
    vectors = np.random.default_rng(1).normal(size=(len(keys), DIM))
    await store.upsert(name, keys, vectors)
    expected = [str(k) for k in keys]
    found = await store.get(name, expected)
    assert [r.id for r in found] == expected
    assert all(r.payload == {} for r in found)
    hit = (await store.search(name, vectors[5], top_k=1))[0]
    assert hit.id == "a/b c" and hit.payload == {}
    await store.delete(name, ["a/b c", 7])
    assert await store.count(name) == len(keys) - 2


async def test_batches_report_progress(store: VectorStore, name: str) -> None:
    await store.create_collection(name, DIM)
    vectors = np.random.default_rng(2).normal(size=(25, DIM))
    seen: list[tuple[int, int]] = []
    written = await store.upsert(
        name, range(25), vectors, batch_size=10, progress=lambda d, t: seen.append((d, t))
    )
    assert written == 25
    assert seen == [(10, 25), (20, 25), (25, 25)]
    assert await store.count(name) == 25


@pytest.mark.parametrize(
    ("ids", "vectors", "payloads", "match"),
    [
        (["a", "b"], [[1.0] * DIM], None, "32 ids but 31 vectors"),
        (["a"], [[1.0] * (DIM - 1)], None, "equal-length"),
        (["a"], [[float("nan")] * DIM], None, "NaN"),
        (["a"], [[0.0] * DIM], None, "all zeros"),
        (["a", "a"], [[1.0] * DIM] * 2, None, "unique"),
        (["a"], [[1.0] * DIM], [{"x": object()}], "payload 30"),
        (["a"], [[1.0] * DIM], [], "31 ids but 30 payloads"),
    ],
    ids=["lengths", "dim", "nan", "zero", "duplicate", "payload", "payload-count"],
)
async def test_bad_input_writes_nothing(
    store: VectorStore, name: str, ids: Any, vectors: Any, payloads: Any, match: str
) -> None:
    await store.create_collection(name, DIM)
    # Good rows come first: a half-validated upsert would already have written them.
    with pytest.raises(ValueError, match=match) as info:
        await store.upsert(
            name,
            [f"g{i}" for i in range(30)] + ids,
            [[1.0] * DIM] * 30 + vectors,
            None if payloads is None else [None] * 30 + payloads,
            batch_size=10,
        )
    assert "\n" not in str(info.value)
    assert await store.count(name) == 0


async def test_wrong_dimension_names_both_sizes(store: VectorStore, name: str) -> None:
    await store.create_collection(name, DIM)
    with pytest.raises(ValueError, match="7 dimensions; the collection has 8"):
        await store.upsert(name, ["a"], [[1.0] * (DIM - 1)])
    with pytest.raises(ValueError, match="query vector"):
        await store.search(name, [1.0] * (DIM + 1))


# -- search -----------------------------------------------------------------------------
async def test_search_scores_are_cosine_similarity(store: VectorStore, name: str) -> None:
    ids, vectors, payloads = await filled(store, name)
    query = np.random.default_rng(3).normal(size=DIM)
    hits = await store.search(name, query, top_k=5)
    assert len(hits) == 5 and all(isinstance(h, SearchHit) for h in hits)
    expected = unit(vectors) @ (query / np.linalg.norm(query))
    order = np.argsort(-expected)[:5]
    assert [h.id for h in hits] == [ids[i] for i in order]
    for hit, i in zip(hits, order, strict=True):
        assert math.isclose(hit.score, float(expected[i]), abs_tol=1e-5)
        assert hit.payload == payloads[i]
    self_hit = (await store.search(name, vectors[4] * 3.0, top_k=1))[0]
    assert self_hit.id == "doc-4" and math.isclose(self_hit.score, 1.0, abs_tol=1e-5)


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"colour": "red"}, [i for i in range(20) if i % 3 == 0 and i != 5]),
        ({"colour": {"$eq": "blue"}}, [i for i in range(20) if i % 3 == 2 and i != 5]),
        ({"colour": {"$ne": "red"}}, [i for i in range(20) if i % 3 != 0 or i == 5]),
        ({"colour": {"$in": ["green", "blue"]}}, [i for i in range(20) if i % 3 and i != 5]),
        ({"colour": {"$nin": ["green", "blue"]}}, [i for i in range(20) if not i % 3 or i == 5]),
        ({"i": {"$gte": 15}}, list(range(15, 20))),
        ({"i": {"$gt": 3, "$lt": 7}}, [4, 5, 6]),
        ({"weight": {"$lte": 1.0}}, [0, 1, 2, 3, 4]),
        ({"weight": 1.25}, [5]),
        ({"even": True, "i": {"$lt": 6}}, [0, 2, 4]),
        ({"i": {"$in": [1, 2, 19]}}, [1, 2, 19]),
        ({"colour": "purple"}, []),
    ],
    ids=[
        "eq",
        "eq-op",
        "ne",
        "in",
        "nin",
        "gte",
        "range",
        "lte-float",
        "eq-float",
        "and",
        "in-int",
        "none",
    ],
)
async def test_filters(
    store: VectorStore, name: str, filter: dict[str, Any], expected: list[int]
) -> None:
    _, vectors, _ = await filled(store, name)
    hits = await store.search(name, vectors[0], top_k=20, filter=filter)
    assert sorted(int(h.id.split("-")[1]) for h in hits) == expected
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert await store.count(name, filter) == len(expected)


async def test_delete_by_filter_and_ids(store: VectorStore, name: str) -> None:
    await filled(store, name)
    await store.delete(name, filter={"colour": "red"})
    assert await store.count(name) == 20 - 7  # 0, 3, 6, ... 18 are red
    await store.delete(name, ["doc-1", "doc-2"], filter={"colour": "green"})  # only doc-1
    assert await store.count(name) == 20 - 8
    assert [r.id for r in await store.get(name, ["doc-1", "doc-2"])] == ["doc-2"]
    with pytest.raises(ValueError, match="drop_collection"):
        await store.delete(name)


async def test_bad_filter_is_rejected_before_the_backend(store: VectorStore, name: str) -> None:
    await filled(store, name)
    with pytest.raises(ValueError, match=r"\$regex"):
        await store.search(name, [1.0] * DIM, filter={"colour": {"$regex": "r.*"}})
    with pytest.raises(ValueError, match="operators go inside"):
        await store.search(name, [1.0] * DIM, filter={"$or": []})


@pytest.mark.parametrize("distance", ["dot", "euclid"])
async def test_other_distances_score_higher_is_better(
    store: VectorStore, name: str, distance: str
) -> None:
    _, vectors, _ = docs()
    await store.create_collection(name, DIM, distance=distance)
    await store.upsert(name, range(20), vectors)
    query = vectors[0] + 0.1
    hits = await store.search(name, query, top_k=3)
    dot = vectors @ query
    expected = dot if distance == "dot" else -np.linalg.norm(vectors - query, axis=1)
    order = np.argsort(-expected)[:3]
    assert [h.id for h in hits] == [str(i) for i in order]
    for hit, i in zip(hits, order, strict=True):
        assert math.isclose(hit.score, float(expected[i]), rel_tol=1e-4, abs_tol=1e-4)


# -- texts and execute_query ------------------------------------------------------------
async def test_add_texts_and_search_text(store: VectorStore, name: str) -> None:
    texts = [
        "the cat sat on the mat",
        "stock markets fell sharply today",
        "a recipe for lemon cake",
    ]
    keys = await store.add_texts(name, texts, payloads=[{"n": 1}, None, {"n": 3}])
    assert keys == ["0", "1", "2"]
    assert (await store.collection_info(name)).dim == store.embedder.dim
    hits = await store.search_text(name, "lemon cake recipe", top_k=2)
    assert hits[0].id == "2" and hits[0].payload == {"n": 3, "text": texts[2]}
    more = await store.add_texts(name, ["cats on mats"])
    assert more == ["3"]
    await store.delete(name, ["1"])
    fresh = await store.add_texts(name, ["never overwrites"])  # "3" is taken: a UUID
    assert len(fresh[0]) == 32 and await store.count(name) == 4
    assert (await store.get(name, ["3"]))[0].payload["text"] == "cats on mats"


async def test_execute_query_returns_a_table(store: VectorStore, name: str) -> None:
    await store.add_texts(name, ["alpha beta", "gamma delta", "beta gamma"])
    result = await store.execute_query("alpha beta", {"collection": name, "top_k": 2})
    assert isinstance(result, QueryResult)
    assert result.columns == ["id", "score", "text"]
    assert result.rows[0][0] == "0" and result.rows[0][2] == "alpha beta"
    assert len(result) == 2
    vector = await store.embedder.embed_query("gamma delta")
    limited = await store.execute_query(vector, {"collection": name}, limit=1)
    assert [row[0] for row in limited] == ["1"]
    frame = result.df()
    assert list(frame.columns) == ["id", "score", "text"]
    filtered = await store.execute_query(
        "gamma", {"collection": name, "filter": {"text": "beta gamma"}}
    )
    assert [row[0] for row in filtered] == ["2"]
    with pytest.raises(QueryError, match="collection"):
        await store.execute_query("alpha")


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
