"""The real IPython shell with nbinfra loaded, seen through a wrapper whose cells re-raise."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell


class TestingShell:
    """The process's ``InteractiveShell``; ``run_cell`` re-raises the cell's exception.

    A wrapper rather than a subclass: the shell is a process-wide singleton that other
    tests use too, and they must keep IPython's normal error display.
    """

    __test__ = False

    def __init__(self, shell: InteractiveShell) -> None:
        object.__setattr__(self, "shell", shell)

    def run_cell(self, raw_cell: str, *args: Any, **kwargs: Any) -> Any:
        result = self.shell.run_cell(raw_cell, *args, **kwargs)
        result.raise_error()
        return result

    def cell(self, source: str) -> Any:
        """Run ``source``; return the cell's value (what Out would show)."""
        return self.run_cell(source).result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.shell, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.shell, name, value)


@pytest.fixture
def _shell() -> TestingShell:
    """The current singleton (another test may have replaced it)."""
    return TestingShell(InteractiveShell.instance())


@pytest.fixture
def ip(_shell: TestingShell) -> Iterator[TestingShell]:
    """The shell with a freshly loaded extension and an empty namespace."""
    _shell.run_line_magic("load_ext", "nbinfra")
    try:
        yield _shell
    finally:
        _shell.run_line_magic("unload_ext", "nbinfra")
        _shell.config.pop("NbinfraMagics", None)  # %config set by a test stays with the shell
        _shell.user_ns.clear()
        _shell.init_user_ns()
