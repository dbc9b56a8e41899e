"""A real InteractiveShell whose cell errors re-raise, with nbinfra loaded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell


class TestingShell(InteractiveShell):  # type: ignore[misc]
    """``run_cell`` re-raises the cell's exception, so tests fail loudly."""

    __test__ = False

    def run_cell(self, raw_cell: str, *args: Any, **kwargs: Any) -> Any:
        result = super().run_cell(raw_cell, *args, **kwargs)
        result.raise_error()
        return result

    def cell(self, source: str) -> Any:
        """Run ``source``; return the cell's value (what Out would show)."""
        return self.run_cell(source).result


@pytest.fixture(scope="session")
def _shell() -> TestingShell:
    return TestingShell.instance()


@pytest.fixture
def ip(_shell: TestingShell) -> Iterator[TestingShell]:
    """The shell with a freshly loaded extension and an empty namespace."""
    _shell.run_line_magic("load_ext", "nbinfra")
    try:
        yield _shell
    finally:
        _shell.run_line_magic("unload_ext", "nbinfra")
        _shell.user_ns.clear()
        _shell.init_user_ns()
