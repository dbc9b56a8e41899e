"""Health of the configured connections and caches, for ``%conn list``/``health`` and
``health_panel()``: every check at once, each under a short bound of its own.

- A listing bounds each check by ``LIST_BOUND``; ``%conn health NAME`` waits longer
  (``HEALTH_BOUND``, plus the start time of an embedded server it starts).
- What a check would have to start first (an embedded server that is not running, an
  in-process engine not opened yet) is reported ``not started`` in a listing.
- A refused port answers at once: managers over plain TCP probe it before their driver.
- Targets are the managers' own (what the connection really uses, ``REDIS_URL`` included),
  masked; the configuration's text only when the manager cannot be built.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nbinfra._deadline import within
from nbinfra.connections.types import HealthStatus

__all__ = ["CACHE_BACKENDS", "HEALTH_BOUND", "LIST_BOUND", "check", "detail", "specs"]

LIST_BOUND = 2.5  # seconds for each check in a listing (all of them run at once)
HEALTH_BOUND = 10.0  # seconds for the check %conn health NAME asked for
CACHE_BACKENDS = ("memory", "redis")


class _CacheSpec:
    kind = "cache"
    target = ""


_CACHE = _CacheSpec()


def specs() -> dict[str, Any]:
    """The configured connections: name -> ``ConnectionSpec``."""
    from nbinfra.connections import configured_connections
    from nbinfra.session import session

    found: dict[str, Any] = configured_connections(session().settings)
    return found


def detail(name: str, status: Any) -> str:
    """The listing's error column: empty when ok, else what is wrong or what to run."""
    if status is None or status.ok:
        return ""
    if not status.started:
        return f"starts on first use; %conn health {name} starts it now"
    return str(status.error or "")


def check(
    names: list[str], *, start: bool = False, caches: bool = False
) -> tuple[dict[str, HealthStatus], dict[str, HealthStatus]]:
    """Health of the connections ``names`` (and of the cache backends when ``caches``),
    all checked at once: ``(connections, caches)``, each in the order asked."""
    from nbinfra import _loop

    configured = specs()
    out: dict[str, HealthStatus] = {}
    checks: dict[str, Callable[[], Awaitable[HealthStatus]]] = {}
    bounds: dict[str, float] = {}
    for name in names:
        try:
            manager = _manager(name)
            pending = manager.pending_start
        except Exception as exc:  # noqa: BLE001 - shown in the listing, the others go on
            out[name] = _failed(configured.get(name), exc)
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
    cache_checks = {backend: _cache_check(backend) for backend in CACHE_BACKENDS} if caches else {}

    async def bounded(name: str, run: Callable[[], Awaitable[Any]], bound: float, spec: Any) -> Any:
        try:
            return await within(run(), bound)
        except (TimeoutError, asyncio.TimeoutError):
            more = ""
            if not start and spec is not _CACHE:
                more = f", or run %conn health {name} (waits up to {HEALTH_BOUND:g} s)"
            message = f"no answer within {bound:g} s; check that the service is up{more}"
            return _failed(spec, TimeoutError(message))
        except Exception as exc:  # noqa: BLE001 - shown in the listing, the others go on
            return _failed(spec, exc)

    async def everything() -> list[Any]:
        tasks = [bounded(n, run, bounds[n], configured.get(n)) for n, run in checks.items()]
        tasks += [bounded(b, run, LIST_BOUND, _CACHE) for b, run in cache_checks.items()]
        return list(await asyncio.gather(*tasks))

    results = _loop.run_sync(everything()) if checks or cache_checks else []
    out.update(zip(checks, results[: len(checks)], strict=True))
    cache_out = dict(zip(cache_checks, results[len(checks) :], strict=True))
    return {name: out[name] for name in names}, cache_out


def _manager(name: str) -> Any:
    from nbinfra.connections import conn

    return conn(name).manager


def _cache_check(backend: str) -> Callable[[], Awaitable[HealthStatus]]:
    async def run() -> HealthStatus:
        from nbinfra.cache import CacheService

        started = time.perf_counter()
        status = await CacheService("nbinfra-health", cache_type=backend).health()
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
