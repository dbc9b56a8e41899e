"""``within(awaitable, seconds)``: await under a time limit, cheaply.

Every network call of nbinfra runs under a time limit, so the limit's own cost is paid
per query, per search, per LLM call. ``asyncio.wait_for`` wraps its awaitable in a new
task on Python 3.11; ``asyncio.timeout`` schedules a timer per call whose cancelled
handles then pile up in the loop's heap until the loop rebuilds it (about 5 us a call
here). ``within`` keeps the open deadlines of each event loop in a set served by one
timer set for the earliest of them: entering is a set insert (plus a timer only when the
new deadline is the earliest), leaving is a set removal. At the deadline the task is
cancelled and ``TimeoutError`` raised, with ``asyncio.timeout``'s rules for telling our
cancellation from someone else's (``Task.cancelling``/``uncancel``).
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
import weakref
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["within"]

T = TypeVar("T")

# The loop runs a timer once its time is within this of the deadline (asyncio's rule).
_RESOLUTION = time.get_clock_info("monotonic").resolution


class _Deadline:
    """One open ``within`` block."""

    __slots__ = ("cancelling", "expired", "task", "when")

    def __init__(self, task: asyncio.Task[object], when: float) -> None:
        self.task = task
        self.when = when
        self.cancelling = task.cancelling()
        self.expired = False


class _Deadlines:
    """The open deadlines of one event loop and the one timer that serves them."""

    __slots__ = ("__weakref__", "loop", "open", "timer", "timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.open: set[_Deadline] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = math.inf

    def add(self, deadline: _Deadline) -> None:
        self.open.add(deadline)
        if deadline.when < self.timer_at:
            self._schedule(deadline.when)

    def _schedule(self, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = when
        self.timer = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self.timer, self.timer_at = None, math.inf
        now = self.loop.time() + _RESOLUTION
        due = [d for d in self.open if d.when <= now]
        for deadline in due:
            self.open.discard(deadline)
            deadline.expired = True
            deadline.task.cancel()
        if self.open:
            self._schedule(min(d.when for d in self.open))


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deadlines] = (
    weakref.WeakKeyDictionary()
)
_last: _Deadlines | None = None  # the loop of the previous call: usually this one again


def _deadlines(loop: asyncio.AbstractEventLoop) -> _Deadlines:
    global _last
    found = _last
    if found is None or found.loop is not loop:
        found = _by_loop.get(loop)
        if found is None:
            found = _by_loop[loop] = _Deadlines(loop)
        _last = found
    return found


if sys.version_info >= (3, 11):

    async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
        """``await awaitable``, raising ``TimeoutError`` after ``seconds`` (None: no limit)."""
        if seconds is None:
            return await awaitable
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()  # never awaited: no "was never awaited" warning later
            raise RuntimeError("within() must run inside an asyncio task.")
        deadline = _Deadline(task, loop.time() + seconds)
        deadlines = _deadlines(loop)
        deadlines.add(deadline)
        try:
            result = await awaitable
        except BaseException as exc:
            if not deadline.expired:
                deadlines.open.discard(deadline)
            elif task.uncancel() <= deadline.cancelling and isinstance(exc, asyncio.CancelledError):
                # Our cancellation, and no other request since: the time ran out.
                raise TimeoutError from exc
            raise
        if deadline.expired:
            task.uncancel()  # it finished anyway; the request we made is withdrawn
        else:
            deadlines.open.discard(deadline)
        return result

else:  # pragma: no cover - Python 3.10

    async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
        """``await awaitable``, raising ``TimeoutError`` after ``seconds`` (None: no limit)."""
        return await asyncio.wait_for(awaitable, seconds)
