"""Redis manager against a real redis-server (the ``redis_server`` fixtures)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from nbinfra.connections.redis import RedisConnectionManager, parse_commands, reply_table
from nbinfra.errors import ConnectionUnavailableError, ConnError, QueryError
from nbinfra.testing import RedisServer, free_port
from nbinfra.testing.connection_contract import ConnectionContract

PASSWORD = "redis-sentinel-PASS-e3a9"


def redis_mgr(server: RedisServer, **kw: Any) -> RedisConnectionManager:
    return RedisConnectionManager({"url": server.url, "retry_backoff": 0.01, **kw})


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}:"


class TestRedisContract(ConnectionContract):
    query = "ECHO hello"
    bad_query = "NOSUCHCOMMAND x"

    @pytest.fixture
    def manager(self, redis_server: RedisServer) -> RedisConnectionManager:
        return redis_mgr(redis_server)

    @pytest.fixture
    def unreachable(self) -> RedisConnectionManager:
        return RedisConnectionManager(
            url=f"redis://127.0.0.1:{free_port()}/0", connect_timeout=1.0, retries=0
        )

    async def sever(self, manager: Any) -> None:
        # Kill every normal client connection from another client, behind the manager's back.
        import redis.asyncio as aioredis

        killer = aioredis.Redis.from_url(manager.settings.url)
        try:
            await killer.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        finally:
            await killer.aclose()


class TestRedisContractWithPassword(TestRedisContract):
    """The same contract on a server that requires a password (a sentinel secret)."""

    secret = PASSWORD

    @pytest.fixture
    def manager(self, redis_server_factory: Callable[[], RedisServer]) -> RedisConnectionManager:
        server = redis_server_factory()
        _require_password(server)
        return redis_mgr(server, password=PASSWORD)

    async def sever(self, manager: Any) -> None:
        import redis.asyncio as aioredis

        killer = aioredis.Redis.from_url(manager.settings.url, password=PASSWORD)
        try:
            await killer.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        finally:
            await killer.aclose()


def _require_password(server: RedisServer) -> None:
    import redis

    with redis.Redis.from_url(server.url) as plain:
        plain.config_set("requirepass", PASSWORD)


async def test_commands_and_typed_reads(redis_server: RedisServer, prefix: str) -> None:
    async with redis_mgr(redis_server) as r:
        await r.command("SET", f"{prefix}s", "hello world")
        await r.execute_query(f'HSET {prefix}h name "Ada Lovelace" born 1815')
        await r.command("RPUSH", f"{prefix}l", "a", "b", "a")
        await r.command("SADD", f"{prefix}set", "x", "y")
        await r.command("ZADD", f"{prefix}z", 2, "two", 1, "one")
        await r.command("XADD", f"{prefix}st", "1-1", "event", "login")
        assert await r.read(f"{prefix}s") == "hello world"
        assert await r.read(f"{prefix}h") == {"name": "Ada Lovelace", "born": "1815"}
        assert await r.read(f"{prefix}l") == ["a", "b", "a"]
        assert await r.read(f"{prefix}set") == {"x", "y"}
        assert await r.read(f"{prefix}z") == [("one", 1.0), ("two", 2.0)]
        assert await r.read(f"{prefix}st") == [("1-1", {"event": "login"})]
        assert await r.read(f"{prefix}missing") is None
        assert await r.key_type(f"{prefix}z") == "zset"


async def test_execute_query_shapes(redis_server: RedisServer, prefix: str) -> None:
    async with redis_mgr(redis_server) as r:
        await r.execute_query(f"HSET {prefix}h a 1 b 2")
        await r.execute_query(f"RPUSH {prefix}l x y z")
        hash_table = await r.execute_query(f"HGETALL {prefix}h")
        list_table = await r.execute_query(f"LRANGE {prefix}l 0 -1", limit=2)
        scalar = await r.execute_query(f"GET {prefix}nothing")
    assert hash_table.columns == ["field", "value"]
    assert sorted(hash_table.rows) == [("a", "1"), ("b", "2")]
    assert hash_table.df().shape == (2, 2)
    assert list_table.rows == [("x",), ("y",)] and list_table.truncated
    assert scalar.columns == ["value"] and scalar.rows == [(None,)]


async def test_multiline_query_is_one_pipeline(redis_server: RedisServer, prefix: str) -> None:
    async with redis_mgr(redis_server) as r:
        result = await r.execute_query(f"SET {prefix}n 10\nINCRBY {prefix}n 5\nGET {prefix}n")
        assert result.columns == ["command", "result"]
        assert [row[1] for row in result] == [True, 15, "15"]
        replies = await r.pipeline([("INCR", f"{prefix}c"), f"INCR {prefix}c", f"GET {prefix}c"])
        assert replies == [1, 2, "2"]


async def test_failed_pipeline_command_raises_query_error(
    redis_server: RedisServer, prefix: str
) -> None:
    async with redis_mgr(redis_server) as r:
        await r.command("SET", f"{prefix}s", "text")
        with pytest.raises(QueryError, match="WRONGTYPE"):
            await r.pipeline([f"SET {prefix}ok 1", f"LPUSH {prefix}s x"])
        # Redis transactions do not roll back: the first command ran, and the
        # connection stays usable.
        assert await r.command("GET", f"{prefix}ok") == "1"
        assert r.is_healthy()


async def test_scan_by_pattern_type_and_limit(redis_server: RedisServer, prefix: str) -> None:
    async with redis_mgr(redis_server, scan_count=3) as r:
        for n in range(12):
            await r.command("SET", f"{prefix}k{n}", n)
        await r.command("HSET", f"{prefix}hash", "f", "v")
        keys = await r.scan(f"{prefix}*")
        hashes = await r.scan(f"{prefix}*", type="hash")
        few = await r.scan(f"{prefix}k*", limit=5)
    assert sorted(keys) == sorted([f"{prefix}k{n}" for n in range(12)] + [f"{prefix}hash"])
    assert hashes == [f"{prefix}hash"]
    assert len(few) == 5 and all(k.startswith(f"{prefix}k") for k in few)


async def test_health_reports_server_version(redis_server: RedisServer) -> None:
    async with redis_mgr(redis_server) as r:
        status = await r.health_check()
        info = await r.info("server")
    assert status.ok and status.server_version == f"Redis {info['redis_version']}"


async def test_killed_server_then_restarted(
    redis_server_factory: Callable[[], RedisServer], prefix: str
) -> None:
    server = redis_server_factory()
    async with redis_mgr(server, connect_timeout=1.0, retries=1) as r:
        await r.command("SET", f"{prefix}k", "v")
        server.kill()
        with pytest.raises(ConnectionUnavailableError, match="Cannot reach Redis"):
            await r.command("GET", f"{prefix}k")
        assert not r.is_healthy()
        status = await r.health_check()
        assert not status.ok
        server.start()
        # Data is gone (no persistence), but the connection comes back on the next call.
        assert await r.command("GET", f"{prefix}k") is None
        assert r.is_healthy()


class _ReplyDropper:
    """A TCP relay in front of redis-server that, once armed, lets the next command reach the
    server and then closes the client's connection instead of relaying the reply: a
    connection lost while a write is in flight, at a known point."""

    def __init__(self, server: RedisServer) -> None:
        self.target = (server.host, server.port)
        self.armed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        try:
            while data := src.recv(65536):
                if replies and self.armed.is_set():
                    self.armed.clear()
                    break  # the server has applied the command; its reply never arrives
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


async def test_writes_are_not_retried_after_a_lost_connection(
    redis_server: RedisServer, prefix: str
) -> None:
    relay = _ReplyDropper(redis_server)
    try:
        r = RedisConnectionManager(
            {"url": f"redis://127.0.0.1:{relay.port}/0", "retry_backoff": 0.01, "retries": 3}
        )
        async with r:
            assert await r.command("PING") is True
            relay.armed.set()
            with pytest.raises(ConnectionUnavailableError, match="Cannot reach Redis"):
                await r.command("INCR", f"{prefix}counter")
            # The server applied the write once; it was not sent again on a new connection.
            assert await r.command("GET", f"{prefix}counter") == "1"
            # A read that loses its reply is retried on a new connection instead.
            relay.armed.set()
            assert await r.command("GET", f"{prefix}counter") == "1"
            assert await r.command("INCR", f"{prefix}counter") == 2
    finally:
        relay.close()


async def test_wrong_password_is_a_clear_error(
    redis_server_factory: Callable[[], RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = redis_server_factory()
    _require_password(server)
    wrong = "redis-wrong-PASS-77c1"
    mgr = RedisConnectionManager(
        host=server.host, port=server.port, password=wrong, retries=2, retry_backoff=0.01
    )
    with caplog.at_level(logging.DEBUG, logger="nbinfra"), pytest.raises(ConnError) as info:
        await mgr.connect()
    assert not isinstance(info.value, ConnectionUnavailableError)
    assert "refused the credentials" in str(info.value)
    assert mgr.target == f"redis://127.0.0.1:{server.port}/0"
    for text in (str(info.value), caplog.text, repr(mgr)):
        assert wrong not in text and PASSWORD not in text


def test_parse_commands_uses_shell_quoting() -> None:
    assert parse_commands('SET k "a b c"') == [["SET", "k", "a b c"]]
    assert parse_commands("SET a 1\n\nGET a") == [["SET", "a", "1"], ["GET", "a"]]
    assert parse_commands(["GET", "k"]) == [["GET", "k"]]
    assert parse_commands([("GET", "a"), ("GET", "b")]) == [["GET", "a"], ["GET", "b"]]
    with pytest.raises(QueryError, match="Cannot parse"):
        parse_commands('SET k "unterminated')
    with pytest.raises(QueryError):
        parse_commands("   ")


def test_reply_table_shapes() -> None:
    assert reply_table({"a": b"1"}).rows == [("a", "1")]
    assert reply_table([("m", 1.0), ("n", 2.0)]).columns == ["value_1", "value_2"]
    assert reply_table({"b", "a"}).rows == [("a",), ("b",)]
    assert reply_table(7).rows == [(7,)]
