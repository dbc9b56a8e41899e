"""Blocking engine calls that a notebook's Interrupt stops.

An in-process engine (DuckDB) runs a query inside C code that does not look at Python's
signals, so a ``KeyboardInterrupt`` on the thread running it waits for the query to end.
``call_interruptibly`` runs the call on a worker thread instead; the calling (main)
thread waits in short slices, feeding a ``Progress`` display meanwhile, and on an
interrupt asks the engine to stop (``interrupt()``), waits briefly for it to do so and
raises ``Interrupted``. Off the main thread no interrupt can arrive: the call runs in
place, with no thread hop.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from nbinfra.errors import Interrupted
from nbinfra.progress import Progress

__all__ = ["GRACE", "SLICE", "call_interruptibly"]

T = TypeVar("T")

SLICE = 0.05  # seconds between checks while waiting (progress polls, deadline)
GRACE = 5.0  # seconds given to the engine to stop after interrupt()


def call_interruptibly(
    executor: concurrent.futures.Executor,
    fn: Callable[[], T],
    *,
    interrupt: Callable[[], None],
    cancelled: str,
    progress: Progress | None = None,
    poll: Callable[[], float | None] | None = None,
    timeout: float | None = None,
) -> T:
    """``fn()`` on ``executor``; an interrupt calls ``interrupt()`` and raises ``Interrupted``.

    ``cancelled`` is the one line shown for the interrupt. ``poll()`` reads the engine's
    progress (a percentage, or None/negative when unknown) for ``progress``. After
    ``timeout`` seconds the engine is interrupted too and ``TimeoutError`` is raised.
    """
    if threading.current_thread() is not threading.main_thread():
        return fn()
    future = executor.submit(fn)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            done, _ = concurrent.futures.wait((future,), SLICE)
            if done:
                return future.result()
            if progress is not None:
                progress.update(poll() if poll is not None else None)
            if deadline is not None and time.monotonic() >= deadline:
                _stop(future, interrupt)
                raise TimeoutError(f"operation did not finish within {timeout} s")
    except KeyboardInterrupt:
        _stop(future, interrupt)
        raise Interrupted(cancelled) from None
    finally:
        if progress is not None:
            progress.close()


def _stop(future: concurrent.futures.Future[T], interrupt: Callable[[], None]) -> None:
    """Ask the engine to stop, and wait a moment so the connection is free again."""
    if future.cancel():  # had not started: nothing runs
        return
    end = time.monotonic() + GRACE
    # Again until it stops: an interrupt that lands before the engine began is lost.
    while not future.done() and time.monotonic() < end:
        interrupt()
        concurrent.futures.wait((future,), SLICE)
    if future.done() and not future.cancelled():
        future.exception()  # retrieved: the engine's "interrupted" error is expected
