"""In-process engines run on the caller's thread: the loop policy's third rule.

Async resources live on nbinfra's loop and are awaited from other loops through
``nbinfra._loop.run_async``. An in-process engine (Qdrant local mode, Chroma, DuckDB) has
no socket to wait on: hopping onto the loop's thread only costs (for Qdrant local, the
thread's own malloc arena made searches 20-50% slower than on the main thread). So the
synchronous facade runs an open in-process manager's coroutine right here, without any
event loop: ``run_here`` drives it, and ``ConnectionManager._call`` skips what needs a
loop (the time limit: an in-process call cannot be interrupted by one anyway).

A call that needs the loop after all (it suspends, or the engine reports the connection
lost and must be reopened and retried) raises ``NeedsLoop`` before anything is retried;
the facade then runs it again on nbinfra's loop, the normal path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Coroutine
from contextvars import ContextVar
from typing import Any, TypeVar

__all__ = ["NeedsLoop", "driven", "run_here"]

T = TypeVar("T")

_DRIVEN: ContextVar[bool] = ContextVar("nbinfra_driven_here", default=False)


class NeedsLoop(Exception):
    """The call cannot finish on the caller's thread: run it on nbinfra's loop."""


def driven() -> bool:
    """True inside ``run_here``: nothing may await anything that suspends."""
    return _DRIVEN.get()


def run_here(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end on this thread, with no event loop.

    Raises ``NeedsLoop`` when it suspends (it is closed first) or asks for the loop.
    """
    token = _DRIVEN.set(True)
    try:
        try:
            coro.send(None)
        except StopIteration as done:
            value: T = done.value
            return value
        with contextlib.suppress(RuntimeError):  # it awaited again while closing
            coro.close()
        raise NeedsLoop("the call suspended")
    finally:
        _DRIVEN.reset(token)
