"""MongoDB manager over a real wire: a private nx-27017 server (MongoDB's wire protocol
over SQLite) on a free port, killed and restarted mid-session; the embedded default built
on it; mongomock in-process; and a real MongoDB when one is given.

Set ``NBINFRA_TEST_MONGODB_URL`` (e.g. ``mongodb://localhost:27017``) to run the contract
and the native operations against a real MongoDB as well. Without it those tests skip,
even under ``NBINFRA_REQUIRE_SERVICES=1``: no MongoDB server can be installed where the
suite normally runs, so its absence is expected rather than a broken environment.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from nbinfra.connections import ConnectionFactory
from nbinfra.connections.mongodb import MongoDBConnectionManager, documents_table, parse_query
from nbinfra.errors import ConnectionUnavailableError, QueryError
from nbinfra.testing import MongoServer, free_port
from nbinfra.testing.connection_contract import ConnectionContract

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


class TestMongomockContract(ConnectionContract):
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


class TestNxContract(TestMongomockContract):
    """The contract over TCP on the session's private nx-27017; ``sever`` SIGKILLs it."""

    secret = None

    @pytest.fixture
    async def manager(self, mongo_server: MongoServer) -> MongoDBConnectionManager:
        return await seeded(mongo_server.url, database=f"t{uuid.uuid4().hex[:8]}")

    @pytest.fixture
    def unreachable(self) -> MongoDBConnectionManager:
        pytest.skip("covered by the mongomock class: it already uses real pymongo")

    async def sever(self, manager: Any) -> None:
        server = self._server
        server.kill()  # the client's pooled sockets now lead nowhere
        server.start()  # same port and data: the manager must reconnect on its own

    @pytest.fixture(autouse=True)
    def _keep_server(self, mongo_server: MongoServer) -> None:
        self._server = mongo_server


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


@pytest.fixture(params=["mongomock", "nx", "real"])
async def people(request: pytest.FixtureRequest) -> Any:
    if request.param == "mongomock":
        mgr = await seeded(mock_url())
    else:
        url = request.getfixturevalue("mongo_server").url if request.param == "nx" else real_url()
        mgr = await seeded(url, database=f"nbinfra_test_{uuid.uuid4().hex[:8]}")
    async with mgr:
        yield mgr
        if request.param != "mongomock":
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
        with pytest.raises(ConnectionUnavailableError, match="refused the connection") as info:
            await mgr.find("people")
        status = await mgr.health_check()
    assert not status.ok and not mgr.is_healthy()
    for text in (str(info.value), str(status), repr(mgr), repr(mgr.settings), caplog.text):
        assert SECRET not in text


async def down_within(mgr: MongoDBConnectionManager, seconds: float) -> str:
    """The error of a failed health check that took less than ``seconds`` (one line)."""
    started = time.perf_counter()
    status = await mgr.health_check()
    took = time.perf_counter() - started
    assert not status.ok and status.state == "down"
    assert took < seconds, f"health check took {took:.2f} s"
    error = status.error or ""
    assert "\n" not in error and SECRET not in error
    return error


async def test_refused_port_answers_at_once_with_what_to_do() -> None:
    # A TCP probe before pymongo: its server selection would wait out connect_timeout.
    port = free_port()
    mgr = MongoDBConnectionManager(
        url=f"mongodb://tester:{SECRET}@127.0.0.1:{port}/db", connect_timeout=5.0
    )
    error = await down_within(mgr, 2.5)  # not the 4 s of server selection
    assert error == (
        f"MongoDB 'mongodb' at mongodb://tester:********@127.0.0.1:{port}/db refused the "
        f"connection (127.0.0.1:{port}: connection refused); start the server or fix url "
        "under connections.mongodb in resources/application-db.yaml."
    )
    with pytest.raises(ConnectionUnavailableError, match="refused the connection") as info:
        await mgr.connect()
    assert SECRET not in str(info.value)


async def test_silent_server_health_is_bounded_by_connect_timeout(silent_port: int) -> None:
    # Default retries: each try's server selection took most of connect_timeout, so a
    # health check used to take three of them (12 s by default, past %conn list's 10 s).
    mgr = MongoDBConnectionManager(
        url=f"mongodb://tester:{SECRET}@127.0.0.1:{silent_port}/db", connect_timeout=1.0
    )
    error = await down_within(mgr, 1.5)
    assert f"at mongodb://tester:********@127.0.0.1:{silent_port}/db did not answer" in error
    assert "within 1 s" in error
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


# -- over a real wire: nx-27017 -----------------------------------------------------------
async def test_killed_server_is_down_at_once_then_reconnects_with_its_data() -> None:
    with MongoServer() as server:
        mgr = make(server.url, database="kept", connect_timeout=5.0)
        async with mgr:
            await mgr.insert_many("notes", [{"n": 1}, {"n": 2}])
            server.kill()
            started = time.perf_counter()
            status = await mgr.health_check()
            took = time.perf_counter() - started
            assert not status.ok and not mgr.is_healthy()
            assert "refused" in (status.error or "").lower(), status.error
            assert took < 2.5, f"a refused port took {took:.2f} s (waited for pymongo?)"
            server.start()  # same port, same SQLite files
            assert await mgr.count_documents("notes") == 2
            assert (await mgr.health_check()).ok and mgr.is_healthy()


@pytest.fixture
def embedded_dir(tmp_path: Any) -> Any:
    from nbinfra.connections.embedded_mongo import stop_embedded_mongodb

    path = tmp_path / "mongodb"
    yield path
    stop_embedded_mongodb(path)


async def test_embedded_server_is_the_default_and_heals_after_a_kill(embedded_dir: Any) -> None:
    from nbinfra.connections import embedded_mongo

    mgr = MongoDBConnectionManager(embedded_dir=str(embedded_dir))
    assert mgr.settings.embedded and mgr.target == f"embedded ({embedded_dir})"
    assert mgr.pending_start == f"the embedded MongoDB (nx-27017) under {embedded_dir}"
    async with mgr:
        assert mgr.pending_start is None
        status = await mgr.health_check()
        assert status.ok and "nx-27017" in (status.server_version or "")
        await mgr.insert_many("people", PEOPLE)
        first = embedded_mongo._started[embedded_dir.resolve()]
        first.kill()
        assert await mgr.count_documents("people", {"age": {"$gt": 40}}) == 3
        second = embedded_mongo._started[embedded_dir.resolve()]
        assert second.running and second.process is not first.process
    assert (embedded_dir / "nbinfra.db").exists()  # one SQLite file per database
    async with MongoDBConnectionManager(embedded_dir=str(embedded_dir)) as again:
        assert await again.count_documents("people") == 4


def test_embedded_server_is_shared_through_its_data_folder(embedded_dir: Any) -> None:
    from nbinfra.connections.embedded_mongo import embedded_mongodb_running, embedded_mongodb_url

    assert not embedded_mongodb_running(embedded_dir)
    url = embedded_mongodb_url(embedded_dir)
    assert embedded_mongodb_running(embedded_dir)
    code = (
        "from nbinfra.connections.embedded_mongo import embedded_mongodb_url as u, _started\n"
        f"print(u({str(embedded_dir)!r}), len(_started))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == [url, "0"]  # found running: the other process started none


async def test_without_nx_the_stand_in_is_mongomock_announced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, embedded_dir: Any
) -> None:
    from nbinfra.connections import embedded_mongo, mongodb

    monkeypatch.setattr(mongodb, "nx_available", lambda: False)
    monkeypatch.setattr(embedded_mongo, "nx_available", lambda: False)
    monkeypatch.setattr(embedded_mongo, "_announced", [])
    mgr = MongoDBConnectionManager(embedded_dir=str(embedded_dir), database="standin")
    assert mgr.pending_start is None
    with caplog.at_level(logging.WARNING, logger="nbinfra"):
        async with mgr:
            await mgr.insert_one("notes", {"text": "kept"})
            status = await mgr.health_check()
    assert "mongomock" in (status.server_version or "")
    assert "nbinfra[embedded]" in caplog.text and not embedded_dir.exists()
    async with MongoDBConnectionManager(embedded_dir=str(embedded_dir), database="standin") as m:
        assert (await m.find_one("notes"))["text"] == "kept"


async def test_without_nx_or_mongomock_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    from nbinfra.connections import embedded_mongo
    from nbinfra.errors import MissingDependencyError

    monkeypatch.setattr(embedded_mongo, "nx_available", lambda: False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "mongomock" else real_find_spec(name, *a),
    )
    with pytest.raises(MissingDependencyError, match=r"nbinfra\[embedded\].*MONGODB_URL"):
        await MongoDBConnectionManager().connect()


def test_shipped_yaml_without_mongodb_url_is_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    from nbinfra.config import load_settings

    monkeypatch.delenv("MONGODB_URL", raising=False)
    mgr = ConnectionFactory.get_connection_manager("mongodb", settings=load_settings())
    assert mgr.settings.embedded and mgr.target == "embedded (.nbinfra/mongodb)"
