"""Confluence manager against a local HTTP server speaking Confluence's REST shapes."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from nbinfra.connections.confluence import ConfluenceConnectionManager
from nbinfra.errors import ConnectionUnavailableError, ConnError, QueryError
from nbinfra.testing import LocalHTTPServer, free_port
from nbinfra.testing.connection_contract import ConnectionContract

from .ext_fakes import Auth, FakeConfluence

TOKEN = "wiki-sentinel-TOKEN-c0ffee"
FAST = {"retry_backoff": 0.01, "connect_timeout": 2.0, "timeout": 5.0}


@pytest.fixture
def wiki_server(local_http_server: LocalHTTPServer) -> FakeConfluence:
    fake = FakeConfluence(local_http_server, Auth(token=TOKEN)).install()
    for n in range(6):
        fake.add("DOCS", f"Release notes {n}", f"<p>release {n}</p>")
    fake.add("TEAM", "Onboarding", "<p>welcome</p>")
    return fake


def wiki(fake: FakeConfluence, **kw: Any) -> ConfluenceConnectionManager:
    return ConfluenceConnectionManager({"url": fake.server.url, "token": TOKEN, **FAST, **kw})


class TestConfluenceContract(ConnectionContract):
    query = "space = DOCS"
    bad_query = "SELEC nonsense FROM"
    secret = TOKEN

    @pytest.fixture
    def manager(self, wiki_server: FakeConfluence) -> ConfluenceConnectionManager:
        return wiki(wiki_server)

    @pytest.fixture
    def unreachable(self) -> ConfluenceConnectionManager:
        return ConfluenceConnectionManager(
            url=f"http://127.0.0.1:{free_port()}",
            token=TOKEN,
            connect_timeout=1.0,
            timeout=1.0,
            retries=0,
        )

    async def sever(self, manager: Any) -> None:
        pytest.skip(
            "plain HTTP requests hold no session to sever; outages are covered by "
            "test_dead_endpoint_gives_conn_error_within_timeout"
        )


async def test_search_follows_next_links(wiki_server: FakeConfluence) -> None:
    async with wiki(wiki_server, page_size=4) as mgr:
        result = await mgr.execute_query("space = DOCS")
    assert result.columns == ["id", "title", "type", "space", "last_modified", "url", "excerpt"]
    assert [r[1] for r in result] == [f"Release notes {n}" for n in range(6)]
    assert {r[3] for r in result} == {"DOCS"}
    searches = [r for r in wiki_server.server.requests if r.path == "/rest/api/search"]
    assert len(searches) == 2 and "start=4" in searches[1].query


async def test_limit_stops_before_an_extra_page(wiki_server: FakeConfluence) -> None:
    async with wiki(wiki_server, page_size=3) as mgr:
        result = await mgr.execute_query("space = DOCS", limit=3)
        titled = await mgr.search('space = DOCS AND title ~ "notes 5"')
    assert len(result) == 3 and result.truncated
    searches = [r for r in wiki_server.server.requests if r.path == "/rest/api/search"]
    assert len(searches) == 2  # one page for the limited search, one for the titled one
    assert [r[1] for r in titled] == ["Release notes 5"]


async def test_get_and_create_page(wiki_server: FakeConfluence) -> None:
    async with wiki(wiki_server) as mgr:
        parent = (await mgr.search("space = TEAM")).scalar()
        created = await mgr.create_page("TEAM", "Runbook", "<p>restart it</p>", parent_id=parent)
        page = await mgr.get_page(created["id"])
        with pytest.raises(QueryError):
            await mgr.get_page("999999")
    assert page["title"] == "Runbook"
    assert page["body"]["storage"]["value"] == "<p>restart it</p>"
    assert page["space"]["key"] == "TEAM"
    posted = next(r for r in wiki_server.server.requests if r.method == "POST").json()
    assert posted["ancestors"] == [{"type": "page", "id": parent}]
    assert posted["body"]["storage"]["representation"] == "storage"


async def test_basic_auth(local_http_server: LocalHTTPServer) -> None:
    fake = FakeConfluence(local_http_server, Auth(username="ada", password="pw-wiki-sentinel"))
    fake.install().add("DOCS", "Hello")
    mgr = ConfluenceConnectionManager(
        url=fake.server.url, username="ada", password="pw-wiki-sentinel"
    )
    async with mgr:
        assert (await mgr.execute_query("space = DOCS")).dicts()[0]["title"] == "Hello"
    assert "pw-wiki-sentinel" not in repr(mgr)


async def test_missing_credentials_are_refused_clearly(
    wiki_server: FakeConfluence, caplog: pytest.LogCaptureFixture
) -> None:
    mgr = ConfluenceConnectionManager(url=wiki_server.server.url, token="wiki-wrong-TOKEN-1")
    with caplog.at_level(logging.DEBUG, logger="nbinfra"), pytest.raises(ConnError) as info:
        await mgr.execute_query("space = DOCS")
    assert not isinstance(info.value, ConnectionUnavailableError)
    assert "HTTP 401" in str(info.value)
    for text in (str(info.value), caplog.text, repr(mgr)):
        assert "wiki-wrong-TOKEN-1" not in text


async def test_no_url_is_a_config_message() -> None:
    mgr = ConfluenceConnectionManager(token=TOKEN, retries=0)
    with pytest.raises(ConnError, match="No URL for Confluence"):
        await mgr.connect()


async def test_dead_endpoint_gives_conn_error_within_timeout() -> None:
    mgr = ConfluenceConnectionManager(
        url=f"http://127.0.0.1:{free_port()}",
        token=TOKEN,
        connect_timeout=0.5,
        retries=1,
        retry_backoff=0.01,
    )
    with pytest.raises(ConnectionUnavailableError, match="Cannot reach Confluence"):
        await mgr.execute_query("space = DOCS")
    status = await mgr.health_check()
    assert not status.ok and "connection refused" in (status.error or "")
    assert not mgr.is_healthy()
