"""One statement's Spark jobs: a job group (or tag) to cancel them by, and their progress.

Every action nbinfra runs is tagged before it starts, on the thread that runs it (Spark
keeps the group/tag per thread):

- a classic session (local or a cluster master): ``sc.setJobGroup(group, ...,
  interruptOnCancel=True)``; ``cancel()`` is ``sc.cancelJobGroup(group)``, which also
  interrupts the running tasks. Progress is read from ``sc.statusTracker()``: the tasks
  completed over the tasks of every stage of the group's jobs.
- Spark Connect: ``spark.addTag(tag)``; ``cancel()`` is ``spark.interruptTag(tag)``.
  Connect has no status tracker on the client, so there is no percentage: the display
  shows elapsed time only.

``percent()`` reads the tracker only when a display is there to show it and at most once
per redraw interval, so a query nobody watches pays nothing for it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

from nbinfra.progress import Progress

__all__ = ["JobGroup"]


class JobGroup:
    """The jobs of one statement on ``spark`` (classic when ``classic``)."""

    def __init__(self, spark: Any, *, classic: bool, description: str) -> None:
        self.spark = spark
        self.classic = classic
        self.description = description[:200]
        self.id = f"nbinfra-{uuid.uuid4().hex[:16]}"
        self._read_at = 0.0
        self._percent: float | None = None

    # -- on the thread that runs the action -----------------------------------------
    def __enter__(self) -> JobGroup:
        if self.classic:
            self.spark.sparkContext.setJobGroup(self.id, self.description, True)
        else:
            self.spark.addTag(self.id)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):  # a stopped session has nothing to clear
            if self.classic:
                self.spark.sparkContext._jsc.clearJobGroup()
            else:
                self.spark.removeTag(self.id)

    # -- from any thread --------------------------------------------------------------
    def cancel(self) -> None:
        """Cancel the group's jobs, running tasks interrupted (safe to call again)."""
        with contextlib.suppress(Exception):  # nothing running, or the session is gone
            if self.classic:
                self.spark.sparkContext.cancelJobGroup(self.id)
            else:
                self.spark.interruptTag(self.id)

    def job_ids(self) -> list[int]:
        """The group's job ids known to the status tracker (classic sessions only)."""
        if not self.classic:
            return []
        return list(self.spark.sparkContext.statusTracker().getJobIdsForGroup(self.id))

    def running(self) -> list[int]:
        """The group's jobs still running (classic sessions only)."""
        tracker = self.spark.sparkContext.statusTracker()
        out = []
        for job in self.job_ids():
            info = tracker.getJobInfo(job)
            if info is not None and info.status in ("RUNNING", "UNKNOWN"):
                out.append(job)
        return out

    def percent(self, progress: Progress) -> float | None:
        """Tasks completed over tasks known, in percent; None when nothing is known yet.

        Read only while ``progress`` is being drawn, once per redraw interval.
        """
        if not self.classic:
            return None
        now = time.monotonic()
        if progress.elapsed < progress.delay or now - self._read_at < progress.interval:
            return self._percent
        self._read_at = now
        with contextlib.suppress(Exception):  # the job ended while being read
            tracker = self.spark.sparkContext.statusTracker()
            total = done = 0
            for job in tracker.getJobIdsForGroup(self.id):
                info = tracker.getJobInfo(job)
                for stage_id in info.stageIds if info is not None else ():
                    stage = tracker.getStageInfo(stage_id)
                    if stage is not None:
                        total += stage.numTasks
                        done += stage.numCompletedTasks
            if total:
                self._percent = 100.0 * done / total
        return self._percent
