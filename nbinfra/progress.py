"""A throttled progress display for long work, fed by any engine.

``Progress("DuckDB query")`` is updated as often as the engine likes (``update(37.5)``,
a percentage, or ``None`` when unknown); what a person sees is throttled: nothing for
the first ``delay`` seconds (a fast query shows nothing at all), then at most one redraw
every ``interval`` seconds (about 10 a second), and the display is removed by
``close()``. Where it is drawn is decided by a *display factory*: the notebook extension
installs one that draws into the running cell; without one, nothing is drawn.

``NBINFRA_PROGRESS=off`` turns every display off (the nbval run sets it, so stored notebook
outputs stay stable); ``on`` draws even where the factory would not (a terminal shell).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["DELAY", "INTERVAL", "Progress", "ProgressDisplay", "enabled", "set_display"]

DELAY = 0.5  # seconds before anything is shown
INTERVAL = 0.1  # seconds between redraws: at most ~10 updates a second
ENV = "NBINFRA_PROGRESS"


class ProgressDisplay(Protocol):
    """Where a progress line is drawn (a notebook output, a terminal line...)."""

    def draw(self, label: str, percent: float | None, elapsed: float) -> None: ...

    def remove(self) -> None: ...


# forced=True: NBINFRA_PROGRESS=on asks for a display even where there is no notebook.
DisplayFactory = Callable[[bool], "ProgressDisplay | None"]
_factory: DisplayFactory | None = None


def set_display(factory: DisplayFactory | None) -> DisplayFactory | None:
    """Install the display factory (``None`` removes it); returns the previous one."""
    global _factory
    previous, _factory = _factory, factory
    return previous


def enabled() -> bool:
    """False when ``NBINFRA_PROGRESS`` is ``off`` (also ``0``, ``false``, ``no``)."""
    return os.environ.get(ENV, "").strip().lower() not in ("off", "0", "false", "no")


class Progress:
    """One long operation's progress; cheap to update, throttled when drawn."""

    __slots__ = ("_display", "_drawn", "_last", "_start", "delay", "interval", "label", "percent")

    def __init__(self, label: str, *, delay: float = DELAY, interval: float = INTERVAL) -> None:
        self.label = label
        self.delay = delay
        self.interval = interval
        self.percent: float | None = None
        self._start = time.monotonic()
        self._last = 0.0
        self._display: ProgressDisplay | None = None
        self._drawn: tuple[str, str, str] | None = None  # what is on screen now

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def update(self, percent: float | None = None) -> None:
        """Record progress (0-100, or None/negative when unknown); redraw if it is time."""
        self.percent = None if percent is None or percent < 0 else min(float(percent), 100.0)
        now = time.monotonic()
        if now - self._start < self.delay or now - self._last < self.interval:
            return
        display = self._display
        if display is None:
            display = self._display = _open()
            if display is None:
                self.delay = float("inf")  # nowhere to draw: stop trying
                return
        elapsed = now - self._start
        shown = (self.label, _percent_text(self.percent), f"{elapsed:.0f}")
        if shown == self._drawn:
            return  # the same text again would only add output messages
        self._last = now
        self._drawn = shown
        display.draw(self.label, self.percent, elapsed)

    def close(self) -> None:
        """Remove the display (if one was drawn); safe to call twice."""
        display, self._display = self._display, None
        if display is not None:
            display.remove()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open() -> ProgressDisplay | None:
    if not enabled() or _factory is None:
        return None
    forced = os.environ.get(ENV, "").strip().lower() in ("on", "1", "true", "yes")
    return _factory(forced)


def _percent_text(percent: float | None) -> str:
    return "" if percent is None else f"{percent:.0f}"


def describe(label: str, percent: float | None, elapsed: float) -> str:
    """``DuckDB query: 37% · 4 s`` (``…`` for the percentage when it is unknown)."""
    done = "…" if percent is None else f"{percent:.0f}%"
    return f"{label}: {done} · {elapsed:.0f} s"
