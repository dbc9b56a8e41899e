"""The background event loop behind every synchronous call.

One private daemon thread runs an asyncio loop; ``run_sync`` submits a coroutine to it
and waits in short slices, so a notebook's Interrupt (a ``KeyboardInterrupt`` in the
waiting thread) is seen promptly; the coroutine is then cancelled and the loop stays
usable. Async resources (pools, clients) are created and used on this loop only;
``run_async`` lets code running on another loop (a notebook's top-level ``await``) use
them too. After ``fork`` the child starts its own loop on first use; at interpreter exit
registered closers run on the loop, then it stops.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, Generic, TypeVar

from nbinfra.errors import LoopError
from nbinfra.logs import get_logger

__all__ = [
    "get_loop",
    "in_loop_thread",
    "iterate_async",
    "iterate_sync",
    "on_shutdown",
    "run_async",
    "run_sync",
    "shutdown",
]

T = TypeVar("T")
log = get_logger(__name__)

_WAIT_SLICE = 0.1  # seconds between checks for an interrupt while waiting
_CANCEL_GRACE = 5.0  # seconds to wait for a cancelled coroutine to finish cleaning up


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pid = os.getpid()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="nbinfra-loop", daemon=True)
        self.thread.start()
        self.ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self.ready.set)
        try:
            self.loop.run_forever()
        finally:
            try:
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()

    def stop(self, timeout: float) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)


_lock = threading.Lock()
_current: _LoopThread | None = None
_closers: list[Callable[[], Awaitable[None]]] = []
_stopped = False  # set at interpreter exit: no new loop may start after shutdown


def get_loop() -> asyncio.AbstractEventLoop:
    """The background loop, started on first use (and again in a forked child)."""
    global _current
    current = _current
    if current is not None and current.pid == os.getpid() and current.thread.is_alive():
        return current.loop
    if _stopped:
        raise LoopError("nbinfra's event loop has shut down (the interpreter is exiting).")
    with _lock:
        current = _current
        if current is None or current.pid != os.getpid() or not current.thread.is_alive():
            _current = current = _LoopThread()
        return current.loop


def in_loop_thread() -> bool:
    """True when called from the background loop's own thread."""
    current = _current
    return current is not None and threading.current_thread() is current.thread


def run_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the background loop and return its result.

    Raises ``LoopError`` when called from the loop itself (it would deadlock); an
    interrupt while waiting cancels the coroutine and re-raises ``KeyboardInterrupt``;
    ``timeout`` cancels it and raises ``TimeoutError``.
    """
    return _Call(coro).wait(timeout)


class _Call(Generic[T]):
    """One awaitable run on the background loop for a waiting thread.

    Cheaper than ``run_coroutine_threadsafe`` + ``Future.result``: the task settles the
    call itself (no done-callback pass through the loop, no future chaining) and the
    caller blocks on a bare lock instead of a condition. The task is kept so that an
    interrupt or timeout can cancel it and wait for its cleanup.
    """

    __slots__ = ("_abandoned", "_aw", "_done", "_error", "_finished", "_loop", "_task", "_value")

    def __init__(self, aw: Awaitable[T]) -> None:
        if in_loop_thread():
            close = getattr(aw, "close", None)
            if close is not None:
                close()
            raise LoopError(
                "The synchronous nbinfra API was called from nbinfra's own event loop; "
                "use the async API (await ...) there instead."
            )
        self._aw = aw
        self._loop = get_loop()
        self._done = threading.Lock()
        self._done.acquire()
        self._task: asyncio.Task[None] | None = None
        self._abandoned = False
        self._finished = False
        self._value: T | None = None
        self._error: BaseException | None = None

    def wait(self, timeout: float | None) -> T:
        deadline = None if timeout is None else _now() + timeout
        acquire = self._done.acquire
        try:
            # Inside the try: the loop may start the coroutine (and an interrupt arrive)
            # before this call returns.
            self._loop.call_soon_threadsafe(self._start)
            while True:
                slice_ = _WAIT_SLICE
                if deadline is not None:
                    slice_ = max(0.0, min(_WAIT_SLICE, deadline - _now()))
                # Short slices: an interrupt is seen promptly on every platform.
                if acquire(True, slice_):
                    break
                if deadline is not None and _now() >= deadline:
                    self._cancel()
                    raise TimeoutError(f"operation did not finish within {timeout} s") from None
        except KeyboardInterrupt:
            self._cancel()
            raise
        error = self._error
        if error is None:
            return self._value  # type: ignore[return-value]  # set by _run
        self._error = None  # no reference cycle through the traceback
        if isinstance(error, asyncio.CancelledError):
            raise concurrent.futures.CancelledError() from error
        raise error

    def _start(self) -> None:  # on the loop
        if self._abandoned:  # interrupted before it started: never run it
            self._close_unstarted()
            return
        self._task = self._loop.create_task(self._run())

    def _close_unstarted(self) -> None:
        close = getattr(self._aw, "close", None)
        if close is not None:
            close()
        self._finished = True
        self._done.release()

    async def _run(self) -> None:
        try:
            self._value = await self._aw
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            self._error = exc
        finally:
            self._finished = True
            self._done.release()

    def _abandon(self) -> None:  # on the loop, after _start if that was queued
        if self._task is not None:
            self._task.cancel()
        elif not self._finished:  # interrupted before _start was even queued
            self._close_unstarted()

    def _cancel(self) -> None:
        """Cancel the task and give it a moment to run its cleanup."""
        if self._finished:  # e.g. interrupted just after the result arrived
            return
        self._abandoned = True
        self._loop.call_soon_threadsafe(self._abandon)
        # Cancelled, failed or still running after the grace period: all fine here.
        if self._done.acquire(True, _CANCEL_GRACE):
            self._error = None


def _now() -> float:
    import time

    return time.monotonic()


def iterate_sync(agen: AsyncIterator[T], timeout: float | None = None) -> Iterator[T]:
    """Iterate an async iterator from sync code, one item per round trip.

    Each item is yielded on the caller's thread, so output lands where the caller is
    (in a notebook, the running cell). Closing the iterator (or an interrupt) closes the
    async generator on the loop.
    """
    anext_ = type(agen).__anext__
    try:
        while True:
            try:
                item = _Call(anext_(agen)).wait(timeout)
            except StopAsyncIteration:
                return
            yield item
    finally:
        aclose = getattr(agen, "aclose", None)
        # After shutdown the loop closed every async generator itself.
        if aclose is not None and not in_loop_thread() and not _stopped:
            try:
                run_sync(aclose(), _CANCEL_GRACE)
            except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - keep the cause
                log.debug("closing async iterator failed: %r", exc)


async def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the background loop from any other running loop."""
    loop = get_loop()
    if asyncio.get_running_loop() is loop:
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


async def iterate_async(agen: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """Iterate ``agen`` on the background loop from any other running loop.

    A pump task on the background loop runs ``agen`` and hands items over as they come;
    the caller's loop is woken only when it waits for one, so a fast stream costs a
    queue append per item, not a round trip. Leaving early (``break``, an error, a
    cancellation) cancels the pump, which closes ``agen`` on the loop before this returns.
    """
    loop = get_loop()
    here = asyncio.get_running_loop()
    if here is loop:
        async for item in agen:
            yield item
        return
    pump = _Pump(agen, here)
    future = asyncio.run_coroutine_threadsafe(pump.run(), loop)
    try:
        while True:
            if not pump.items:
                if pump.finished:
                    if pump.error is not None:
                        error, pump.error = pump.error, None
                        raise error
                    return
                await pump.wait()
                continue
            yield pump.items.popleft()
    finally:
        if not pump.finished:
            future.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pump.closed.wait(), _CANCEL_GRACE)


class _Pump(Generic[T]):
    """Runs an async iterator on the background loop for a consumer on another loop."""

    def __init__(self, agen: AsyncIterator[T], consumer: asyncio.AbstractEventLoop) -> None:
        self.agen = agen
        self.consumer = consumer
        self.items: collections.deque[T] = collections.deque()
        self.error: BaseException | None = None
        self.finished = False
        self.waiting = False
        self.ready = asyncio.Event()  # of the consumer's loop
        self.closed = asyncio.Event()  # of the consumer's loop: agen is closed

    async def run(self) -> None:  # on the background loop
        try:
            async for item in self.agen:
                self.items.append(item)
                if self.waiting:
                    self._wake()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            if not isinstance(exc, asyncio.CancelledError):
                self.error = exc
        finally:
            aclose = getattr(self.agen, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(BaseException):
                    await aclose()
            self.finished = True
            self._wake()
            with contextlib.suppress(RuntimeError):
                self.consumer.call_soon_threadsafe(self.closed.set)

    def _wake(self) -> None:
        self.waiting = False
        with contextlib.suppress(RuntimeError):  # the consumer's loop has closed
            self.consumer.call_soon_threadsafe(self.ready.set)

    async def wait(self) -> None:  # on the consumer's loop
        self.ready.clear()
        self.waiting = True
        if self.items or self.finished:  # arrived between the check and the flag
            self.waiting = False
            return
        await self.ready.wait()


def on_shutdown(closer: Callable[[], Awaitable[None]]) -> None:
    """Run ``closer()`` on the loop at interpreter exit (before the loop stops)."""
    _closers.append(closer)


def shutdown(timeout: float = 5.0) -> None:
    """Run the registered closers, then stop the loop (called at exit; safe to repeat)."""
    global _current
    current = _current
    if current is None or current.pid != os.getpid():
        return
    closers, _closers[:] = list(_closers), []
    if current.thread.is_alive() and not in_loop_thread():
        for closer in reversed(closers):
            try:
                future = asyncio.run_coroutine_threadsafe(_call(closer), current.loop)
                future.result(timeout)
            except Exception as exc:  # noqa: BLE001 - exit must not fail
                log.warning("closing %r at exit failed: %r", closer, exc)
    current.stop(timeout)
    _current = None


def _atexit() -> None:
    global _stopped
    _stopped = True
    shutdown()


async def _call(closer: Callable[[], Awaitable[None]]) -> None:
    await closer()


def _after_fork_in_child() -> None:
    # The parent's loop thread does not exist here; the next call starts a new one.
    global _current, _lock
    _current = None
    _lock = threading.Lock()
    _closers.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_atexit)
