"""Compute-once for ``get_or_set``: one load per cold key, whoever asks for it.

- In this process, the callers of one key on one event loop share a future (``Flights``):
  the first one leads, the others wait for the bytes it read or stored. A cancelled
  leader hands over to a waiter.
- Across processes, the leader loads under the backend's lock (``under_lock``): whoever
  does not get it waits for the value to appear, and loads anyway once ``lock_timeout``
  has passed (the holder died or is too slow).
- ``run_loader`` runs the loader the same way on every backend: a coroutine function on
  the caller's loop, a plain function off every loop with ``asyncio.to_thread``, so it
  blocks no other call and may use nbinfra's synchronous API (which refuses to run on
  nbinfra's own loop). A plain loader started from inside another one (a ``@cached``
  function calling another) gets a thread of its own instead: each level holds a thread
  while it waits for the next, and nesting deeper than ``to_thread``'s pool (a few
  threads per core) would leave the innermost waiting for a free one forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nbinfra.cache.base import BaseCacheProvider

__all__ = ["Flights", "Outcome", "run_loader", "under_lock"]

# (found in the cache, the loaded value (None when found), the stored bytes)
Outcome = tuple[bool, Any, bytes]


class Flights:
    """The loads running in one namespace, by event loop and full key."""

    __slots__ = ("_running",)

    def __init__(self) -> None:
        self._running: dict[tuple[int, str], asyncio.Future[bytes]] = {}

    async def share(self, k: str, lead: Callable[[], Awaitable[Outcome]]) -> Outcome:
        """``lead()`` for the first caller of ``k`` on this loop; the others get its bytes
        as found (its errors reach every one of them)."""
        loop = asyncio.get_running_loop()
        flight = (id(loop), k)
        running = self._running.get(flight)
        while running is not None:  # someone here is already reading or loading this key
            try:
                return True, None, await asyncio.shield(running)
            except asyncio.CancelledError:
                if not running.cancelled():
                    raise  # this caller was cancelled
                running = self._running.get(flight)  # the leader was: take over
        future: asyncio.Future[bytes] = loop.create_future()
        future.add_done_callback(_consume)
        self._running[flight] = future
        try:
            outcome = await lead()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
            raise
        finally:
            self._running.pop(flight, None)
        future.set_result(outcome[2])
        return outcome


async def under_lock(
    provider: BaseCacheProvider,
    k: str,
    lock_timeout: float,
    load: Callable[[], Awaitable[tuple[Any, bytes]]],
) -> Outcome:
    """The value another process stored meanwhile, or ``load()``'s, holding the lock."""
    lock = f"nbinfra:lock:{k}"
    deadline = time.monotonic() + lock_timeout
    delay = 0.001
    token = await provider.acquire_lock(lock, lock_timeout)
    while token is None:  # another process is loading: wait for its value
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
        data = await provider.get(k)
        if data is not None:
            return True, None, data
        if time.monotonic() >= deadline:
            break  # the holder died or is too slow; load without the lock
        token = await provider.acquire_lock(lock, lock_timeout)
    try:
        data = await provider.get(k)
        if data is not None:
            return True, None, data
        value, data = await load()
        return False, value, data
    finally:
        if token is not None:
            await provider.release_lock(lock, token)


_IN_LOADER: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "nbinfra_cache_in_loader", default=False
)


async def run_loader(loader: Callable[[], Any]) -> Any:
    """``loader()``'s value (awaited when it is awaitable); see the module docstring."""
    if inspect.iscoroutinefunction(loader):
        return await loader()
    if _IN_LOADER.get():
        value = await _own_thread(loader)
    else:
        value = await asyncio.to_thread(_marked, loader)
    if inspect.isawaitable(value):
        value = await value
    return value


def _marked(loader: Callable[[], Any]) -> Any:
    _IN_LOADER.set(True)  # in this call's copy of the caller's context only
    return loader()


async def _own_thread(loader: Callable[[], Any]) -> Any:
    """``loader()`` in a new daemon thread (the caller's context copied), awaited."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(value: Any, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is None:
            done.set_result(value)
        else:
            done.set_exception(error)

    def work() -> None:
        value: Any = None
        error: BaseException | None = None
        try:
            value = context.run(loader)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=work, name="nbinfra-cache-loader", daemon=True).start()
    return await done


def _consume(future: asyncio.Future[Any]) -> None:
    # Mark a failed flight's exception as retrieved even when nobody else was waiting.
    if not future.cancelled():
        future.exception()
