"""nbinfra's vector-store and connection contracts on Milvus Lite: ``pymilvus`` talking
gRPC to the Milvus Lite server it starts in this process over a ``.db`` folder under
``tmp_path``."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from nbinfra_milvus import MilvusConnectionManager, milvus_name, nb_name

from nbinfra.connections import ConnectionRegistry, get_connection_manager
from nbinfra.testing import free_port
from nbinfra.testing.connection_contract import ConnectionContract
from nbinfra.testing.vector_contract import DIM, VectorStoreContract, fill

SECRET = "mv-Secret-Token-1"


def lite(tmp_path: Path, **settings: Any) -> MilvusConnectionManager:
    return MilvusConnectionManager(path=str(tmp_path / "milvus.db"), **settings)


class TestMilvusStore(VectorStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[MilvusConnectionManager]:
        async with lite(tmp_path) as manager:
            yield manager

    async def test_portable_names_milvus_refuses_round_trip(
        self, store: MilvusConnectionManager
    ) -> None:
        names = ["my-docs", "2024.v1", "x-y", "a_b-c"]
        for name in names:
            await store.create_collection(name, DIM)
        try:
            listed = await store.list_collections()
            assert set(names) <= set(listed)
            raw = await store.to_thread(store.client.list_collections)
            assert "_nbmy_2d_docs" in raw and "a_b-c" not in raw
            await store.upsert("my-docs", ["a"], [[1.0] * DIM], [{"n": 1}])
            assert (await store.get("my-docs", ["a"]))[0].payload == {"n": 1}
            assert await store.count("2024.v1") == 0
        finally:
            for name in names:
                await store.drop_collection(name)
        assert not set(names) & set(await store.list_collections())

    async def test_filter_values_cannot_change_the_expression(
        self, store: MilvusConnectionManager, collection: str
    ) -> None:
        await fill(store, collection)
        sneaky = 'red" or payload["i"] >= 0 or payload["colour"] == "'
        assert await store.count(collection, {"colour": sneaky}) == 0
        assert await store.count(collection, {"colour": {"$ne": sneaky}}) == 20
        odd = 'q"uo\\te\nü ☃'
        await store.upsert(collection, ["odd"], [[1.0] * DIM], [{"colour": odd, 'k"ey': odd}])
        assert await store.count(collection, {"colour": odd}) == 1
        assert await store.count(collection, {'k"ey': {"$in": [odd, "x"]}}) == 1
        assert await store.count(collection, {"colour": {"$nin": [odd, "red"]}}) == 20 - 7
        hits = await store.search(collection, [1.0] * DIM, top_k=3, filter={"colour": odd})
        assert [h.id for h in hits] == ["odd"] and hits[0].payload['k"ey'] == odd

    async def test_data_outlives_the_connection(self, tmp_path: Path, collection: str) -> None:
        async with lite(tmp_path, name="first") as first:
            await fill(first, collection)
        async with lite(tmp_path, name="second") as second:
            assert await second.count(collection, {"even": True}) == 10
            info = await second.collection_info(collection)
            assert (info.dim, info.distance) == (DIM, "cosine")


class TestMilvusManager(ConnectionContract):
    query: ClassVar[Any] = "alpha"
    bad_query: ClassVar[Any] = [1.0, 2.0]  # the collection holds the embedder's size
    secret = SECRET

    @pytest.fixture
    async def manager(self, tmp_path: Path) -> MilvusConnectionManager:
        manager = lite(tmp_path, collection="contract", token=SECRET)
        async with manager:
            await manager.add_texts("contract", ["alpha beta", "gamma delta", "epsilon"])
        return manager

    @pytest.fixture
    def unreachable(self) -> MilvusConnectionManager:
        return MilvusConnectionManager(
            url=f"http://127.0.0.1:{free_port()}",
            token=SECRET,
            connect_timeout=3,
            timeout=3,
            retries=0,
        )

    async def sever(self, manager: Any) -> None:
        lite_servers = importlib.import_module("milvus_lite.server_manager")
        lite_servers.server_manager_instance.release_server(manager.settings.path)


def test_registered_through_the_entry_point(tmp_path: Path) -> None:
    assert ConnectionRegistry.get("milvus") is MilvusConnectionManager
    manager = get_connection_manager("milvus", path=str(tmp_path / "x.db"))
    assert isinstance(manager, MilvusConnectionManager) and manager.target.endswith("x.db")


async def test_path_must_name_a_db_folder(tmp_path: Path) -> None:
    manager = MilvusConnectionManager(path=str(tmp_path / "milvus"), retries=0)
    with pytest.raises(Exception, match=r"end in \.db"):
        await manager.connect()
    assert not manager.connected


@pytest.mark.parametrize("name", ["docs", "t_1", "my-docs", "2024.v1", "_nbdocs", "a.b-c_d"])
def test_names_map_to_milvus_identifiers_and_back(name: str) -> None:
    stored = milvus_name(name)
    assert stored.replace("_", "a").isalnum() and not stored[0].isdigit()
    assert nb_name(stored) == name
