"""nbinfra.progress: shown late, throttled, removed; off under NBINFRA_PROGRESS=off."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from nbinfra import progress
from nbinfra.progress import Progress, describe


class Recorder:
    """A display that keeps what it was asked to draw."""

    def __init__(self) -> None:
        self.draws: list[tuple[float, str]] = []  # (elapsed, text)
        self.removed = 0

    def draw(self, label: str, percent: float | None, elapsed: float) -> None:
        self.draws.append((elapsed, describe(label, percent, elapsed)))

    def remove(self) -> None:
        self.removed += 1


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    monkeypatch.delenv("NBINFRA_PROGRESS", raising=False)
    shown = Recorder()
    previous = progress.set_display(lambda forced: shown)
    try:
        yield shown
    finally:
        progress.set_display(previous)


def _feed(bar: Progress, seconds: float) -> None:
    """Update as fast as an engine might, with a new percentage every time."""
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        bar.update(i / 1000)
        i += 1


def test_nothing_is_drawn_for_a_fast_operation(recorder: Recorder) -> None:
    with Progress("q", delay=0.3) as bar:
        _feed(bar, 0.1)
    assert recorder.draws == [] and recorder.removed == 0


def test_redraws_are_throttled_and_the_display_is_removed(recorder: Recorder) -> None:
    with Progress("q", delay=0.2, interval=0.1) as bar:
        _feed(bar, 0.8)
    assert recorder.draws and recorder.removed == 1
    times = [elapsed for elapsed, _ in recorder.draws]  # seconds since the start
    assert times[0] >= 0.2  # nothing before the delay
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 0.1 for gap in gaps), gaps  # at most one redraw per interval
    assert len(times) <= 7  # 0.6 s of drawing at 10 a second
    assert recorder.draws[-1][1].startswith("q: ") and recorder.draws[-1][1].endswith(" s")


def test_unchanged_text_is_not_sent_again(recorder: Recorder) -> None:
    with Progress("q", delay=0.0, interval=0.0) as bar:
        for _ in range(1000):
            bar.update(None)  # unknown percentage, same second: the same text
    assert len(recorder.draws) == 1
    assert recorder.draws[0][1] == "q: … · 0 s"


@pytest.mark.parametrize("value", ["off", "0", "false", "OFF"])
def test_off_draws_nothing(recorder: Recorder, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NBINFRA_PROGRESS", value)
    assert not progress.enabled()
    with Progress("q", delay=0.0, interval=0.0) as bar:
        bar.update(50)
    assert recorder.draws == []


def test_on_forces_a_display_where_the_factory_would_not_draw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[bool] = []
    shown = Recorder()

    def factory(forced: bool) -> Recorder | None:
        asked.append(forced)
        return shown if forced else None

    previous = progress.set_display(factory)
    try:
        monkeypatch.delenv("NBINFRA_PROGRESS", raising=False)
        with Progress("q", delay=0.0, interval=0.0) as bar:
            bar.update(1)
            bar.update(2)
        assert asked == [False] and shown.draws == []  # asked once, then given up
        monkeypatch.setenv("NBINFRA_PROGRESS", "on")
        with Progress("q", delay=0.0, interval=0.0) as bar:
            bar.update(3)
        assert asked == [False, True] and [d for _, d in shown.draws] == ["q: 3% · 0 s"]
    finally:
        progress.set_display(previous)
