"""Sessions: named live instances (caches, connections, LLMs) created lazily from config.

A ``Session`` owns what it creates and closes it all with ``close()`` (or as a context
manager). ``nbinfra.session()`` is the default one used by the notebook facade; tests and
scripts can make their own and install it with ``use_session``. Nothing here is stored on
classes, so two sessions never share state.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from nbinfra import _loop
from nbinfra._callable import make_module_callable
from nbinfra.config import Settings, load_settings
from nbinfra.errors import NbinfraError
from nbinfra.logs import get_logger

__all__ = ["Session", "session", "set_default_session", "use_session"]

T = TypeVar("T")
log = get_logger(__name__)

_CLOSE_METHODS = ("aclose", "close", "disconnect")


class Session:
    """Named live instances, created on first use and closed together."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        resources: str | os.PathLike[str] | None = None,
    ) -> None:
        self._settings = settings
        self._resources = resources
        self._instances: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()
        self._closed = False
        self.state: dict[str, Any] = {}  # per-session scratch space for components

    @property
    def settings(self) -> Settings:
        """The configuration, loaded on first access."""
        if self._settings is None:
            with self._lock:
                if self._settings is None:
                    self._settings = load_settings(self._resources)
        return self._settings

    @property
    def closed(self) -> bool:
        return self._closed

    def get(self, component: str, name: str, create: Callable[[], T]) -> T:
        """The instance ``name`` of ``component``, created by ``create()`` the first time."""
        key = (component, name)
        found = self._instances.get(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        with self._lock:
            if self._closed:
                raise NbinfraError(
                    "This nbinfra session is closed; create a new one with nbinfra.Session()."
                )
            found = self._instances.get(key)
            if found is None:
                found = create()
                self._instances[key] = found
            return found

    def put(self, component: str, name: str, instance: Any) -> None:
        """Register an instance created elsewhere; the session closes it."""
        with self._lock:
            self._instances[(component, name)] = instance

    def peek(self, component: str, name: str) -> Any | None:
        """The instance if it exists, without creating it."""
        return self._instances.get((component, name))

    def names(self, component: str) -> list[str]:
        """Names of the live instances of ``component``."""
        return sorted(name for comp, name in self._instances if comp == component)

    async def aclose(self) -> None:
        """Close every instance (newest first); errors are logged, not raised."""
        with self._lock:
            self._closed = True
            items = list(self._instances.items())
            self._instances.clear()
        for (component, name), instance in reversed(items):
            await _close_one(component, name, instance)

    def close(self) -> None:
        """Close every instance from synchronous code."""
        if not self._instances:
            self._closed = True
            return
        if _loop.in_loop_thread():
            raise NbinfraError("Session.close() was called on nbinfra's loop; use await aclose().")
        _loop.run_sync(self.aclose())

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        live = ", ".join(f"{c}:{n}" for c, n in sorted(self._instances)) or "nothing open"
        state = "closed" if self._closed else live
        return f"<nbinfra.Session {state}>"


async def _close_one(component: str, name: str, instance: Any) -> None:
    for method_name in _CLOSE_METHODS:
        method = getattr(instance, method_name, None)
        if method is None:
            continue
        try:
            result = method()
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # noqa: BLE001 - closing must go on for the others
            log.warning("closing %s '%s' failed: %s", component, name, exc)
        return


_default: Session | None = None
_default_lock = threading.Lock()


def session() -> Session:
    """The default session (created on first use, closed at interpreter exit)."""
    global _default
    current = _default
    if current is not None and not current.closed:
        return current
    with _default_lock:
        if _default is None or _default.closed:
            _default = Session()
            _loop.on_shutdown(_default.aclose)
        return _default


def set_default_session(new: Session | None) -> Session | None:
    """Install ``new`` as the default session; returns the previous one."""
    global _default
    with _default_lock:
        previous, _default = _default, new
    return previous


@contextmanager
def use_session(new: Session) -> Iterator[Session]:
    """Make ``new`` the default session inside the ``with`` block."""
    previous = set_default_session(new)
    try:
        yield new
    finally:
        set_default_session(previous)


make_module_callable(__name__, session)
