"""Sessions: named live instances (caches, connections, LLMs) created lazily from config.

A ``Session`` owns what it creates and closes it all with ``close()`` (or as a context
manager). ``nbinfra.session()`` is the default one used by the notebook facade; tests and
scripts can make their own and install it with ``use_session``. Nothing here is stored on
classes, so two sessions never share state.

The configuration is live (``nbinfra.config_sources``): each instance remembers the
setting paths its creation read. On the next use after one of its variables changed in
``os.environ``, or after a configuration or ``.env`` file changed (stat'ed at most every
0.2 s), the settings are reloaded and an instance whose own values differ is closed and
built again; the others stay. ``reload()`` does it at once. A session given ``settings``
by hand keeps them.
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
from nbinfra._reads import note, recording
from nbinfra.config import Settings
from nbinfra.config_sources import Deps, Sources, changed_at, load_live, raw_changed
from nbinfra.errors import NbinfraError
from nbinfra.logs import get_logger

__all__ = ["Session", "reload", "session", "set_default_session", "use_session"]

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
        self._sources: Sources | None = None  # None: not loaded yet, or given by hand
        self._resources = resources
        self._instances: dict[tuple[str, str], Any] = {}
        self._deps: dict[tuple[str, str], Deps] = {}
        self._memos: dict[str, tuple[Any, Deps]] = {}
        self._lock = threading.RLock()
        self._closed = False
        self.state: dict[str, Any] = {}  # per-session scratch space for components

    @property
    def settings(self) -> Settings:
        """The configuration: loaded on first access, reloaded after its sources changed."""
        current = self._settings
        if current is None:
            with self._lock:
                if self._settings is None:
                    self._load()
                return self._settings  # type: ignore[return-value]
        sources = self._sources
        if sources is not None and sources.due() and sources.changed():
            with self._lock:
                if self._sources is sources:
                    self._load()
            return self._settings  # type: ignore[return-value]
        return current

    def _load(self) -> None:
        self._settings, self._sources = load_live(self._resources)

    def _usable(self, deps: Deps) -> bool:
        """``_fresh(deps)``, with the common case (nothing due, no variable moved) inline."""
        sources = self._sources
        return (
            sources is None
            or (deps.settings is self._settings and sources.recent() and not raw_changed(deps.raw))
            or self._fresh(deps)
        )

    def _fresh(self, deps: Deps) -> bool:
        """True when the instance built with ``deps`` may be used as it is."""
        current = self.settings
        if self._sources is None:
            return True
        if deps.settings is current:
            if not deps.env_changed():
                return True
            with self._lock:  # its own variable changed: reload now, not at the next stat
                if self._settings is deps.settings:
                    self._load()
                current = self.settings
        if changed_at(deps.settings, current, deps.paths):
            return False
        deps.rebase(current, self._sources)
        return True

    @property
    def closed(self) -> bool:
        return self._closed

    def get(self, component: str, name: str, create: Callable[[], T]) -> T:
        """The instance ``name`` of ``component``, created by ``create()`` the first time.

        Built again (the old one closed) on the first use after its settings changed.
        """
        key = (component, name)
        found = self._instances.get(key)
        if found is not None:
            deps = self._deps.get(key)
            if deps is None:
                return found  # type: ignore[no-any-return]
            if self._usable(deps):
                note(*deps.paths)  # an instance built from this one depends on them too
                return found  # type: ignore[no-any-return]
            self._drop([key], reason="its settings changed")
        with self._lock:
            if self._closed:
                raise NbinfraError(
                    "This nbinfra session is closed; create a new one with nbinfra.Session()."
                )
            found = self._instances.get(key)
            if found is None:
                settings = self.settings
                with recording() as paths, self._recheck_on_error():
                    found = create()
                self._instances[key] = found
                self._deps[key] = deps = Deps.of(settings, paths, self._sources)
            else:
                deps = self._deps.get(key) or Deps(self.settings, frozenset())
        note(*deps.paths)
        return found

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """A value derived from the settings, computed again after the paths it read change."""
        found = self._memos.get(key)
        if found is not None:
            deps = found[1]
            if self._usable(deps):
                note(*deps.paths)
                return found[0]  # type: ignore[no-any-return]
        settings = self.settings
        with recording() as paths, self._recheck_on_error():
            value = compute()
        deps = Deps.of(settings, paths, self._sources)
        self._memos[key] = (value, deps)
        note(*paths)
        return value

    @contextmanager
    def _recheck_on_error(self) -> Iterator[None]:
        """After a failed build ("set X"), check every source on the next access."""
        try:
            yield
        except Exception:
            if self._sources is not None:
                self._sources.checked = float("-inf")
            raise

    def reload(self) -> list[str]:
        """Re-read the configuration now; close every instance whose settings changed.

        Those are built again on their next use. Returns their ``component:name``.
        """
        with self._lock:
            if self._settings is not None and self._sources is None:
                return []  # given by hand: nothing to re-read
            self._load()
            current = self._settings
            assert current is not None
            stale: list[tuple[str, str]] = []
            for key, deps in self._deps.items():
                if changed_at(deps.settings, current, deps.paths):
                    stale.append(key)
                else:
                    deps.rebase(current, self._sources)
            self._memos.clear()
        self._drop(stale, reason="nbinfra.reload()")
        return [f"{c}:{n}" for c, n in stale]

    def _drop(self, keys: list[tuple[str, str]], *, reason: str) -> None:
        """Forget ``keys`` (newest first) and close their instances."""
        with self._lock:
            gone = [(k, self._instances.pop(k)) for k in reversed(keys) if k in self._instances]
            for key in keys:
                self._deps.pop(key, None)
        for (component, name), instance in gone:
            log.info("closing %s '%s': %s", component, name, reason)
            _close_soon(component, name, instance)

    def put(self, component: str, name: str, instance: Any) -> None:
        """Register an instance created elsewhere; the session closes it."""
        with self._lock:
            self._instances[(component, name)] = instance
            self._deps.pop((component, name), None)

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
            self._deps.clear()
            self._memos.clear()
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


_closing: set[Any] = set()  # close tasks started on the loop, kept until they finish


def _close_soon(component: str, name: str, instance: Any) -> None:
    """Close a replaced instance: now, or as a task when called on nbinfra's loop."""
    if not _loop.in_loop_thread():
        _loop.run_sync(_close_one(component, name, instance))
        return
    import asyncio

    task = asyncio.get_running_loop().create_task(_close_one(component, name, instance))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


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


def reload() -> list[str]:
    """Re-read the configuration of the default session now (``%nbinfra reload``).

    Instances whose settings changed are closed and built again on next use; the others
    stay. Returns the ``component:name`` of those closed.
    """
    return session().reload()


@contextmanager
def use_session(new: Session) -> Iterator[Session]:
    """Make ``new`` the default session inside the ``with`` block."""
    previous = set_default_session(new)
    try:
        yield new
    finally:
        set_default_session(previous)


make_module_callable(__name__, session)
