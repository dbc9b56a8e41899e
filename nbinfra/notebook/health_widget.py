"""``health_panel()``: every configured connection and cache backend, each row filled in
as its check returns.

The frame is drawn at once (every row ``checking…``); the checks run on nbinfra's loop
(``start_health``) and each one's answer updates the widget from there, so the cell
returns at once and the kernel stays free while a dead server runs out its bound.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from nbinfra._secrets import redact
from nbinfra.notebook import tables
from nbinfra.notebook.tables import Column, mark

__all__ = ["COLUMNS", "panel"]

COLUMNS: list[str | Column] = [
    "",
    "name",
    "kind",
    "target",
    Column("latency", right=True),
    Column("detail", wide=True),
]

Row = tuple[str, str, str, str, str, str]


def _latency(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.1f} ms"


def _row(name: str, kind: str, status: Any) -> Row:
    from nbinfra.notebook import health

    if kind == "cache":
        detail = "" if status.ok else str(status.error or "")
    else:
        detail = status.server_version or "" if status.ok else health.detail(name, status)
    return (
        mark(status.state),
        name,
        kind,
        status.target,  # the manager's: what the connection really uses
        _latency(status.latency),
        detail,
    )


class _Panel:
    """The rows and the widgets showing them; one run of the checks at a time."""

    def __init__(self, w: Any, connections: bool, caches: bool) -> None:
        self.connections = connections
        self.caches = caches
        self.table = w.HTML()
        self.checked = w.HTML()
        self.refresh = w.Button(description="refresh", icon="refresh")
        self.box = w.VBox([w.HBox([self.refresh, self.checked]), self.table])
        self.lock = threading.Lock()
        self.slots: dict[tuple[str, str], Row] = {}
        self.run = 0
        self.future: Any = None

    def start(self, *_: Any) -> None:
        from nbinfra.connections.health import start_health
        from nbinfra.notebook import health

        specs = health.specs() if self.connections else {}
        with self.lock:
            self.run += 1
            run = self.run

        def filled(group: str, name: str, status: Any) -> None:
            kind = "cache" if group == "cache" else specs[name].kind
            self._set(run, ("connection" if group != "cache" else "cache", name), kind, status)

        started = start_health(
            list(specs), caches=self.caches, slow_hint=health.slow_hint, on_status=filled
        )
        with self.lock:
            if run != self.run:
                return
            slots: dict[tuple[str, str], Row] = {}
            waiting = mark("checking")
            for name in started.connections:
                spec = specs[name]
                slots["connection", name] = (
                    waiting,
                    name,
                    spec.kind,
                    redact(str(getattr(spec, "target", "") or "")),
                    "",
                    "",
                )
            for kind in started.caches:
                slots["cache", kind] = (waiting, kind, "cache", "", "", "")
            for key, row in self.slots.items():  # answers that came back already
                if key in slots and row[0] != "checking\u2026":
                    slots[key] = row
            self.slots = slots
            for name, status in started.ready.items():
                self.slots["connection", name] = _row(name, specs[name].kind, status)
            self.future = started.future
            self._render()
        started.future.add_done_callback(lambda _: self._finished(run))

    def _set(self, run: int, key: tuple[str, str], kind: str, status: Any) -> None:
        with self.lock:
            if run != self.run:
                return
            self.slots[key] = _row(key[1], kind, status)
            self._render()

    def _finished(self, run: int) -> None:
        with self.lock:
            if run == self.run:
                self.checked.value = f"<small>checked {time.strftime('%H:%M:%S')}</small>"

    def _render(self) -> None:
        rows = list(self.slots.values())
        self.box.rows = rows
        self.table.value = tables.html(COLUMNS, rows)
        pending = sum(1 for row in rows if row[0] == "checking\u2026")
        if pending:
            self.checked.value = f"<small>checking {pending} of {len(rows)}\u2026</small>"


def panel(w: Any, *, connections: bool = True, caches: bool = True) -> Any:
    """The panel (an ipywidgets ``VBox``): ``.rows`` as they stand, ``.wait(timeout)`` for
    every check to return (it returns the panel), ``.refresh`` to check again."""
    state = _Panel(w, connections, caches)
    box = state.box
    box.table = state.table
    box.refresh = state.refresh
    box.checked = state.checked
    box.rows = []

    def wait(timeout: float | None = None) -> Any:
        """Block until every check has returned (or ``timeout``); the panel."""
        state.future.result(timeout)
        return box

    box.wait = wait
    state.refresh.on_click(state.start)
    state.start()
    return box
