"""nbinfra's progress display in a notebook: one output line in the running cell.

Installed by ``%load_ext nbinfra`` as the display of ``nbinfra.progress``. Drawn in a
kernel (JupyterLab, Notebook, VS Code), where an output can be updated in place and
removed; a terminal shell would print every update, so there it stays off unless
``NBINFRA_PROGRESS=on``.
"""

from __future__ import annotations

from typing import Any

from nbinfra.notebook.display import escape, show
from nbinfra.progress import ProgressDisplay, describe

__all__ = ["CellProgress", "factory"]


class CellProgress:
    """A display handle in the running cell: a bar and ``label: 37% · 4 s``."""

    def __init__(self) -> None:
        self._handle: Any = None

    def draw(self, label: str, percent: float | None, elapsed: float) -> None:
        text = describe(label, percent, elapsed)
        bar = (
            "<progress></progress>"  # indeterminate
            if percent is None
            else f'<progress value="{percent:.1f}" max="100"></progress>'
        )
        bundle = {"text/plain": text, "text/html": f"{bar} <code>{escape(text)}</code>"}
        if self._handle is None:
            self._handle = show(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)

    def remove(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.update({"text/plain": ""}, raw=True)


def factory(shell: Any) -> Any:
    """The ``nbinfra.progress`` display factory for ``shell``."""

    def create(forced: bool) -> ProgressDisplay | None:
        if forced or getattr(shell, "kernel", None) is not None:
            return CellProgress()
        return None

    return create
