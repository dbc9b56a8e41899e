"""Qdrant local mode and Chroma on disk open off the event loop; their calls stay inline.

Opening takes seconds (importing the engine, building the client, loading the folder);
here the engine's client constructor is made slow on purpose so the test is deterministic.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nbinfra.connections.chromadb import ChromaConnectionManager
from nbinfra.connections.qdrant import QdrantConnectionManager
from nbinfra.connections.vector_local import LocalEngineVectorStore
from nbinfra.errors import ConnectionUnavailableError
from tests.pyrun import run_python

SLOW_OPEN = 0.6  # seconds the patched constructor sleeps


def slow_constructor(
    monkeypatch: pytest.MonkeyPatch, kind: str, delay: list[float], threads: list[int]
) -> None:
    """Patch the engine's client constructor to sleep ``delay[0]`` s and record its thread."""
    module: Any
    if kind == "qdrant":
        import qdrant_client as module

        attribute = "QdrantClient"
    else:
        import chromadb as module

        attribute = "PersistentClient"
    original: Callable[..., Any] = getattr(module, attribute)

    def slow(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        time.sleep(delay[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(module, attribute, slow)


def local_manager(kind: str, folder: Path, **options: Any) -> LocalEngineVectorStore:
    if kind == "qdrant":
        return QdrantConnectionManager(path=str(folder / "qdrant"), **options)
    return ChromaConnectionManager(path=str(folder / "chroma"), **options)


def record_call_threads(
    monkeypatch: pytest.MonkeyPatch, manager: LocalEngineVectorStore
) -> list[int]:
    """Threads on which the manager reaches its client (every hook goes through _require)."""
    seen: list[int] = []
    original = manager._require

    def require() -> Any:
        seen.append(threading.get_ident())
        return original()

    monkeypatch.setattr(manager, "_require", require)
    return seen


@pytest.mark.parametrize("kind", ["qdrant", "chromadb"])
async def test_open_runs_off_the_loop_and_calls_stay_inline(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened_on: list[int] = []
    slow_constructor(monkeypatch, kind, [SLOW_OPEN], opened_on)
    manager = local_manager(kind, tmp_path)
    loop_thread = threading.get_ident()
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.01)
            ticks.append(time.perf_counter())

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    started = time.perf_counter()
    try:
        await manager.connect()
    finally:
        took = time.perf_counter() - started
        task.cancel()
    assert took >= SLOW_OPEN
    assert opened_on and loop_thread not in opened_on  # built in the worker thread
    during = [t for t in ticks if started <= t <= started + took]
    # A blocked loop ticks at most once while the constructor sleeps; a free one ~60 times.
    assert len(during) >= 10, f"the loop ticked {len(during)} times in {took:.2f} s"

    called_on = record_call_threads(monkeypatch, manager)
    try:
        await manager.add_texts("fruit", ["red apples", "green pears"])
        hits = await manager.search_text("fruit", "green pears", top_k=1)
        assert hits[0].payload == {"text": "green pears"}
        assert (await manager.health_check()).ok
    finally:
        await manager.disconnect()
    assert called_on and set(called_on) == {loop_thread}  # per-call path: inline, unchanged


@pytest.mark.parametrize("wait", [False, True], ids=["reconnect_at_once", "after_the_open"])
@pytest.mark.parametrize("kind", ["qdrant", "chromadb"])
async def test_open_that_times_out_leaves_no_client_behind(
    kind: str, wait: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    delay = [SLOW_OPEN]
    slow_constructor(monkeypatch, kind, delay, [])
    manager = local_manager(kind, tmp_path, connect_timeout=0.1, retries=0)
    with pytest.raises(ConnectionUnavailableError, match=r"did not finish within 0\.1 s"):
        await manager.connect()
    # The open goes on in the worker thread. Its client is closed once it is built, and a
    # connect meanwhile queues behind both instead of opening the folder beside them
    # (Qdrant refuses a folder another client holds).
    if wait:
        await asyncio.sleep(SLOW_OPEN)
    delay[0] = 0.0
    manager.settings.connect_timeout = 10.0
    await manager.connect()
    await manager.add_texts("fruit", ["red apples"])
    await manager.disconnect()
    # Every client was closed: a fresh manager can take the folder and read the data.
    again = local_manager(kind, tmp_path)
    async with again:
        assert await again.count("fruit") == 1


async def test_a_cancelled_connect_does_not_leak_its_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    delay = [SLOW_OPEN]
    slow_constructor(monkeypatch, "qdrant", delay, [])
    manager = local_manager("qdrant", tmp_path)
    # As %conn list does: its own deadline cancels a health check that is still connecting.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(manager.health_check(), 0.1)
    await asyncio.sleep(SLOW_OPEN)  # that open finishes in the worker and keeps its client
    delay[0] = 0.0
    status = await manager.health_check()  # reopens: closes the left-over client first
    assert status.ok, status.error
    await manager.disconnect()


def test_a_local_engine_still_closes_at_interpreter_exit(tmp_path: Path) -> None:
    # By then the worker threads take no more work: the close runs on the loop instead.
    code = f"""
from nbinfra import _loop
from nbinfra.connections import SyncConnection
from nbinfra.connections.qdrant import QdrantConnectionManager

manager = QdrantConnectionManager(path={str(tmp_path / "qdrant")!r})
SyncConnection(manager).add_texts("fruit", ["red apples"])
close = manager._close_sync

def closing() -> None:
    close()
    print("closed", flush=True)

manager._close_sync = closing
_loop.on_shutdown(manager.aclose)
"""
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["closed"], done.stderr


@pytest.mark.parametrize("kind", ["qdrant", "chromadb"])
def test_the_facade_runs_an_open_engine_on_the_callers_thread(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbinfra import _loop
    from nbinfra.connections import SyncConnection

    manager = local_manager(kind, tmp_path)
    store = SyncConnection(manager)
    store.add_texts("fruit", ["red apples", "green pears"])  # opens it on nbinfra's loop
    assert manager.runs_here
    called_on: list[int] = []
    to_thread = manager.to_thread

    async def recorded(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        called_on.append(threading.get_ident())  # every engine call of a hook comes here
        return await to_thread(fn, *args, **kwargs)

    monkeypatch.setattr(manager, "to_thread", recorded)
    hits = store.search_text("fruit", "green pears", top_k=1)
    assert hits[0].payload == {"text": "green pears"}
    assert store.count("fruit") == 2
    assert store.query("red apples", {"collection": "fruit", "top_k": 1}).rows[0][2] == (
        "red apples"
    )
    here = threading.get_ident()
    assert called_on and set(called_on) == {here}, "every call on the caller's thread"
    assert _loop.get_loop()._thread_id != here  # type: ignore[attr-defined]
    store.close()
    assert not manager.runs_here


def test_a_lost_engine_is_reopened_on_the_loop_and_the_call_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbinfra.connections import SyncConnection

    manager = local_manager("qdrant", tmp_path, retry_backoff=0.01)
    store = SyncConnection(manager)
    store.add_texts("fruit", ["red apples"])
    calls: list[int] = []
    original = manager._require

    def lost_once() -> Any:
        calls.append(threading.get_ident())
        if len(calls) == 1:
            raise ConnectionResetError("engine gone")
        return original()

    monkeypatch.setattr(manager, "_require", lost_once)
    assert store.count("fruit") == 1  # failed here, repeated through nbinfra's loop
    assert calls[0] == threading.get_ident() and len(calls) >= 2
    store.close()


def test_a_query_error_on_the_callers_thread_is_translated_not_retried(tmp_path: Path) -> None:
    from nbinfra.connections import SyncConnection
    from nbinfra.errors import QueryError

    store = SyncConnection(local_manager("qdrant", tmp_path))
    store.add_texts("fruit", ["red apples"])
    with pytest.raises(QueryError, match="nope"):
        store.count("nope")
    store.close()
