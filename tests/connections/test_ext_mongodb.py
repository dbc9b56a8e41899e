"""MongoDB manager: mongomock in-process (no MongoDB server can run on this machine),
pymongo itself for connection failures, and a real server when one is given.

Set ``NBINFRA_TEST_MONGODB_URL`` (e.g. ``mongodb://localhost:27017``) to run the contract
and the native operations against a real MongoDB as well. Without it those tests skip,
even under ``NBINFRA_REQUIRE_SERVICES=1``: no MongoDB server can be installed where the
suite normally runs, so its absence is expected rather than a broken environment.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from typing import Any

import pytest

from nbinfra.connections import ConnectionFactory
from nbinfra.connections.mongodb import MongoDBConnectionManager, documents_table, parse_query
from nbinfra.errors import ConnectionUnavailableError, QueryError
from nbinfra.testing import free_port

from .contract import ManagerContract

SECRET = "mongo-sentinel-PASS-51d0"
REAL_URL = os.environ.get("NBINFRA_TEST_MONGODB_URL", "").strip()
PEOPLE = [
    {"name": "ada", "age": 36, "langs": ["analytical"], "city": "London"},
    {"name": "alan", "age": 41, "langs": ["ace"], "city": "Manchester"},
    {"name": "grace", "age": 85, "langs": ["cobol", "flow-matic"], "city": "Arlington"},
    {"name": "edsger", "age": 72, "langs": ["algol"], "city": "Austin"},
]


def mock_url() -> str:
    # A fresh in-process "server" per test; the password is a sentinel that must never show.
    return f"mongomock://tester:{SECRET}@mock-{uuid.uuid4().hex[:8]}/people"


def make(url: str, **kw: Any) -> MongoDBConnectionManager:
    return MongoDBConnectionManager({"url": url, "retry_backoff": 0.01, **kw})


async def seeded(url: str, **kw: Any) -> MongoDBConnectionManager:
    """A fresh, unconnected manager over a database holding ``PEOPLE`` in ``people``."""
    async with make(url, **kw) as setup:
        await setup.drop_collection("people")
        await setup.insert_many("people", PEOPLE)
    return make(url, **kw)


def real_url() -> str:
    if not REAL_URL:
        # A plain skip, not service_unavailable(): no MongoDB server can run here.
        pytest.skip("set NBINFRA_TEST_MONGODB_URL to test against a real MongoDB server")
    return REAL_URL


class TestMongomockContract(ManagerContract):
    query = 'people {"age": {"$gt": 40}}'
    bad_query = 'people {"age": {"$nope": 1}}'
    secret = SECRET

    @pytest.fixture
    async def manager(self) -> MongoDBConnectionManager:
        return await seeded(mock_url())

    @pytest.fixture
    def unreachable(self) -> MongoDBConnectionManager:
        # Real pymongo against a closed port: server selection must time out.
        return MongoDBConnectionManager(
            url=f"mongodb://tester:{SECRET}@127.0.0.1:{free_port()}/people",
            connect_timeout=0.5,
            retries=0,
        )

    async def sever(self, manager: Any) -> None:
        pytest.skip("mongomock is in-process: there is no connection to sever")


class TestRealMongoDBContract(TestMongomockContract):
    """The same contract on a real server (only with NBINFRA_TEST_MONGODB_URL)."""

    secret = None

    @pytest.fixture
    async def manager(self) -> MongoDBConnectionManager:
        return await seeded(real_url(), database=f"nbinfra_test_{uuid.uuid4().hex[:8]}")

    @pytest.fixture
    def unreachable(self) -> MongoDBConnectionManager:
        pytest.skip("covered by the mongomock class: it already uses real pymongo")

    async def sever(self, manager: Any) -> None:
        manager.client.close()  # pymongo refuses a closed client: the manager must reopen


@pytest.fixture(params=["mongomock", "real"])
async def people(request: pytest.FixtureRequest) -> Any:
    if request.param == "real":
        database = f"nbinfra_test_{uuid.uuid4().hex[:8]}"
        mgr = await seeded(real_url(), database=database)
    else:
        mgr = await seeded(mock_url())
    async with mgr:
        yield mgr
        if request.param == "real":
            await mgr.drop_collection("people")


async def test_find_with_filter_projection_sort_and_limit(people: Any) -> None:
    found = await people.find(
        "people", {"age": {"$gte": 40}}, projection={"_id": 0, "name": 1}, sort=[("age", -1)]
    )
    assert found == [{"name": "grace"}, {"name": "edsger"}, {"name": "alan"}]
    first = await people.find("people", {}, sort=[("name", 1)], skip=1, limit=2)
    assert [d["name"] for d in first] == ["alan", "edsger"]
    assert (await people.find_one("people", {"name": "ada"}))["city"] == "London"
    assert await people.find_one("people", {"name": "nobody"}) is None
    assert await people.count_documents("people", {"age": {"$lt": 50}}) == 2


async def test_aggregate(people: Any) -> None:
    pipeline = [
        {"$match": {"age": {"$gt": 30}}},
        {"$group": {"_id": None, "n": {"$sum": 1}, "oldest": {"$max": "$age"}}},
    ]
    assert await people.aggregate("people", pipeline) == [{"_id": None, "n": 4, "oldest": 85}]


async def test_insert_update_delete(people: Any) -> None:
    new_id = await people.insert_one("people", {"name": "barbara", "age": 84})
    assert (await people.find_one("people", {"_id": new_id}))["name"] == "barbara"
    changed = await people.update_many("people", {"age": {"$gt": 80}}, {"$inc": {"age": 1}})
    assert changed["matched"] == 2 and changed["modified"] == 2
    upserted = await people.update_one(
        "people", {"name": "ken"}, {"$set": {"age": 81}}, upsert=True
    )
    assert upserted["matched"] == 0 and upserted["upserted_id"] is not None
    assert await people.delete_one("people", {"name": "ken"}) == 1
    assert await people.delete_many("people", {"age": {"$gt": 80}}) == 2
    assert await people.count_documents("people") == 3
    with pytest.raises(QueryError, match=r"\$set"):
        await people.update_one("people", {"name": "ada"}, {"age": 1})
    assert "people" in await people.list_collections()


async def test_execute_query_forms(people: Any) -> None:
    by_filter = await people.execute_query('people {"city": "Austin"}')
    assert by_filter.dicts()[0]["name"] == "edsger"
    assert isinstance(by_filter.dicts()[0]["_id"], str)  # ObjectId as text in tables
    assert (
        by_filter.native.documents[0]["_id"]
        == (await people.find_one("people", {"name": "edsger"}))["_id"]
    )
    all_rows = await people.execute_query("people", limit=3)
    assert len(all_rows) == 3 and all_rows.truncated
    assert sorted(all_rows.columns) == ["_id", "age", "city", "langs", "name"]
    piped = await people.execute_query(
        '[{"$sort": {"age": 1}}, {"$project": {"_id": 0, "name": 1}}]',
        {"collection": "people"},
        limit=2,
    )
    assert piped.rows == [("ada",), ("alan",)]
    as_objects = await people.execute_query({"age": 36}, {"collection": "people"})
    assert as_objects.dicts()[0]["name"] == "ada"
    spec = await people.execute_query({"collection": "people", "filter": {"age": 41}})
    frame = spec.df()
    assert frame.loc[0, "name"] == "alan" and frame.loc[0, "langs"] == ["ace"]
    oid = by_filter.dicts()[0]["_id"]
    extended = await people.execute_query(f'people {{"_id": {{"$oid": "{oid}"}}}}')
    assert extended.dicts()[0]["name"] == "edsger"


async def test_execute_query_errors_are_one_line(people: Any) -> None:
    with pytest.raises(QueryError, match="not valid JSON"):
        await people.execute_query("people {name: }")
    with pytest.raises(QueryError, match="No collection"):
        await people.execute_query('{"age": 1}')
    assert people.is_healthy()


async def test_find_df(people: Any) -> None:
    frame = await people.find_df("people", {"age": {"$lt": 40}})
    assert list(frame["name"]) == ["ada"]


def test_parse_query() -> None:
    assert parse_query('users {"a": 1}') == ("users", {"a": 1})
    assert parse_query("users") == ("users", {})
    assert parse_query('[{"$match": {}}]', "c") == ("c", [{"$match": {}}])
    assert parse_query({"a": 1}, "c") == ("c", {"a": 1})
    with pytest.raises(QueryError, match="JSON object"):
        parse_query("users 5")


def test_documents_table_unions_columns_in_first_seen_order() -> None:
    table = documents_table([{"a": 1}, {"b": 2, "a": 3}])
    assert table.columns == ["a", "b"]
    assert table.rows == [(1, None), (3, 2)]


async def test_mongomock_data_survives_reconnect() -> None:
    url = mock_url()
    async with make(url) as first:
        await first.insert_one("notes", {"text": "kept"})
    async with make(url) as second:
        assert (await second.find_one("notes"))["text"] == "kept"
        status = await second.health_check()
    assert status.ok and "mongomock" in (status.server_version or "")
    assert SECRET not in str(status) + repr(second)
    assert status.target.startswith("mongomock://tester:********@")


async def test_unreachable_server_fails_within_timeout_without_leaking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mgr = MongoDBConnectionManager(
        url=f"mongodb://tester:{SECRET}@127.0.0.1:{free_port()}/db",
        connect_timeout=0.3,
        retries=1,
        retry_backoff=0.01,
    )
    with caplog.at_level(logging.DEBUG, logger="nbinfra"):
        with pytest.raises(ConnectionUnavailableError, match=r"in time|within") as info:
            await mgr.find("people")
        status = await mgr.health_check()
    assert not status.ok and not mgr.is_healthy()
    for text in (str(info.value), str(status), repr(mgr), repr(mgr.settings), caplog.text):
        assert SECRET not in text


async def test_stopped_server_health_is_bounded_by_connect_timeout() -> None:
    # Default retries: each try's server selection took most of connect_timeout, so a
    # health check used to take three of them (12 s by default, past %conn list's 10 s).
    port = free_port()
    mgr = MongoDBConnectionManager(
        url=f"mongodb://tester:{SECRET}@127.0.0.1:{port}/db", connect_timeout=1.0
    )
    started = time.perf_counter()
    status = await mgr.health_check()
    took = time.perf_counter() - started
    assert not status.ok and status.state == "down"
    assert took < 1.5, f"health check took {took:.2f} s"
    error = status.error or ""
    assert "\n" not in error and SECRET not in error
    assert f"at mongodb://tester:********@127.0.0.1:{port}/db did not answer" in error
    assert "within 1 s" in error and "refused" in error.lower()
    assert "url under connections.mongodb" in error and "connect_timeout" in error
    started = time.perf_counter()
    with pytest.raises(ConnectionUnavailableError, match="did not answer the connect") as info:
        await mgr.connect()
    assert time.perf_counter() - started < 1.5
    assert SECRET not in str(info.value) and "connect_timeout" in str(info.value)


async def test_health_of_a_server_gone_quiet_is_bounded_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mgr = make(mock_url(), connect_timeout=0.5)
    async with mgr:
        assert (await mgr.health_check()).ok

        def hangs() -> str | None:
            time.sleep(1.5)
            return None

        monkeypatch.setattr(mgr, "_ping_sync", hangs)
        started = time.perf_counter()
        status = await mgr.health_check()
        assert time.perf_counter() - started < 1.0
        assert not status.ok and not mgr.is_healthy() and mgr.last_status is status
        assert "did not answer the health check within 0.5 s" in (status.error or "")


async def test_client_of_a_cancelled_connect_is_closed_by_the_next_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mgr = make(mock_url())
    closed: list[Any] = []
    make_client, first_ping = mgr._make_client, mgr._first_ping

    def tracked() -> Any:
        client = make_client()
        client.close = lambda: closed.append(client)
        return client

    def slow_once(client: Any) -> None:
        if not closed and mgr._client is None:
            time.sleep(0.3)
        first_ping(client)

    monkeypatch.setattr(mgr, "_make_client", tracked)
    monkeypatch.setattr(mgr, "_first_ping", slow_once)
    # As %conn list does: its own deadline cancels a check that is still connecting.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(mgr.health_check(), 0.1)
    await asyncio.sleep(0.4)  # that open finishes in the worker and keeps its client
    left_over = mgr._client
    assert left_over is not None and not mgr.connected
    await mgr.connect()
    assert closed == [left_over] and mgr.client is not left_over
    live = mgr.client
    await mgr.disconnect()
    assert closed == [left_over, live]


def test_factory_uses_the_db_yaml_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    from nbinfra.config import load_settings

    monkeypatch.setenv("MONGODB_URL", "mongodb://app:yaml-SECRET-88@db.example:27017/")
    monkeypatch.setenv("MONGODB_DATABASE", "shop")
    mgr = ConnectionFactory.get_connection_manager("mongodb", settings=load_settings())
    assert isinstance(mgr, MongoDBConnectionManager)
    assert mgr.settings.database == "shop"
    assert mgr.target == "mongodb://app:********@db.example:27017/"
    assert "yaml-SECRET-88" not in repr(mgr)
