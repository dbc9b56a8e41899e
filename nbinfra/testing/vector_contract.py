"""``VectorStoreContract``: the vector-store API (see ``nbinfra.connections.vector``), run
against one store.

A vector store (built in or a plugin's) proves itself by subclassing the contract and giving
one fixture, ``store``: a connected ``VectorStore`` on a real engine, disconnected
afterwards. The contract supplies ``collection`` (a fresh collection name, dropped after the
test) and the sample data (``docs``, ``fill``); a subclass may override any of them, and
sets ``texts = False`` when its store cannot embed (skipping the ``add_texts`` and
``execute_query`` tests). Needs pytest, numpy and pytest-asyncio (``asyncio_mode = "auto"``)::

    from nbinfra.testing.vector_contract import VectorStoreContract

    class TestMyStore(VectorStoreContract):
        @pytest.fixture
        async def store(self, tmp_path):
            async with MyStoreManager(path=str(tmp_path / "db")) as manager:
                yield manager
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from nbinfra.connections import ConnectionRegistry, QueryResult
from nbinfra.connections.vector import SearchHit, VectorStore
from nbinfra.errors import QueryError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DIM", "VectorStoreContract", "docs", "fill", "unit"]

DIM = 8  # the sample vectors' size


def unit(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``rows`` scaled to unit length (what cosine collections store)."""
    import numpy as np

    scaled: np.ndarray[Any, Any] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return scaled


def docs(
    n: int = 20, dim: int = DIM, seed: int = 7
) -> tuple[list[str], np.ndarray[Any, Any], list[dict[str, Any]]]:
    """Ids ``doc-0..``, random vectors and payloads ``{i, colour, even, weight}``;
    record 5 has no ``colour`` (for ``$ne``/``$nin`` on a missing key)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim))
    ids = [f"doc-{i}" for i in range(n)]
    colours = ["red", "green", "blue"]
    payloads: list[dict[str, Any]] = [
        {"i": i, "colour": colours[i % 3], "even": i % 2 == 0, "weight": i / 4} for i in range(n)
    ]
    payloads[5].pop("colour")
    return ids, vectors, payloads


async def fill(
    store: VectorStore, collection: str
) -> tuple[list[str], np.ndarray[Any, Any], list[dict[str, Any]]]:
    """Create ``collection`` (cosine, ``DIM``) and write ``docs()`` into it."""
    ids, vectors, payloads = docs()
    await store.create_collection(collection, DIM)
    await store.upsert(collection, ids, vectors, payloads)
    return ids, vectors, payloads


_FILTERS: list[tuple[dict[str, Any], list[int]]] = [
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
]
_FILTER_IDS = [
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
]

_BAD_INPUTS: list[tuple[Any, Any, Any, str]] = [
    (["a", "b"], [[1.0] * DIM], None, "32 ids but 31 vectors"),
    (["a"], [[1.0] * (DIM - 1)], None, "equal-length"),
    (["a"], [[float("nan")] * DIM], None, "NaN"),
    (["a"], [[0.0] * DIM], None, "all zeros"),
    (["a", "a"], [[1.0] * DIM] * 2, None, "unique"),
    (["a"], [[1.0] * DIM], [{"x": object()}], "payload 30"),
    (["a"], [[1.0] * DIM], [], "31 ids but 30 payloads"),
]
_BAD_INPUT_IDS = ["lengths", "dim", "nan", "zero", "duplicate", "payload", "payload-count"]


class VectorStoreContract:
    """The tests; a subclass gives the ``store`` fixture (see the module's docstring)."""

    texts: ClassVar[bool] = True  # False: the store has no embedder; text tests skip

    @pytest.fixture
    async def collection(self, store: VectorStore) -> AsyncIterator[str]:
        """A collection name no other test uses; dropped afterwards if the test made it."""
        name = f"t_{uuid.uuid4().hex[:10]}"
        yield name
        await store.drop_collection(name)

    # -- collections ------------------------------------------------------------------
    async def test_registered(self, store: VectorStore) -> None:
        assert ConnectionRegistry.get(store.kind) is type(store)

    async def test_collection_lifecycle(self, store: VectorStore, collection: str) -> None:
        assert not await store.collection_exists(collection)
        await store.create_collection(collection, DIM)
        assert await store.collection_exists(collection)
        assert collection in await store.list_collections()
        info = await store.collection_info(collection)
        assert (info.dim, info.distance) == (DIM, "cosine")
        await store.create_collection(collection, DIM, exist_ok=True)
        with pytest.raises(QueryError, match="already exists"):
            await store.create_collection(collection, DIM)
        with pytest.raises(QueryError, match="dim=8"):
            await store.create_collection(collection, DIM + 1, exist_ok=True)
        assert await store.drop_collection(collection) is True
        assert not await store.collection_exists(collection)
        assert await store.drop_collection(collection) is False
        with pytest.raises(QueryError, match="does not exist"):
            await store.drop_collection(collection, missing_ok=False)

    @pytest.mark.parametrize("bad", ["ab", "-abc", "abc-", "with space", "x" * 64, "ünï"])
    async def test_collection_names_follow_one_portable_rule(
        self, store: VectorStore, bad: str
    ) -> None:
        with pytest.raises(ValueError, match="3-63 letters"):
            await store.create_collection(bad, DIM)

    async def test_missing_collection_is_one_line_error(
        self, store: VectorStore, collection: str
    ) -> None:
        with pytest.raises(QueryError) as info:
            await store.search(collection, [1.0] * DIM)
        message = str(info.value)
        assert "\n" not in message and "create_collection" in message and collection in message

    # -- points -----------------------------------------------------------------------
    async def test_upsert_count_get(self, store: VectorStore, collection: str) -> None:
        import numpy as np

        _, vectors, payloads = await fill(store, collection)
        assert await store.count(collection) == 20
        records = await store.get(collection, ["doc-3", "missing", "doc-0"], with_vectors=True)
        assert [r.id for r in records] == ["doc-3", "doc-0"]
        assert records[0].payload == payloads[3]
        assert records[0].vector is not None
        # cosine collections keep unit-length vectors on every store
        np.testing.assert_allclose(records[0].vector, unit(vectors[[3]])[0], atol=1e-6)
        plain = await store.get(collection, ["doc-1"])
        assert plain[0].vector is None and plain[0].payload["i"] == 1

    async def test_upsert_replaces(self, store: VectorStore, collection: str) -> None:
        _, vectors, _ = await fill(store, collection)
        await store.upsert(collection, ["doc-1"], vectors[[2]], [{"i": 100}])
        assert await store.count(collection) == 20
        (record,) = await store.get(collection, ["doc-1"])
        assert record.payload == {"i": 100}
        hits = await store.search(collection, vectors[2], top_k=2)
        assert {h.id for h in hits} == {"doc-1", "doc-2"}

    async def test_none_values_mean_absent_keys(self, store: VectorStore, collection: str) -> None:
        import numpy as np

        await store.create_collection(collection, DIM)
        rows = np.eye(DIM)[:2]
        await store.upsert(collection, ["a", "b"], rows, [{"x": 1, "y": None}, {"y": None}])
        records = await store.get(collection, ["a", "b"])
        assert [r.payload for r in records] == [{"x": 1}, {}]
        assert await store.count(collection, {"y": {"$ne": 2}}) == 2

    async def test_ids_of_every_shape_round_trip(self, store: VectorStore, collection: str) -> None:
        import numpy as np

        await store.create_collection(collection, DIM)
        keys: list[str | int] = [7, "42", "0", "007", str(uuid.uuid4()), "a/b c", "DOC-x"]
        vectors = np.random.default_rng(1).normal(size=(len(keys), DIM))
        await store.upsert(collection, keys, vectors)
        expected = [str(k) for k in keys]
        found = await store.get(collection, expected)
        assert [r.id for r in found] == expected
        assert all(r.payload == {} for r in found)
        hit = (await store.search(collection, vectors[5], top_k=1))[0]
        assert hit.id == "a/b c" and hit.payload == {}
        await store.delete(collection, ["a/b c", 7])
        assert await store.count(collection) == len(keys) - 2

    async def test_batches_report_progress(self, store: VectorStore, collection: str) -> None:
        import numpy as np

        await store.create_collection(collection, DIM)
        vectors = np.random.default_rng(2).normal(size=(25, DIM))
        seen: list[tuple[int, int]] = []
        written = await store.upsert(
            collection, range(25), vectors, batch_size=10, progress=lambda d, t: seen.append((d, t))
        )
        assert written == 25
        assert seen == [(10, 25), (20, 25), (25, 25)]
        assert await store.count(collection) == 25

    @pytest.mark.parametrize(
        ("ids", "vectors", "payloads", "match"), _BAD_INPUTS, ids=_BAD_INPUT_IDS
    )
    async def test_bad_input_writes_nothing(
        self,
        store: VectorStore,
        collection: str,
        ids: Any,
        vectors: Any,
        payloads: Any,
        match: str,
    ) -> None:
        await store.create_collection(collection, DIM)
        # Good rows come first: a half-validated upsert would already have written them.
        with pytest.raises(ValueError, match=match) as info:
            await store.upsert(
                collection,
                [f"g{i}" for i in range(30)] + ids,
                [[1.0] * DIM] * 30 + vectors,
                None if payloads is None else [None] * 30 + payloads,
                batch_size=10,
            )
        assert "\n" not in str(info.value)
        assert await store.count(collection) == 0

    async def test_wrong_dimension_names_both_sizes(
        self, store: VectorStore, collection: str
    ) -> None:
        await store.create_collection(collection, DIM)
        with pytest.raises(ValueError, match="7 dimensions; the collection has 8"):
            await store.upsert(collection, ["a"], [[1.0] * (DIM - 1)])
        with pytest.raises(ValueError, match="query vector"):
            await store.search(collection, [1.0] * (DIM + 1))

    # -- search -----------------------------------------------------------------------
    async def test_search_scores_are_cosine_similarity(
        self, store: VectorStore, collection: str
    ) -> None:
        import numpy as np

        ids, vectors, payloads = await fill(store, collection)
        query = np.random.default_rng(3).normal(size=DIM)
        hits = await store.search(collection, query, top_k=5)
        assert len(hits) == 5 and all(isinstance(h, SearchHit) for h in hits)
        expected = unit(vectors) @ (query / np.linalg.norm(query))
        order = np.argsort(-expected)[:5]
        assert [h.id for h in hits] == [ids[i] for i in order]
        for hit, i in zip(hits, order, strict=True):
            assert math.isclose(hit.score, float(expected[i]), abs_tol=1e-5)
            assert hit.payload == payloads[i]
        self_hit = (await store.search(collection, vectors[4] * 3.0, top_k=1))[0]
        assert self_hit.id == "doc-4" and math.isclose(self_hit.score, 1.0, abs_tol=1e-5)

    @pytest.mark.parametrize(("filter", "expected"), _FILTERS, ids=_FILTER_IDS)
    async def test_filters(
        self, store: VectorStore, collection: str, filter: dict[str, Any], expected: list[int]
    ) -> None:
        _, vectors, _ = await fill(store, collection)
        hits = await store.search(collection, vectors[0], top_k=20, filter=filter)
        assert sorted(int(h.id.split("-")[1]) for h in hits) == expected
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert await store.count(collection, filter) == len(expected)

    async def test_delete_by_filter_and_ids(self, store: VectorStore, collection: str) -> None:
        await fill(store, collection)
        await store.delete(collection, filter={"colour": "red"})
        assert await store.count(collection) == 20 - 7  # 0, 3, 6, ... 18 are red
        await store.delete(collection, ["doc-1", "doc-2"], filter={"colour": "green"})  # doc-1
        assert await store.count(collection) == 20 - 8
        assert [r.id for r in await store.get(collection, ["doc-1", "doc-2"])] == ["doc-2"]
        with pytest.raises(ValueError, match="drop_collection"):
            await store.delete(collection)

    async def test_bad_filter_is_rejected_before_the_backend(
        self, store: VectorStore, collection: str
    ) -> None:
        await fill(store, collection)
        with pytest.raises(ValueError, match=r"\$regex"):
            await store.search(collection, [1.0] * DIM, filter={"colour": {"$regex": "r.*"}})
        with pytest.raises(ValueError, match="operators go inside"):
            await store.search(collection, [1.0] * DIM, filter={"$or": []})

    @pytest.mark.parametrize("distance", ["dot", "euclid"])
    async def test_other_distances_score_higher_is_better(
        self, store: VectorStore, collection: str, distance: str
    ) -> None:
        import numpy as np

        _, vectors, _ = docs()
        await store.create_collection(collection, DIM, distance=distance)
        await store.upsert(collection, range(20), vectors)
        query = vectors[0] + 0.1
        hits = await store.search(collection, query, top_k=3)
        dot = vectors @ query
        expected = dot if distance == "dot" else -np.linalg.norm(vectors - query, axis=1)
        order = np.argsort(-expected)[:3]
        assert [h.id for h in hits] == [str(i) for i in order]
        for hit, i in zip(hits, order, strict=True):
            assert math.isclose(hit.score, float(expected[i]), rel_tol=1e-4, abs_tol=1e-4)

    # -- texts and execute_query --------------------------------------------------------
    async def test_add_texts_and_search_text(self, store: VectorStore, collection: str) -> None:
        self._needs_texts()
        texts = [
            "the cat sat on the mat",
            "stock markets fell sharply today",
            "a recipe for lemon cake",
        ]
        keys = await store.add_texts(collection, texts, payloads=[{"n": 1}, None, {"n": 3}])
        assert keys == ["0", "1", "2"]
        assert (await store.collection_info(collection)).dim == store.embedder.dim
        hits = await store.search_text(collection, "lemon cake recipe", top_k=2)
        assert hits[0].id == "2" and hits[0].payload == {"n": 3, "text": texts[2]}
        more = await store.add_texts(collection, ["cats on mats"])
        assert more == ["3"]
        await store.delete(collection, ["1"])
        fresh = await store.add_texts(collection, ["never overwrites"])  # "3" is taken: a UUID
        assert len(fresh[0]) == 32 and await store.count(collection) == 4
        assert (await store.get(collection, ["3"]))[0].payload["text"] == "cats on mats"

    async def test_execute_query_returns_a_table(self, store: VectorStore, collection: str) -> None:
        self._needs_texts()
        await store.add_texts(collection, ["alpha beta", "gamma delta", "beta gamma"])
        result = await store.execute_query("alpha beta", {"collection": collection, "top_k": 2})
        assert isinstance(result, QueryResult)
        assert result.columns == ["id", "score", "text"]
        assert result.rows[0][0] == "0" and result.rows[0][2] == "alpha beta"
        assert len(result) == 2
        vector = await store.embedder.embed_query("gamma delta")
        limited = await store.execute_query(vector, {"collection": collection}, limit=1)
        assert [row[0] for row in limited] == ["1"]
        frame = result.df()
        assert list(frame.columns) == ["id", "score", "text"]
        filtered = await store.execute_query(
            "gamma", {"collection": collection, "filter": {"text": "beta gamma"}}
        )
        assert [row[0] for row in filtered] == ["2"]
        with pytest.raises(QueryError, match="collection"):
            await store.execute_query("alpha")

    def _needs_texts(self) -> None:
        if not self.texts:
            pytest.skip("this store has no embedder")
