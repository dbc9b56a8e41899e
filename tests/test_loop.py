"""The background loop behind the synchronous facade."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nbinfra import _loop
from nbinfra.errors import LoopError

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_run_sync_returns_results_on_the_loop_thread() -> None:
    async def where() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    assert _loop.run_sync(where()) == "nbinfra-loop"
    assert threading.current_thread().name != "nbinfra-loop"


def test_exceptions_propagate_with_their_type() -> None:
    async def boom() -> None:
        raise ValueError("bad value")

    with pytest.raises(ValueError, match="bad value"):
        _loop.run_sync(boom())


def test_async_generator_is_pulled_one_item_at_a_time() -> None:
    produced: list[int] = []
    closed = threading.Event()

    async def numbers() -> AsyncIterator[int]:
        try:
            for i in range(100):
                produced.append(i)
                yield i
        finally:
            closed.set()

    it = _loop.iterate_sync(numbers())
    assert next(it) == 0 and produced == [0]
    assert next(it) == 1 and produced == [0, 1]  # nothing produced ahead of the consumer
    it.close()  # stopping early closes the generator on the loop
    assert closed.wait(5)
    assert produced == [0, 1]
    assert list(_loop.iterate_sync(numbers())) == list(range(100))


def test_calling_from_its_own_loop_raises_instead_of_deadlocking() -> None:
    async def inner() -> int:
        return 1

    async def outer() -> int:
        return _loop.run_sync(inner())

    with pytest.raises(LoopError, match="use the async API"):
        _loop.run_sync(outer())


def test_timeout_cancels_the_coroutine() -> None:
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError, match=r"within 0\.2 s"):
        _loop.run_sync(slow(), timeout=0.2)
    assert cancelled.wait(5)


def test_a_real_keyboard_interrupt_cancels_the_coroutine_and_the_loop_survives() -> None:
    assert threading.current_thread() is threading.main_thread()
    started = threading.Event()
    cleaned_up = threading.Event()

    async def long_running() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.05)  # async cleanup still runs on the loop
            cleaned_up.set()

    def interrupt() -> None:
        started.wait(10)
        time.sleep(0.2)  # the user presses Interrupt while the cell waits
        os.kill(os.getpid(), signal.SIGINT)  # what Jupyter's Interrupt sends

    sender = threading.Thread(target=interrupt)
    sender.start()
    with pytest.raises(KeyboardInterrupt):
        _loop.run_sync(long_running())
    sender.join()
    assert cleaned_up.is_set()  # cancelled, and we waited for its cleanup

    async def answer() -> int:
        return 42

    assert _loop.run_sync(answer()) == 42


def test_an_interrupt_before_the_coroutine_is_scheduled_closes_it_unstarted() -> None:
    ran = threading.Event()

    async def never() -> None:
        ran.set()

    call = _loop._Call(never())
    call._cancel()  # what an interrupt does before call_soon_threadsafe went through
    assert call._finished and not ran.is_set()
    assert _loop.run_sync(asyncio.sleep(0, result=7)) == 7


def test_cancelled_and_base_exceptions_reach_the_caller_and_the_loop_survives() -> None:
    import concurrent.futures

    async def cancelled() -> None:
        raise asyncio.CancelledError

    async def exits() -> None:
        raise SystemExit(3)

    with pytest.raises(concurrent.futures.CancelledError):
        _loop.run_sync(cancelled())
    with pytest.raises(SystemExit):
        _loop.run_sync(exits())
    assert _loop.run_sync(asyncio.sleep(0, result="alive"), timeout=5) == "alive"


def test_run_async_awaits_on_the_background_loop_from_another_loop() -> None:
    async def where() -> str:
        return threading.current_thread().name

    async def main() -> str:
        return await _loop.run_async(where())

    assert asyncio.run(main()) == "nbinfra-loop"


def test_a_forked_child_gets_its_own_working_loop() -> None:
    result = run_python(
        """
        import asyncio, os, threading
        from nbinfra import _loop
        async def name():
            return threading.current_thread().name, os.getpid()
        parent = _loop.run_sync(name())
        pid = os.fork()
        if pid == 0:
            child = _loop.run_sync(name(), timeout=10)
            os._exit(0 if child[1] == os.getpid() and child[0] == "nbinfra-loop" else 3)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status), "parent", parent[1] == os.getpid())
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["child", "0", "parent", "True"]


def test_exit_runs_closers_and_does_not_hang(tmp_path: Path) -> None:
    marker = tmp_path / "closed.txt"
    result = run_python(
        f"""
        import asyncio, threading
        from nbinfra import _loop
        async def closer():
            await asyncio.sleep(0.01)
            with open({str(marker)!r}, "w") as fh:
                fh.write("closed on " + threading.current_thread().name)
        _loop.on_shutdown(closer)
        async def forever():
            while True:
                yield 1
                await asyncio.sleep(0.01)
        it = _loop.iterate_sync(forever())
        next(it)  # an open async generator at exit
        print(_loop.run_sync(asyncio.sleep(0, result="ok")))
        """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert marker.read_text() == "closed on nbinfra-loop"


# -- iterate_async: a stream on nbinfra's loop, consumed on another loop ---------------
async def test_iterate_async_runs_the_stream_on_the_loop_in_order() -> None:
    import threading

    from nbinfra import _loop as loop_module

    threads: set[str] = set()

    async def numbers() -> Any:
        for i in range(500):
            threads.add(threading.current_thread().name)
            yield i

    got = [i async for i in loop_module.iterate_async(numbers())]
    assert got == list(range(500)) and threads == {"nbinfra-loop"}


async def test_iterate_async_raises_the_streams_error_after_its_items() -> None:
    from nbinfra import _loop as loop_module

    async def failing() -> Any:
        yield 1
        yield 2
        raise ValueError("broken stream")

    got: list[int] = []
    with pytest.raises(ValueError, match="broken stream"):
        async for i in loop_module.iterate_async(failing()):
            got.append(i)
    assert got == [1, 2]


async def test_leaving_early_or_cancelling_closes_the_stream_on_the_loop() -> None:
    import asyncio

    from nbinfra import _loop as loop_module

    closed: list[str] = []

    async def endless(tag: str) -> Any:
        try:
            i = 0
            while True:
                yield i
                i += 1
                await asyncio.sleep(0.001)
        finally:
            closed.append(tag)

    stream = loop_module.iterate_async(endless("break"))
    async for i in stream:
        if i == 3:
            break
    await stream.aclose()
    assert closed == ["break"]  # closed now, not at garbage collection

    async def consume() -> None:
        async for _ in loop_module.iterate_async(endless("cancel")):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed == ["break", "cancel"]
