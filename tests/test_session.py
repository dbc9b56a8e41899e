"""Sessions own named instances and close them; the default session is swappable."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

import nbinfra
from nbinfra.errors import NbinfraError
from nbinfra.session import Session, session, set_default_session, use_session


class AsyncResource:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name
        self.loop_thread: str | None = None

    async def aclose(self) -> None:
        self.loop_thread = threading.current_thread().name
        self.log.append(f"aclose {self.name}")


class SyncResource:
    def __init__(self, log: list[str], fail: bool = False) -> None:
        self.log, self.fail = log, fail

    def close(self) -> None:
        if self.fail:
            raise RuntimeError("close failed")
        self.log.append("close sync")


def test_instances_are_created_once_and_closed_newest_first() -> None:
    log: list[str] = []
    created: list[str] = []
    s = Session()

    def make(name: str) -> AsyncResource:
        created.append(name)
        return AsyncResource(log, name)

    first = s.get("cache", "a", lambda: make("a"))
    assert s.get("cache", "a", lambda: make("again")) is first
    s.get("conn", "b", lambda: make("b"))
    s.put("llm", "c", SyncResource(log))
    assert created == ["a", "b"]
    assert s.names("cache") == ["a"] and s.peek("conn", "b") is not None
    assert "cache:a" in repr(s)
    s.close()
    assert log == ["close sync", "aclose b", "aclose a"]
    assert first.loop_thread == "nbinfra-loop"  # async resources close on the loop
    assert s.closed
    with pytest.raises(NbinfraError, match="session is closed"):
        s.get("cache", "z", lambda: make("z"))


def test_a_failing_close_is_logged_and_the_others_still_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    s = Session()
    s.put("conn", "ok", AsyncResource(log, "ok"))
    s.put("conn", "bad", SyncResource(log, fail=True))
    with caplog.at_level(logging.WARNING, logger="nbinfra"):
        s.close()
    assert log == ["aclose ok"]
    assert "closing conn 'bad' failed: close failed" in caplog.text


async def test_async_context_manager_closes() -> None:
    log: list[str] = []
    async with Session() as s:
        s.put("cache", "x", AsyncResource(log, "x"))
    assert log == ["aclose x"]


def test_default_session_is_shared_and_swappable(nbinfra_session: Session) -> None:
    assert session() is nbinfra_session  # the fixture installs a fresh one
    assert nbinfra.session() is nbinfra_session
    other = Session()
    with use_session(other):
        assert session() is other
    assert session() is nbinfra_session


def test_default_session_is_recreated_after_close() -> None:
    previous = set_default_session(None)
    try:
        first = session()
        first.close()
        second = session()
        assert second is not first and not second.closed
    finally:
        set_default_session(previous)


def test_settings_load_lazily_from_the_given_resources(tmp_path: Path) -> None:
    (tmp_path / "application-cache.yaml").write_text("cache:\n  default_ttl: 42\n")
    s = Session(resources=tmp_path)
    assert s._settings is None  # nothing read yet
    assert s.settings.get("cache.default_ttl") == 42
    assert s.settings is s.settings
