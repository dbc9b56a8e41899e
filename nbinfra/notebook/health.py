"""How ``%conn list``/``health`` and ``health_panel()`` word what the core's
``nbinfra.connections.health.check_health`` found: the listing's error column and the
hint on a check that ran out of time."""

from __future__ import annotations

from typing import Any

from nbinfra.connections import health as core
from nbinfra.connections.health import HealthReport, check_health, configured

__all__ = ["check", "detail", "slow_hint", "specs"]


def specs() -> dict[str, Any]:
    """The configured connections: name -> ``ConnectionSpec``."""
    return configured()


def detail(name: str, status: Any) -> str:
    """The listing's error column: empty when ok, else what is wrong or what to run."""
    if status is None or status.ok:
        return ""
    if not status.started:
        return f"starts on first use; %conn health {name} starts it now"
    return str(status.error or "")


def slow_hint(name: str) -> str:
    """What to run for a listing's check that ran out of time."""
    return f", or run %conn health {name} (waits up to {core.HEALTH_BOUND:g} s)"


def check(names: list[str], *, start: bool = False, caches: bool = False) -> HealthReport:
    """``check_health`` with the notebook's hint (see ``nbinfra.connections.health``)."""
    return check_health(names, start=start, caches=caches, slow_hint=slow_hint)
