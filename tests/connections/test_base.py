"""Resilience logic of the base classes, driven by a scripted in-test backend.

The real engines run the same paths in the backend suites; here the failures are scripted
so retries, stops and timeouts can be counted exactly.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from nbinfra._secrets import Secret
from nbinfra.connections import (
    AsyncBaseConnectionManager,
    BaseConnectionManager,
    ConnectionSettings,
    QueryResult,
    RetryPolicy,
)
from nbinfra.connections.base import is_read_only_sql
from nbinfra.errors import ConfigError, ConnectionUnavailableError, QueryError
from tests.pyrun import run_python


@dataclass
class ScriptSettings(ConnectionSettings):
    url: Secret = field(default_factory=lambda: Secret(""))


class Scripted(AsyncBaseConnectionManager):
    """Fails ``open_failures`` connects, then ``query_failures`` queries, as told."""

    kind = "scripted"
    settings_class = ScriptSettings

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.opens = 0
        self.queries = 0
        self.open_failures = 0
        self.query_failures: list[BaseException] = []
        self.delay = 0.0

    async def _open(self) -> None:
        self.opens += 1
        if self.open_failures:
            self.open_failures -= 1
            raise ConnectionRefusedError(f"refused by {self.settings.url.reveal()}")

    async def _close(self) -> None:
        pass

    async def _ping(self) -> str | None:
        return "scripted 1.0"

    async def _execute(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        self.queries += 1
        await asyncio.sleep(self.delay)
        if self.query_failures:
            raise self.query_failures.pop(0)
        return QueryResult(["q"], [(query,)])


def scripted(**kw: Any) -> Scripted:
    base = {"url": "db://admin:hunter22secret@db.example:5432/x", "retry_backoff": 0.001}
    return Scripted(**{**base, **kw})


async def test_connect_retries_then_succeeds() -> None:
    mgr = scripted(retries=2)
    mgr.open_failures = 2
    await mgr.connect()
    assert mgr.opens == 3 and mgr.is_healthy()


async def test_connect_stops_after_the_configured_attempts() -> None:
    mgr = scripted(retries=1)
    mgr.open_failures = 10
    with pytest.raises(ConnectionUnavailableError) as info:
        await mgr.connect()
    assert mgr.opens == 2
    assert "hunter22secret" not in str(info.value)
    assert "db.example" in str(info.value)


async def test_idempotent_read_is_retried_after_lost_connection() -> None:
    mgr = scripted(retries=2)
    mgr.query_failures = [ConnectionResetError("reset"), ConnectionResetError("reset")]
    result = await mgr.execute_query("SELECT 1")
    assert result.scalar() == "SELECT 1"
    assert mgr.queries == 3 and mgr.opens == 3  # reconnected before each retry


async def test_write_is_not_retried() -> None:
    mgr = scripted(retries=5)
    mgr.query_failures = [ConnectionResetError("reset")]
    with pytest.raises(ConnectionUnavailableError):
        await mgr.execute_query("INSERT INTO t VALUES (1)")
    assert mgr.queries == 1
    assert not mgr.is_healthy()
    await mgr.execute_query("INSERT INTO t VALUES (1)")  # reconnects on the next call
    assert mgr.is_healthy()


async def test_query_error_is_not_retried_and_keeps_connection() -> None:
    mgr = scripted(retries=5)
    mgr.query_failures = [ValueError("syntax error at or near\nSELEC")]
    with pytest.raises(QueryError) as info:
        await mgr.execute_query("SELEC 1")
    assert str(info.value) == "scripted 'scripted' query failed: syntax error at or near"
    assert mgr.queries == 1 and mgr.opens == 1 and mgr.is_healthy()


async def test_timeout_becomes_unavailable_error() -> None:
    mgr = scripted(retries=0, timeout=0.05)
    mgr.delay = 5
    with pytest.raises(ConnectionUnavailableError, match=r"within 0\.05 s"):
        await mgr.execute_query("SELECT 1")


async def test_health_check_never_raises() -> None:
    mgr = scripted(retries=0)
    mgr.open_failures = 1
    status = await mgr.health_check()
    assert not status.ok and "hunter22secret" not in (status.error or "")
    status = await mgr.health_check()
    assert status.ok and status.server_version == "scripted 1.0"


def test_repr_masks_credentials() -> None:
    mgr = scripted()
    assert "hunter22secret" not in repr(mgr)
    assert "db.example" in repr(mgr) and "scripted" in repr(mgr)


def test_unknown_setting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting.*did you mean .timeout."):
        scripted(timout=3)


def test_retry_policy_backs_off_with_jitter_and_cap() -> None:
    policy = RetryPolicy(attempts=5, backoff=0.1, max_backoff=0.3, jitter=0.5)
    for failures, full in [(1, 0.1), (2, 0.2), (3, 0.3), (6, 0.3)]:
        delays = {policy.delay(failures) for _ in range(50)}
        assert all(full * 0.5 <= d <= full for d in delays)
        assert len(delays) > 1


@pytest.mark.parametrize(
    ("sql", "read"),
    [
        ("SELECT 1", True),
        ("  with x as (select 1) select * from x", True),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", False),
        ("SELECT * INTO t2 FROM t", False),
        ("SELECT 1; DROP TABLE t", False),
        ("INSERT INTO t VALUES (1)", False),
        ("explain select 1", True),
    ],
)
def test_read_only_classifier(sql: str, read: bool) -> None:
    assert is_read_only_sql(sql) is read


class Blocking(BaseConnectionManager):
    kind = "blocking"

    def _open_sync(self) -> None:
        self.thread = __import__("threading").current_thread().name

    def _close_sync(self) -> None:
        pass

    def _ping_sync(self) -> str | None:
        return None

    def _execute_sync(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        import threading

        return QueryResult(["thread"], [(threading.current_thread().name,)])


async def test_sync_base_runs_in_worker_thread() -> None:
    async with Blocking() as mgr:
        result = await mgr.execute_query("x")
    assert result.scalar().startswith("nbinfra-blocking")
    assert mgr.thread.startswith("nbinfra-blocking")


async def test_slow_read_is_not_retried() -> None:
    mgr = scripted(retries=3, timeout=0.05)
    mgr.delay = 1
    with pytest.raises(ConnectionUnavailableError):
        await mgr.execute_query("SELECT 1")
    assert mgr.queries == 1


async def test_missing_dependency_keeps_its_type_and_hint() -> None:
    from nbinfra.errors import MissingDependencyError

    class NoDriver(Scripted):
        async def _open(self) -> None:
            raise MissingDependencyError("needs foo: pip install foo", hint="pip install foo")

    with pytest.raises(MissingDependencyError, match="pip install foo"):
        await NoDriver(url="x://y").connect()


def test_a_blocking_backend_still_closes_at_interpreter_exit(tmp_path: Any) -> None:
    """nbinfra's exit-time closers run after the worker threads stop taking work; the
    close of a thread-backed manager then runs right there instead of being lost."""
    code = """
from typing import Any
from nbinfra import _loop
from nbinfra.connections.base import BaseConnectionManager
from nbinfra.connections.types import QueryResult

class Blocking(BaseConnectionManager):
    kind = "blocking"

    def _open_sync(self) -> None:
        pass

    def _close_sync(self) -> None:
        print("closed", flush=True)

    def _ping_sync(self) -> str | None:
        return "ok"

    def _execute_sync(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        return QueryResult(["x"], [(1,)])

manager = Blocking()
_loop.run_sync(manager.execute_query("q"))
_loop.on_shutdown(manager.aclose)
"""
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["closed"], done.stderr
    assert "cannot schedule new futures" not in done.stderr
