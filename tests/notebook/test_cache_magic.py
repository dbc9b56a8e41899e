"""%cache against the real in-memory cache and a real Redis server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from nbinfra.session import Session, use_session
from nbinfra.testing import RedisServer
from tests.notebook.conftest import TestingShell


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        yield fresh
    fresh.close()


def test_set_get_delete_list_in_memory(ip: TestingShell, session: Session) -> None:
    ip.run_line_magic("cache", "set greeting 'hello world'")
    ip.run_line_magic("cache", "set nums [1, 2, {'a': 3}]")
    ip.user_ns["payload"] = {"rows": [1, 2]}
    ip.run_line_magic("cache", "set p $payload --ttl 30")
    assert ip.run_line_magic("cache", "get greeting") == "hello world"
    assert ip.run_line_magic("cache", "get nums") == [1, 2, {"a": 3}]
    assert ip.run_line_magic("cache", "get p") == {"rows": [1, 2]}
    assert ip.run_line_magic("cache", "list") == ["greeting", "nums", "p"]
    assert ip.run_line_magic("cache", "list n*") == ["nums"]
    assert ip.run_line_magic("cache", "delete nums") is True
    assert ip.run_line_magic("cache", "get nums") is None
    stats = ip.run_line_magic("cache", "stats")
    assert stats.hits >= 3 and stats.misses >= 1
    data, _ = ip.display_formatter.format(stats)
    assert "hits" in data["text/html"]


def test_stats_is_an_nbinfra_table_in_text_and_html(ip: TestingShell, session: Session) -> None:
    ip.run_line_magic("cache", "set k 'v'")
    ip.run_cell("for _ in range(1200): _ = get_ipython().run_line_magic('cache', 'get k')")
    ip.run_line_magic("cache", "get missing")
    stats = ip.run_cell("%cache stats").result
    data, _ = ip.display_formatter.format(stats)

    header, rule, row, *more = data["text/plain"].splitlines()
    assert not more, data["text/plain"]
    assert re.split(r"\s{2,}", header) == [
        "namespace", "backend", "hits", "misses", "hit rate", "sets", "deletes", "errors",
        "p50", "p95", "p99", "keys", "max_size", "evictions", "expirations",
    ]  # fmt: skip
    assert set(rule) == {"-", " "} and len(rule) == len(header)
    for name, shown in (("namespace", "notebook"), ("backend", "memory ")):  # left-aligned
        assert row[header.index(name) :].startswith(shown), (name, row)
    numbers = {"hits": "1,200", "misses": "1", "hit rate": "99.9%", "sets": "1", "errors": "0"}
    numbers |= {"keys": "1", "max_size": "10,000", "evictions": "0"}
    for name, shown in numbers.items():  # right-aligned under their header
        end = header.index(name) + len(name)
        assert row[end - len(shown) - 1 : end] == f" {shown}", (name, row)
    for name in ("p50", "p95", "p99"):
        end = header.index(name) + len(name)
        assert re.search(r" \d[\d,]*\.\d{3} ms$", row[:end]), (name, row)

    page = data["text/html"]
    assert page.startswith("<div class='nbinfra-tbl jp-RenderedHTMLCommon'><style>"), page[:80]
    assert "var(--jp-layout-color2" in page and "nbinfra-stats" not in page
    heads = re.findall(r"<th( class=nbinfra-num)?>([^<]*)</th>", page)
    cells = re.findall(r"<td( class='nbinfra-num')?>([^<]*)</td>", page)
    assert [h for _, h in heads] == re.split(r"\s{2,}", header)
    shown = {h: (bool(n), v) for (_, h), (n, v) in zip(heads, cells, strict=True)}
    assert shown["namespace"] == (False, "notebook") and shown["backend"] == (False, "memory")
    assert all(shown[name] == (True, value) for name, value in numbers.items()), shown
    assert all(bool(n) for n, h in heads if h not in ("namespace", "backend")), heads
    for name in ("p50", "p95", "p99"):
        assert re.fullmatch(r"\d[\d,]*\.\d{3} ms", shown[name][1]), shown


def test_namespaces_and_clear(ip: TestingShell, session: Session) -> None:
    ip.run_line_magic("cache", "-n a set k 1")
    ip.run_line_magic("cache", "-n b set k 2")
    ip.run_line_magic("cache", "set k 3")
    assert ip.run_line_magic("cache", "-n a get k") == 1
    assert ip.run_line_magic("cache", "-n b get k") == 2
    with pytest.raises(UsageError, match="add --yes"):
        ip.run_line_magic("cache", "clear")
    ip.run_line_magic("cache", "-n a clear")
    assert ip.run_line_magic("cache", "-n a get k") is None
    assert ip.run_line_magic("cache", "-n b get k") == 2
    assert ip.run_line_magic("cache", "get k") == 3
    ip.run_line_magic("cache", "clear --yes")
    assert ip.run_line_magic("cache", "get k") is None
    assert ip.run_line_magic("cache", "-n b get k") == 2


def test_use_configured_instance(ip: TestingShell, session: Session) -> None:
    ip.run_line_magic("cache", "use confirmation_cache")
    ip.run_line_magic("cache", "set x 5")
    assert ip.run_line_magic("cache", "-n confirmation get x") == 5
    with pytest.raises(UsageError, match="Unknown cache 'nope'"):
        ip.run_line_magic("cache", "use nope")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("set k", "Usage: %cache set"),
        ("set k not a literal", "Python literal"),
        ("set k $missing", "No variable named 'missing'"),
        ("set k 1 --ttl -3", "more than 0"),
        ("set k 1 --ttl x", "needs seconds"),
        ("get", "Usage: %cache get KEY"),
        ("get a b", "Usage: %cache get KEY"),
        ("stats now", "Usage: %cache stats"),
        ("clear --force", "clear [--yes]"),
        ("-n '' get k", "non-empty namespace"),
        ("get 'unclosed", "close the quote"),
    ],
)
def test_usage_errors(ip: TestingShell, session: Session, line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ip.run_line_magic("cache", line)


@pytest.mark.service
def test_redis_backend(ip: TestingShell, tmp_path: Path, redis_server: RedisServer) -> None:
    (tmp_path / "application-cache.yaml").write_text(
        f"cache:\n  backend: memory\n  redis:\n    url: {redis_server.url}\n"
    )
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        ip.run_line_magic("cache", "use redis")
        ip.run_line_magic("cache", "-n nbtest set shared {'v': 1}")
        assert ip.run_line_magic("cache", "-n nbtest get shared") == {"v": 1}
        assert ip.run_line_magic("cache", "-n nbtest list") == ["shared"]
        stats = ip.run_line_magic("cache", "-n nbtest stats")
        assert stats.backend == "redis"
    fresh.close()
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        assert any(b"shared" in k for k in client.keys("*"))
    finally:
        client.close()
