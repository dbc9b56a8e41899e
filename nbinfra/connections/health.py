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
from typing import TYPE_CHECKING, Any, NamedTuple

from nbinfra._deadline import within
from nbinfra.connections.types import HealthStatus

if TYPE_CHECKING:
    from nbinfra.session import Session

__all__ = ["HEALTH_BOUND", "LIST_BOUND", "HealthReport", "check_health", "configured"]

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

    current = _session(session)
    specs = configured(current)
    names = list(specs) if names is None else names
    out: dict[str, HealthStatus] = {}
    checks: dict[str, Callable[[], Awaitable[HealthStatus]]] = {}
    bounds: dict[str, float] = {}
    for name in names:
        try:
            manager = _manager(name, current)
            pending = manager.pending_start
        except Exception as exc:  # noqa: BLE001 - shown in the listing, the others go on
            out[name] = _failed(specs.get(name), exc)
            continue
        bounds[name] = HEALTH_BOUND if start else LIST_BOUND
        if pending and not start:
            out[name] = HealthStatus(
                ok=False, kind=manager.kind, target=manager.target, started=False
            )
            continue
        extra = float(getattr(manager.settings, "embedded_start_timeout", 0.0))
        if pending and extra:
            bounds[name] += extra
            print(
                f"Starting {pending} for '{name}' (a first start initialises it and can take "
                f"a minute; up to {extra:g} s)...",
                flush=True,
            )
        checks[name] = manager.health_check
    cache_checks = (
        {kind: _cache_check(kind, current) for kind in _cache_kinds(current)} if caches else {}
    )

    async def bounded(name: str, run: Callable[[], Awaitable[Any]], bound: float, spec: Any) -> Any:
        try:
            return await within(run(), bound)
        except (TimeoutError, asyncio.TimeoutError):
            more = slow_hint(name) if slow_hint and not start and spec is not _CACHE else ""
            message = f"no answer within {bound:g} s; check that the service is up{more}"
            return _failed(spec, TimeoutError(message))
        except Exception as exc:  # noqa: BLE001 - shown in the listing, the others go on
            return _failed(spec, exc)

    async def everything() -> list[Any]:
        tasks = [bounded(n, run, bounds[n], specs.get(n)) for n, run in checks.items()]
        tasks += [bounded(k, run, LIST_BOUND, _CACHE) for k, run in cache_checks.items()]
        return list(await asyncio.gather(*tasks))

    results = _loop.run_sync(everything()) if checks or cache_checks else []
    out.update(zip(checks, results[: len(checks)], strict=True))
    cache_out = dict(zip(cache_checks, results[len(checks) :], strict=True))
    return HealthReport({name: out[name] for name in names}, cache_out)


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
