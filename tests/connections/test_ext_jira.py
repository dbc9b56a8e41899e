"""Jira manager against a local HTTP server speaking Jira's REST shapes (real requests/HTTP)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from nbinfra.connections import ConnectionFactory, ConnectionType
from nbinfra.connections.jira import JiraConnectionManager
from nbinfra.errors import ConnectionUnavailableError, ConnError, QueryError
from nbinfra.testing import LocalHTTPServer, Response, free_port
from nbinfra.testing.connection_contract import ConnectionContract

from .ext_fakes import Auth, FakeJira

TOKEN = "jira-sentinel-TOKEN-7d41c9"
FAST = {"retry_backoff": 0.01, "connect_timeout": 2.0, "timeout": 5.0}


@pytest.fixture
def jira_server(local_http_server: LocalHTTPServer) -> FakeJira:
    fake = FakeJira(local_http_server, Auth(token=TOKEN)).install()
    for n in range(7):
        fake.add("DEMO", f"Demo issue {n}", status="Done" if n % 2 else "To Do")
    fake.add("OPS", "Rotate keys", assignee="Grace Hopper", labels=["security", "q3"])
    return fake


def jira(fake: FakeJira, **kw: Any) -> JiraConnectionManager:
    return JiraConnectionManager({"url": fake.server.url, "token": TOKEN, **FAST, **kw})


class TestJiraContract(ConnectionContract):
    query = "project = DEMO"
    bad_query = "SELEC nonsense FROM"
    secret = TOKEN

    @pytest.fixture
    def manager(self, jira_server: FakeJira) -> JiraConnectionManager:
        return jira(jira_server)

    @pytest.fixture
    def unreachable(self) -> JiraConnectionManager:
        return JiraConnectionManager(
            url=f"http://127.0.0.1:{free_port()}",
            token=TOKEN,
            connect_timeout=1.0,
            timeout=1.0,
            retries=0,
        )

    async def sever(self, manager: Any) -> None:
        pytest.skip(
            "plain HTTP requests hold no session to sever; outages are covered by the "
            "dead-endpoint and server-error tests below"
        )


async def test_search_reads_every_page_as_a_table(jira_server: FakeJira) -> None:
    jira_server.max_page = 3  # the server caps pages below what the client asks
    async with jira(jira_server, page_size=50) as mgr:
        result = await mgr.execute_query("project = DEMO")
    assert result.columns[:4] == ["key", "summary", "status", "issuetype"]
    assert [row[0] for row in result] == [f"DEMO-{n}" for n in range(1, 8)]
    assert result.dicts()[1]["status"] == "Done"
    searches = [r for r in jira_server.server.requests if r.path == "/rest/api/2/search"]
    assert len(searches) == 3  # 3 + 3 + 1, stopped by total
    assert "startAt=6" in searches[-1].query


async def test_limit_stops_paging_early(jira_server: FakeJira) -> None:
    async with jira(jira_server, page_size=2) as mgr:
        result = await mgr.execute_query("project = DEMO", limit=3)
    assert len(result) == 3 and result.truncated
    searches = [r for r in jira_server.server.requests if r.path == "/rest/api/2/search"]
    assert len(searches) == 2 and "maxResults=1" in searches[-1].query


async def test_filters_and_flattens_fields(jira_server: FakeJira) -> None:
    async with jira(jira_server) as mgr:
        done = await mgr.search("project = DEMO AND status = 'Done'")
        ops = await mgr.search("project = OPS", fields=["labels"])
    assert {row[2] for row in done} == {"Done"} and len(done) == 3
    row = ops.dicts()[0]
    assert row["assignee"] == "Grace Hopper"
    assert row["labels"] == "security, q3"
    assert ops.df().loc[0, "key"] == "OPS-1"


async def test_get_and_create_issue(jira_server: FakeJira) -> None:
    async with jira(jira_server) as mgr:
        created = await mgr.create_issue(
            "OPS", "Renew certificate", issue_type="Bug", description="expires Friday"
        )
        issue = await mgr.get_issue(created["key"])
        with pytest.raises(QueryError, match="not found"):
            await mgr.get_issue("NOPE-1")
    assert created["key"] == "OPS-2"
    assert issue["fields"]["summary"] == "Renew certificate"
    assert issue["fields"]["issuetype"]["name"] == "Bug"
    assert issue["fields"]["description"] == "expires Friday"


async def test_basic_auth_with_username_and_password(local_http_server: LocalHTTPServer) -> None:
    fake = FakeJira(local_http_server, Auth(username="ada", password="pw-sentinel-31")).install()
    fake.add("DEMO", "one")
    mgr = JiraConnectionManager(url=fake.server.url, username="ada", password="pw-sentinel-31")
    async with mgr:
        assert (await mgr.execute_query("project = DEMO")).scalar() == "DEMO-1"
        status = await mgr.health_check()
    assert status.server_version == "Jira 9.12.4"
    assert "pw-sentinel-31" not in repr(mgr) + str(status)


async def test_wrong_token_is_a_clear_conn_error(
    jira_server: FakeJira, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "jira-wrong-TOKEN-0b77e1"
    mgr = jira(jira_server, token=wrong)
    with caplog.at_level(logging.DEBUG, logger="nbinfra"), pytest.raises(ConnError) as info:
        await mgr.connect()
    assert not isinstance(info.value, ConnectionUnavailableError)
    assert "refused the credentials (HTTP 401)" in str(info.value)
    status = await mgr.health_check()
    assert not status.ok
    for text in (str(info.value), str(status), repr(mgr), caplog.text):
        assert wrong not in text and TOKEN not in text


async def test_server_error_on_a_read_is_retried(jira_server: FakeJira) -> None:
    calls = {"n": 0}
    search = jira_server.server.routes[("GET", "/rest/api/2/search")]

    def flaky(request: Any) -> Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return Response(503, {"errorMessages": ["Service Unavailable"]})
        result: Response = search(request)
        return result

    jira_server.server.route("GET", "/rest/api/2/search", flaky)
    async with jira(jira_server, retries=2) as mgr:
        result = await mgr.execute_query("project = OPS")
    assert calls["n"] == 2 and result.scalar() == "OPS-1"


async def test_create_is_not_retried_on_server_error(jira_server: FakeJira) -> None:
    jira_server.server.route("POST", "/rest/api/2/issue", Response(503, {"errorMessages": []}))
    async with jira(jira_server, retries=3) as mgr:
        with pytest.raises(ConnectionUnavailableError, match="HTTP 503"):
            await mgr.create_issue("OPS", "once only")
    posts = [r for r in jira_server.server.requests if r.method == "POST"]
    assert len(posts) == 1


async def test_cloud_pages_with_next_page_token(local_http_server: LocalHTTPServer) -> None:
    auth = Auth(username="me@example.com", password="api-tok-9")
    fake = FakeJira(local_http_server, auth).install()
    local_http_server.route("GET", "/rest/api/2/myself", Response(200, {"accountId": "1"}))
    for n in range(5):
        fake.add("CLD", f"cloud {n}")
    mgr = JiraConnectionManager(
        url=fake.server.url,
        username="me@example.com",
        password="api-tok-9",
        cloud=True,
        page_size=2,
    )
    async with mgr:
        result = await mgr.execute_query("project = CLD")
    assert [r[0] for r in result] == [f"CLD-{n}" for n in range(1, 6)]
    pages = [r for r in fake.server.requests if r.path == "/rest/api/3/search/jql"]
    assert len(pages) == 3 and "nextPageToken=4" in pages[-1].query


async def test_dead_endpoint_fails_fast_with_conn_error() -> None:
    # A port that accepts connections but never answers: the read timeout must fire.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        mgr = JiraConnectionManager(url=url, token=TOKEN, timeout=0.5, retries=0)
        with pytest.raises(ConnectionUnavailableError, match="did not answer in time"):
            await mgr.connect()


def test_factory_builds_the_configured_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from nbinfra.config import load_settings

    monkeypatch.setenv("JIRA_URL", "https://jira.example.com")
    monkeypatch.setenv("JIRA_TOKEN", "jira-env-TOKEN-55aa")
    settings = load_settings()
    mgr = ConnectionFactory.get_connection_manager(ConnectionType.JIRA, settings=settings)
    assert isinstance(mgr, JiraConnectionManager)
    assert mgr.settings.url == "https://jira.example.com"
    assert mgr.target == "https://jira.example.com"
    assert "jira-env-TOKEN-55aa" not in repr(mgr) + repr(mgr.settings)
