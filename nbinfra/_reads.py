"""Which setting paths a piece of code read: the recorder behind live configuration.

While a session builds an instance, ``recording()`` collects every dotted path passed to
``Settings.get`` (and so to ``section``/``has``); the session stores them with the
instance and rebuilds it only when the values at those paths change. Code that reads a
whole section but depends on part of it reads inside ``unrecorded()`` and names what it
really uses with ``note()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["note", "recording", "unrecorded"]

_reads: ContextVar[set[str] | None] = ContextVar("nbinfra_setting_reads", default=None)


def note(*paths: str) -> None:
    """Record ``paths`` as read by the instance being built (no-op when none is)."""
    found = _reads.get()
    if found is not None:
        found.update(paths)


@contextmanager
def recording() -> Iterator[set[str]]:
    """Collect the setting paths read inside the block into the yielded set."""
    paths: set[str] = set()
    token = _reads.set(paths)
    try:
        yield paths
    finally:
        _reads.reset(token)


@contextmanager
def unrecorded() -> Iterator[None]:
    """Reads inside the block are not recorded (the caller notes what it uses)."""
    token = _reads.set(None)
    try:
        yield
    finally:
        _reads.reset(token)
