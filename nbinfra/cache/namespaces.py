"""What the ``CacheService`` objects of one namespace in one session share: stats and the
loads in flight; and ``MISS``, the sentinel a miss returns when asked to."""

from __future__ import annotations

from typing import Final

from nbinfra.cache.flight import Flights
from nbinfra.cache.stats import CacheStats, StatsRecorder
from nbinfra.session import Session
from nbinfra.session import session as default_session

__all__ = ["MISS", "Shared", "all_stats", "shared_state"]


class _Miss:
    """The ``MISS`` sentinel: pass ``default=MISS`` to tell a miss from a cached ``None``."""

    _instance: _Miss | None = None

    def __new__(cls) -> _Miss:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISS"

    def __bool__(self) -> bool:
        return False


MISS: Final = _Miss()


class Shared:
    """What every ``CacheService`` of one namespace in one session shares."""

    __slots__ = ("backend", "flights", "stats")

    def __init__(self, window: int, backend: str) -> None:
        self.stats = StatsRecorder(window)
        self.backend = backend
        self.flights = Flights()


_NAMESPACES = "cache.namespaces"


def shared_state(sess: Session, namespace: str, window: int, backend: str) -> Shared:
    table: dict[str, Shared] = sess.state.setdefault(_NAMESPACES, {})
    found = table.get(namespace)
    if found is None:
        found = table.setdefault(namespace, Shared(window, backend))
    return found


def all_stats(session: Session | None = None) -> list[CacheStats]:
    """Stats of every namespace used in ``session`` (default: the current one), by name."""
    sess = session or default_session()
    table: dict[str, Shared] = sess.state.get(_NAMESPACES, {})
    return [table[ns].stats.snapshot(ns, table[ns].backend) for ns in sorted(table)]
