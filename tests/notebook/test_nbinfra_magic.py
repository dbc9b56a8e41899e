"""%nbinfra reload through a real IPython shell, after a real edit of a resources file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from nbinfra.session import Session, use_session
from tests.notebook.conftest import TestingShell


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    (tmp_path / "application-cache.yaml").write_text("cache:\n  default_ttl: 300\n")
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        yield fresh
    fresh.close()


def test_reload_closes_what_changed_and_says_so(
    ip: TestingShell, session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_line_magic("cache", "set k 1")
    ip.run_line_magic("conn", "duckdb SELECT 1")
    memory, duckdb = session.peek("cache", "memory"), session.peek("connection", "duckdb")
    capsys.readouterr()
    ip.run_cell("%nbinfra reload")
    assert capsys.readouterr().out.strip() == (
        "Configuration reloaded; no open cache, connection or LLM had changed settings."
    )
    (tmp_path / "application-cache.yaml").write_text("cache:\n  memory:\n    max_size: 5\n")
    ip.run_cell("%nbinfra reload")
    assert capsys.readouterr().out.strip() == (
        "Configuration reloaded; closed (built again on next use): cache:memory."
    )
    assert session.peek("cache", "memory") is None
    assert session.peek("connection", "duckdb") is duckdb
    ip.run_line_magic("cache", "set k 2")
    rebuilt = session.peek("cache", "memory")
    assert rebuilt is not memory and rebuilt.max_size == 5


def test_unknown_commands_and_help(
    ip: TestingShell, session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.user_ns["x"] = "reload"
    with pytest.raises(UsageError, match=r"unknown command '\$x'\. Usage: %nbinfra reload"):
        ip.run_cell("%nbinfra $x")  # not expanded: nothing on the line is Python
    with pytest.raises(UsageError, match="unknown command 'reload now'"):
        ip.run_cell("%nbinfra reload now")
    for line in ("%nbinfra -h", "%nbinfra"):
        ip.run_cell(line)
        assert capsys.readouterr().out.startswith("Usage: %nbinfra reload")


def test_unload_removes_the_magic(ip: TestingShell) -> None:
    assert "nbinfra" in ip.magics_manager.magics["line"]
    ip.run_line_magic("unload_ext", "nbinfra")
    try:
        assert "nbinfra" not in ip.magics_manager.magics["line"]
        assert "AdminMagics" not in ip.magics_manager.registry
    finally:
        ip.run_line_magic("load_ext", "nbinfra")
