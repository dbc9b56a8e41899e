"""Health of every configured connection (and cache backend) at once, each bounded.

``check_health()`` is what ``%conn list``/``%conn health`` and ``health_panel()`` show, and
what a script can call itself:

- a listing bounds each check by ``LIST_BOUND``; a check asked for with ``start=True``
  waits longer (``HEALTH_BOUND``, plus the start time of an embedded server it starts);
- what a check would have to start first (an embedded server that is not running, an
  in-process engine not opened yet) is reported ``not started`` unless ``start``;
- a refused port answers at once: managers over plain TCP probe it before their driver;
- targets are the managers' own (what the connection really uses), masked; the
  configuration's text only when the manager cannot be built.

Any kind the registry knows is checked the same way: nothing here names a kind.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, NamedTuple

from nbinfra._deadline import within
from nbinfra.connections.types import HealthStatus
from nbinfra.logs import get_logger

if TYPE_CHECKING:
    from nbinfra.session import Session

__all__ = [
    "HEALTH_BOUND",
    "LIST_BOUND",
    "HealthReport",
    "HealthRun",
    "check_health",
    "configured",
    "start_health",
]

LIST_BOUND = 2.5  # seconds for each check in a listing (all of them run at once)
HEALTH_BOUND = 10.0  # seconds for a check asked for with start=True


class HealthReport(NamedTuple):
    """``check_health``'s answer: name -> status, in the order asked; cache kind -> status."""

    connections: dict[str, HealthStatus]
    caches: dict[str, HealthStatus]


class _CacheSpec:
    kind = "cache"
    target = ""


_CACHE = _CacheSpec()


def configured(session: Session | None = None) -> dict[str, Any]:
    """The configured connections: name -> ``ConnectionSpec``."""
    from nbinfra.connections.settings import configured_connections

    found: dict[str, Any] = configured_connections(_session(session).settings)
    return found


def check_health(
    names: list[str] | None = None,
    *,
    start: bool = False,
    caches: bool = False,
    session: Session | None = None,
    slow_hint: Callable[[str], str] | None = None,
) -> HealthReport:
    """Health of the connections ``names`` (default: every configured one), and of the cache
    kinds in use when ``caches``, all checked at once; never raises.

    ``slow_hint(name)`` is added to the message of a listing's check that ran out of time
    (how to wait longer for that one).
    """
    from nbinfra import _loop

    plan = _Plan(names, start, caches, _session(session), slow_hint)
    if plan.checks or plan.cache_checks:
        return _loop.run_sync(plan.run(None))
    return plan.report()


class HealthRun(NamedTuple):
    """``start_health``'s answer: what is being checked, and the report to come."""

    connections: list[str]  # names, in the order asked
    caches: list[str]  # cache kinds
    ready: dict[str, HealthStatus]  # connections answered without a check
    future: Future[HealthReport]


def start_health(
    names: list[str] | None = None,
    *,
    caches: bool = False,
    session: Session | None = None,
    slow_hint: Callable[[str], str] | None = None,
    on_status: Callable[[str, str, HealthStatus], None] | None = None,
) -> HealthRun:
    """``check_health`` without waiting: the checks run on nbinfra's loop and
    ``on_status(group, name, status)`` (group ``connection`` or ``cache``) is called there
    as each one returns; the returned ``future`` completes with the whole report."""
    from nbinfra import _loop

    plan = _Plan(names, False, caches, _session(session), slow_hint)
    future: Future[HealthReport] = asyncio.run_coroutine_threadsafe(
        plan.run(on_status), _loop.get_loop()
    )
    return HealthRun(plan.names, list(plan.cache_checks), dict(plan.out), future)


class _Plan:
    """The checks one listing runs: built on the caller's thread, run on the loop."""

    def __init__(
        self,
        names: list[str] | None,
        start: bool,
        caches: bool,
        current: Session,
        slow_hint: Callable[[str], str] | None,
    ) -> None:
        self.specs = specs = configured(current)
        self.names = list(specs) if names is None else names
        self.start = start
        self.slow_hint = slow_hint
        self.out: dict[str, HealthStatus] = {}
        self.checks: dict[str, Callable[[], Awaitable[HealthStatus]]] = {}
        self.bounds: dict[str, float] = {}
        for name in self.names:
            try:
                manager = _manager(name, current)
                pending = manager.pending_start
            except Exception as exc:  # noqa: BLE001 - shown in the listing, the others go on
                self.out[name] = _failed(specs.get(name), exc)
                continue
            self.bounds[name] = HEALTH_BOUND if start else LIST_BOUND
            if pending and not start:
                self.out[name] = HealthStatus(
                    ok=False, kind=manager.kind, target=manager.target, started=False
                )
                continue
            extra = float(getattr(manager.settings, "embedded_start_timeout", 0.0))
            if pending and extra:
                self.bounds[name] += extra
                print(
                    f"Starting {pending} for '{name}' (a first start initialises it and can "
                    f"take a minute; up to {extra:g} s)...",
                    flush=True,
                )
            self.checks[name] = manager.health_check
        self.cache_checks = (
            {kind: _cache_check(kind, current) for kind in _cache_kinds(current)} if caches else {}
        )
        self.cache_out: dict[str, HealthStatus] = {}

    def report(self) -> HealthReport:
        return HealthReport({name: self.out[name] for name in self.names}, self.cache_out)

    async def _bounded(
        self, name: str, run: Callable[[], Awaitable[Any]], bound: float, spec: Any
    ) -> Any:
        try:
            return await within(run(), bound)
        except (TimeoutError, asyncio.TimeoutError):
            hint = self.slow_hint
            more = hint(name) if hint and not self.start and spec is not _CACHE else ""
            message = f"no answer within {bound:g} s; check that the service is up{more}"
            return _failed(spec, TimeoutError(message))
        except Exception as exc:  # noqa: BLE001 - shown in the listing, the others go on
            return _failed(spec, exc)

    async def run(self, on_status: Callable[[str, str, HealthStatus], None] | None) -> HealthReport:
        async def one(group: str, name: str, run: Callable[[], Awaitable[Any]]) -> None:
            cache = group == "cache"
            bound = LIST_BOUND if cache else self.bounds[name]
            status = await self._bounded(
                name, run, bound, _CACHE if cache else self.specs.get(name)
            )
            (self.cache_out if cache else self.out)[name] = status
            if on_status is not None:
                try:
                    on_status(group, name, status)
                except Exception as exc:  # noqa: BLE001 - a display callback must not stop the rest
                    get_logger(__name__).warning("health display of %s failed: %s", name, exc)

        tasks = [one("connection", n, run) for n, run in self.checks.items()]
        tasks += [one("cache", k, run) for k, run in self.cache_checks.items()]
        await asyncio.gather(*tasks)
        self.cache_out = {k: self.cache_out[k] for k in self.cache_checks}
        return self.report()


def _session(session: Session | None) -> Session:
    if session is not None:
        return session
    from nbinfra.session import session as current

    return current()


def _manager(name: str, session: Session) -> Any:
    from nbinfra.connections import conn

    return conn(name, session=session).manager


def _cache_kinds(session: Session) -> list[str]:
    """The cache kinds to check: the shipped ones, and any other the cache settings name
    (as ``cache.backend`` or as a section of its own), in the registry's order."""
    from nbinfra.cache import CacheRegistry
    from nbinfra.registry import BUILTINS

    wanted = set(BUILTINS.get(CacheRegistry.group, {}))
    section = session.settings.get("cache", {})
    if isinstance(section, dict):
        wanted |= {str(key).lower() for key in section}
        wanted.add(str(section.get("backend", "")).lower())
    return [kind for kind in CacheRegistry.kinds() if kind in wanted]


def _cache_check(kind: str, session: Session) -> Callable[[], Awaitable[HealthStatus]]:
    async def run() -> HealthStatus:
        from nbinfra.cache import CacheService

        started = time.perf_counter()
        status = await CacheService("nbinfra-health", cache_type=kind, session=session).health()
        ok = bool(getattr(status, "ok", status))
        latency = getattr(status, "latency", None)
        return HealthStatus(
            ok=ok,
            kind="cache",
            target=str(getattr(status, "target", "")),
            latency=time.perf_counter() - started if latency is None else latency,
            error=None if ok else str(getattr(status, "error", "") or "not healthy"),
        )

    return run


def _failed(spec: Any, exc: BaseException) -> HealthStatus:
    message = str(exc) or type(exc).__name__
    return HealthStatus(
        ok=False,
        kind=getattr(spec, "kind", "?"),
        target=getattr(spec, "target", "?"),
        error=message.splitlines()[0] if message else message,
    )
