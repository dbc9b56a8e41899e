"""The shared manager contract (connect/health/reconnect/close/errors) on the three vector
stores, each on its real engine. A store's query is a text search over a small collection
written before the test; its bad query is a vector of the wrong size."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from nbinfra.connections import get_connection_manager
from nbinfra.connections.chromadb import ChromaConnectionManager
from nbinfra.connections.pgvector import PgVectorConnectionManager
from nbinfra.connections.qdrant import QdrantConnectionManager
from nbinfra.connections.vector import VectorStore
from nbinfra.testing import PostgresServer, free_port
from nbinfra.testing.connection_contract import ConnectionContract
from nbinfra.testing.sql_contract import SQLContract
from tests.connections.test_vector_local import record_call_threads

TEXTS = ["alpha beta", "gamma delta", "epsilon"]


async def seeded(manager: VectorStore) -> VectorStore:
    """Write the contract's collection, then hand back an unconnected manager."""
    async with manager:
        await manager.drop_collection("contract")
        await manager.add_texts("contract", TEXTS)
    return manager


class VectorContract(ConnectionContract):
    query: ClassVar[Any] = "alpha"
    bad_query: ClassVar[Any] = [1.0, 2.0]  # the collection holds 384-dim vectors


class TestQdrantManager(VectorContract):
    @pytest.fixture
    async def manager(self, tmp_path: Path) -> VectorStore:
        # A folder, not :memory:, so the data outlives disconnect/reconnect.
        return await seeded(
            QdrantConnectionManager(path=str(tmp_path / "qdrant"), collection="contract")
        )

    @pytest.fixture
    def unreachable(self) -> VectorStore:
        return QdrantConnectionManager(
            url=f"http://127.0.0.1:{free_port()}", connect_timeout=10, timeout=3, retries=0
        )


class TestChromaManager(VectorContract):
    @pytest.fixture
    async def manager(self, tmp_path: Path) -> VectorStore:
        return await seeded(
            ChromaConnectionManager(path=str(tmp_path / "chroma"), collection="contract")
        )

    @pytest.fixture
    def unreachable(self) -> VectorStore:
        return ChromaConnectionManager(
            url=f"http://127.0.0.1:{free_port()}", connect_timeout=10, timeout=3, retries=0
        )


SECRET = "pgv-Secret-Pw-1"


class TestPgVectorManager(VectorContract, SQLContract):
    """pgvector is also SQL: ``sql()`` and ``%%conn`` cells run on PostgreSQL."""

    secret = SECRET

    @pytest.fixture
    async def manager(self, postgres_server: PostgresServer) -> VectorStore:
        # The embedded server trusts local users, so the password only has to stay hidden.
        url = postgres_server.url.replace("postgres:@", f"postgres:{SECRET}@")
        return await seeded(PgVectorConnectionManager(url=url, collection="contract"))

    @pytest.fixture
    def unreachable(self) -> VectorStore:
        return PgVectorConnectionManager(
            url=f"postgresql://someone:{SECRET}@127.0.0.1:{free_port()}/db",
            connect_timeout=2,
            retries=0,
        )

    async def sever(self, manager: Any) -> None:
        import psycopg

        with psycopg.connect(manager.conninfo(), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        await asyncio.sleep(0.05)


# -- configuration --------------------------------------------------------------------------
def test_kinds_resolve_through_the_factory(tmp_path: Path) -> None:
    from nbinfra.config import Settings

    settings = Settings.from_dict(
        {
            "connections": {
                "notes": {"kind": "chroma", "path": str(tmp_path / "c"), "collection": "n"},
                "qdrant": {"location": ":memory:", "embedder_options": {"dim": 64}},
                "vectors": {"kind": "pgvector", "url": "postgresql://u:pw-123456@h/db"},
            }
        }
    )
    notes = get_connection_manager("notes", settings=settings)
    assert isinstance(notes, ChromaConnectionManager)
    assert notes.settings.collection == "n" and notes.target == str(tmp_path / "c")
    qdrant = get_connection_manager("qdrant", settings=settings)
    assert isinstance(qdrant, QdrantConnectionManager)
    assert qdrant.embedder.dim == 64 and qdrant.embedder.lexical
    vectors = get_connection_manager("vectors", settings=settings)
    assert isinstance(vectors, PgVectorConnectionManager)
    assert "pw-123456" not in repr(vectors) and "pw-123456" not in vectors.target


def test_shipped_vector_config_has_the_embedded_defaults() -> None:
    from nbinfra.config import load_settings

    settings = load_settings(environ={})
    for name, cls in [
        ("qdrant", QdrantConnectionManager),
        ("chromadb", ChromaConnectionManager),
        ("pgvector", PgVectorConnectionManager),
    ]:
        manager = get_connection_manager(name, settings=settings)
        assert type(manager) is cls
    qdrant = get_connection_manager("qdrant", settings=settings)
    assert qdrant.target == ":memory:"
    chroma = get_connection_manager("chromadb", settings=settings)
    assert chroma.target.endswith(".nbinfra/chroma")
    pg = get_connection_manager("pgvector", settings=settings)
    assert "embedded" in pg.target


def test_sync_facade_reaches_vector_methods(tmp_path: Path) -> None:
    from nbinfra.connections import SyncConnection

    manager = ChromaConnectionManager(path=str(tmp_path / "chroma"), collection="docs")
    conn = SyncConnection(manager)
    try:
        conn.add_texts("docs", ["red apples", "green pears"])
        assert conn.count("docs") == 2
        result = conn.query("green pears")
        assert result.rows[0][0] == "1"
        assert conn.health().ok
    finally:
        conn.close()


@pytest.mark.parametrize("kind", ["qdrant", "chromadb"])
async def test_worker_thread_path_when_not_inline(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager: VectorStore
    if kind == "qdrant":
        manager = QdrantConnectionManager(inline=False)
    else:
        manager = ChromaConnectionManager(path=str(tmp_path / "c"), inline=False)
    loop_thread = threading.get_ident()
    async with manager:
        seen = record_call_threads(monkeypatch, manager)
        await manager.add_texts("fruit", ["red apples", "green pears"])
        hits = await manager.search_text("fruit", "green pears", top_k=1)
        assert hits[0].id == "1" and hits[0].payload == {"text": "green pears"}
    assert seen and loop_thread not in seen
    inline = QdrantConnectionManager()
    async with inline:
        seen = record_call_threads(monkeypatch, inline)
        await inline.add_texts("fruit", ["x"])
    assert seen and set(seen) == {loop_thread}  # only open and close use the worker thread


@pytest.mark.parametrize("kind", ["qdrant", "chromadb"])
async def test_server_credentials_never_show(kind: str) -> None:
    from nbinfra.errors import ConnectionUnavailableError

    secret = f"{kind}-Secret-Key-77"
    url = f"https://127.0.0.1:{free_port()}"  # https: qdrant warns about keys over http
    manager: VectorStore
    if kind == "qdrant":
        manager = QdrantConnectionManager(url=url, api_key=secret, connect_timeout=10, retries=0)
    else:
        manager = ChromaConnectionManager(url=url, token=secret, connect_timeout=10, retries=0)
    assert secret not in repr(manager) and secret not in manager.target
    with pytest.raises(ConnectionUnavailableError) as info:
        await manager.connect()
    assert secret not in str(info.value) and "\n" not in str(info.value)
    status = await manager.health_check()
    assert not status.ok and secret not in str(status)


def test_make_hit_is_the_same_hit_as_the_dataclass_builds() -> None:
    from dataclasses import FrozenInstanceError

    from nbinfra.connections.vector_types import SearchHit, make_hit

    made, built = make_hit("a", 0.5, {"k": 1}), SearchHit("a", 0.5, {"k": 1})
    assert made == built and repr(made) == repr(built)
    assert (made.id, made.score, made.payload) == ("a", 0.5, {"k": 1})
    assert made != make_hit("a", 0.25, {"k": 1})
    with pytest.raises(FrozenInstanceError):
        made.score = 1.0  # type: ignore[misc]
