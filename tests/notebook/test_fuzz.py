"""Fuzzed argument lines: only UsageError or a one-line nbinfra error, never anything else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from nbinfra.errors import NbinfraError
from nbinfra.notebook._args import HelpRequested
from nbinfra.session import Session, use_session
from tests.notebook.conftest import TestingShell

FUZZ = settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

JUNK = st.text(alphabet=st.sampled_from(list("ab1 -'\"{}[]:$=.\\;*?\t")), max_size=12)


def _line(words: list[str]) -> st.SearchStrategy[str]:
    token = st.one_of(st.sampled_from(words), JUNK)
    return st.lists(token, max_size=7).map(" ".join)


CACHE_WORDS = [
    "get",
    "set",
    "delete",
    "list",
    "stats",
    "clear",
    "use",
    "memory",
    "nope",
    "-n",
    "--namespace",
    "--ttl",
    "--yes",
    "k",
    "1",
    "-1",
    "0",
    "'s'",
    "[1,",
    "2]",
    "{'a':",
    "1}",
    "$x",
    "$",
    "$nope",
    "None",
    "1e999",
    "*",
    "'",
    '"',
    "--",
    "-",
    "-h",
    "--help",
    "confirmation_cache",
]
LLM_WORDS = [
    "-p",
    "--provider",
    "-m",
    "--model",
    "-t",
    "--temperature",
    "--max-tokens",
    "-s",
    "-f",
    "code",
    "json",
    "text",
    "markdown",
    "-o",
    "out",
    "--chat",
    "--strategy",
    "recent",
    "--budget",
    "--no-stream",
    "--no-cache",
    "--no-interpolate",
    "list",
    "use",
    "chats",
    "history",
    "reset",
    "usage",
    "replay",
    "on",
    "off",
    "record",
    "load",
    "0.5",
    "nan",
    "-3",
    "fake",
    "{x}",
    "{{",
    "}}",
    "--",
    "-h",
    "--help",
    "hi",
]
CONN_WORDS = [
    "list",
    "health",
    "use",
    "duckdb",
    "nope",
    "-o",
    "--limit",
    "--params",
    "SELECT",
    "1",
    ";",
    ":x",
    "'",
    '"',
    "-1",
    "--",
    "-h",
    "--help",
    "p",
    "x",
]


def _check(exc: BaseException) -> None:
    if isinstance(exc, HelpRequested):  # -h/--help: the magic prints the help
        assert "usage" in exc.text.lower() or "::" in exc.text
        return
    assert isinstance(exc, (UsageError, NbinfraError)), repr(exc)
    assert "\n" not in str(exc).strip(), str(exc)
    assert str(exc).strip()


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        yield fresh
    fresh.close()


@FUZZ
@given(line=_line(CACHE_WORDS))
def test_cache_lines(ip: TestingShell, session: Session, line: str) -> None:
    ip.user_ns["x"] = {"v": 1}
    try:
        ip.run_line_magic("cache", line)
    except Exception as exc:  # noqa: BLE001 - the check is what this test is about
        _check(exc)


@FUZZ
@given(line=_line(LLM_WORDS))
def test_llm_option_parsing(ip: TestingShell, line: str) -> None:
    """Parsing alone (what every %llm call goes through first)."""
    from nbinfra.notebook._args import parse_options

    parser = ip.find_line_magic("llm").__self__.llm.parser
    try:
        _args, rest = parse_options(parser, line)
    except Exception as exc:  # noqa: BLE001
        _check(exc)
    else:
        assert rest == "" or line.rstrip().endswith(rest)


@FUZZ
@given(line=_line(CONN_WORDS))
def test_conn_option_parsing(ip: TestingShell, line: str) -> None:
    from nbinfra.notebook._args import parse_options

    parser = ip.find_line_magic("conn").__self__.conn.parser
    try:
        parse_options(parser, line)
    except Exception as exc:  # noqa: BLE001
        _check(exc)


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    """DuckDB only, and the fake LLM; files a magic writes land in a temp dir."""
    from tests.notebook.test_conn_magic import write_resources

    monkeypatch.chdir(tmp_path)
    write_resources(tmp_path, "connections:\n  duckdb:\n    database: ':memory:'\n")
    (tmp_path / "application-llm.yaml").write_text("llm:\n  default: fake\n")
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        yield fresh
    fresh.close()


@FUZZ
@given(line=_line(CONN_WORDS))
def test_conn_lines_run(ip: TestingShell, offline: Session, line: str) -> None:
    """Executed for real against DuckDB, line and cell form."""
    ip.user_ns["x"] = 1
    ip.user_ns["p"] = {"x": 2}
    with capture_output():
        for call in (
            lambda: ip.run_line_magic("conn", line),
            lambda: ip.run_cell_magic("conn", line, "SELECT :x AS v"),
        ):
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - the check is what this test is about
                _check(exc)


@FUZZ
@given(line=_line(LLM_WORDS))
def test_llm_lines_run(ip: TestingShell, offline: Session, line: str) -> None:
    """Executed for real on the offline fake provider, line and cell form."""
    ip.user_ns["x"] = 1
    with capture_output():
        for call in (
            lambda: ip.run_line_magic("llm", line),
            lambda: ip.run_cell_magic("llm", line, "a prompt about {x}"),
        ):
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - the check is what this test is about
                _check(exc)
