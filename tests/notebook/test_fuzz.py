"""Fuzzed cells through the real IPython shell, every magic form, as a user would run them.

Each generated line (or cell) goes through ``InteractiveShell.run_cell``: IPython's input
transformers, the magic, the display hook and IPython's own error display. Across at least
``EXAMPLES`` cells per form (``%llm``, ``%%llm``, ``%cache``, ``%conn``, ``%%conn``), with
braces, ``$``, quotes, NUL bytes, unicode, 60,000-character lines, injected expressions and
option-like tokens (``fuzz_inputs.py``), the suite asserts:

- no Python traceback: an error is a ``UsageError`` or an nbinfra error shown as one line
  (IPython's traceback display is watched, and the cell's output searched);
- no cell takes more than ``CELL_LIMIT`` seconds;
- no file is created: the working directory (a fresh temp dir) stays empty, and the
  sentinel path that an injected expression would write stays absent;
- ``get_ipython``, ``In`` and ``Out`` are the shell's own objects afterwards, with nothing
  removed from them.

Everything runs offline: DuckDB in memory, the memory cache and the fake LLM provider.
Hypothesis is derandomized (the same cells on every run) and keeps no example database.
Problems are collected over the whole run and reported together, grouped by kind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from nbinfra.errors import NbinfraError
from nbinfra.session import Session, use_session
from tests.notebook.conftest import TestingShell
from tests.notebook.fuzz_inputs import LONG, SENTINEL, body, first_line, line

EXAMPLES = 2_000  # generated cells per magic form
LONG_EXAMPLES = 12  # and generated cells of LONG characters (IPython's own tokenizer
# takes about 0.1 s over one, before the magic runs)
CELL_LIMIT = 10.0  # seconds
PARSE_EXAMPLES = 500  # lines per parser alone (the cells above already parse 2,000 each)

FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,  # no .hypothesis directory: the run must create no file
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # problems are collected, nothing to shrink
    suppress_health_check=list(HealthCheck),
)
# The user's variables the generated cells refer to ($x, {p[x]}, :x, --params p ...).
VARIABLES: dict[str, Any] = {"x": 1, "p": {"x": 2}, "word": "hello", "y": "x' OR '1'='1"}


class Harness:
    """Runs cells in the shell and records every broken promise."""

    def __init__(self, shell: InteractiveShell, cwd: Path, sentinel: Path) -> None:
        self.shell, self.cwd, self.sentinel = shell, cwd, sentinel
        ns = shell.user_ns
        self.own = {name: ns[name] for name in ("get_ipython", "In", "Out")}
        self.cells = 0
        self.long = 0
        self.slowest = (0.0, "")
        self.problems: dict[str, list[str]] = {}
        self._shown: list[tuple[type[BaseException], list[str]]] = []

    # IPython's error display ends in _showtraceback(etype, evalue, stb) for everything but
    # a UsageError (which it prints as one line itself); record what it was given.
    def showtraceback(self, etype: type[BaseException], evalue: Any, stb: list[str]) -> None:
        self._shown.append((etype, list(stb)))

    def run(self, cell: str) -> None:
        cell = cell.replace(SENTINEL, str(self.sentinel))
        self.shell.user_ns.update(VARIABLES)
        shown = len(self._shown)
        in_before, out_before = len(self.own["In"]), len(self.own["Out"])
        start = time.perf_counter()
        with capture_output(display=False) as out:
            result = self.shell.run_cell(cell, store_history=True)
        elapsed = time.perf_counter() - start
        self.cells += 1
        self.long += len(cell) >= LONG
        self.slowest = max(self.slowest, (elapsed, cell[:120]))
        if elapsed > CELL_LIMIT:
            self._problem(f"over {CELL_LIMIT:g} s", cell, f"{elapsed:.1f} s")
        for error in (result.error_before_exec, result.error_in_exec):
            if error is not None and not _one_line_error(error):
                self._problem(f"raised {type(error).__name__}", cell, repr(error)[:300])
        for etype, stb in self._shown[shown:]:
            if not (issubclass(etype, NbinfraError) and _one_line("".join(stb))):
                self._problem(f"traceback shown: {etype.__name__}", cell, "".join(stb)[-300:])
        for name, text in (("stdout", out.stdout), ("stderr", out.stderr)):
            if "Traceback (most recent call last)" in text:
                self._problem(f"traceback text on {name}", cell, text[-300:])
        created = sorted(os.listdir(self.cwd))
        if created:
            self._problem("file created in the working directory", cell, repr(created))
            _empty(self.cwd)
        if self.sentinel.exists():
            self._problem("sentinel file written", cell, str(self.sentinel))
            self.sentinel.unlink()
        self._check_namespace(cell, in_before, out_before)

    def _check_namespace(self, cell: str, in_before: int, out_before: int) -> None:
        ns = self.shell.user_ns
        for name, own in self.own.items():
            if ns.get(name) is not own:
                self._problem(f"{name} replaced", cell, repr(ns.get(name))[:200])
                ns[name] = own  # repair, so that the next cells still test something
        if len(self.own["In"]) < in_before or len(self.own["Out"]) < out_before:
            self._problem("In/Out emptied", cell, "")

    def _problem(self, kind: str, cell: str, detail: str) -> None:
        self.problems.setdefault(kind, []).append(f"{cell[:200]!r} -> {detail}")

    def report(self) -> str:
        lines = []
        for kind, cases in sorted(self.problems.items()):
            lines.append(f"{kind}: {len(cases)} cell(s), e.g.")
            lines += [f"    {case}" for case in cases[:3]]
        return "\n".join(lines)


def _one_line(text: str) -> bool:
    return bool(text.strip()) and "\n" not in text.strip()


def _one_line_error(error: BaseException) -> bool:
    return isinstance(error, (UsageError, NbinfraError)) and _one_line(str(error))


def _empty(folder: Path) -> None:
    import shutil

    for child in folder.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


DEAD = "127.0.0.1:1"  # nothing listens there: a connection is refused at once
# Every kind (and alias) a line may name resolves to something offline that writes no file:
# in-memory engines, and servers that refuse the connection (the "service is down" path).
RESOURCES = {
    "application-db.yaml": f"""
default_connection: duckdb
connections:
  duckdb: {{database: ':memory:'}}
  postgres: {{url: 'postgresql://fuzz@{DEAD}/fuzz', connect_timeout: 1, retries: 0}}
  mongodb: {{url: 'mongodb://{DEAD}', connect_timeout: 1, retries: 0}}
  redis: {{url: 'redis://{DEAD}', connect_timeout: 1, retries: 0}}
  pg: {{kind: postgres, url: 'postgresql://fuzz@{DEAD}/fuzz', connect_timeout: 1, retries: 0}}
  postgresql: {{kind: postgres, url: 'postgresql://fuzz@{DEAD}/fuzz', connect_timeout: 1}}
  mongo: {{kind: mongodb, url: 'mongodb://{DEAD}', connect_timeout: 1, retries: 0}}
  sql: {{url: 'mysql+pymysql://fuzz@{DEAD}/fuzz', connect_timeout: 1, retries: 0}}
  spark: {{remote: 'sc://{DEAD}', connect_timeout: 1, retries: 0}}
""",
    "application-vector.yaml": f"""
connections:
  qdrant: {{location: ':memory:'}}
  chromadb: {{path: ':memory:'}}
  chroma: {{kind: duckdb, database: ':memory:'}}  # one Chroma client only: two race at start
  pgvector: {{url: 'postgresql://fuzz@{DEAD}/fuzz', connect_timeout: 1, retries: 0}}
""",
    "application-external.yaml": f"""
connections:
  confluence: {{url: 'http://{DEAD}', timeout: 1}}
  jira: {{url: 'http://{DEAD}', timeout: 1}}
  s3: {{bucket: fuzz, endpoint_url: 'http://{DEAD}', connect_timeout: 1, max_attempts: 1}}
""",
    "application-cache.yaml": f"""
cache:
  backend: memory
  redis: {{url: 'redis://{DEAD}', socket_connect_timeout: 0.2, socket_timeout: 0.2}}
""",
    "application-llm.yaml": "llm:\n  default: fake\n  max_retries: 0\n  connect_timeout: 1\n"
    "  timeout: 2\n  providers:\n"
    + "".join(
        f"    {kind}: {{base_url: 'http://{DEAD}'}}\n"
        for kind in ("openai", "groq", "anthropic", "google", "huggingface", "ollama")
    )
    + f"    azure: {{endpoint: 'http://{DEAD}'}}\n",
}


@pytest.fixture
def harness(ip: TestingShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """The shell with nbinfra loaded, offline resources, an empty temp working directory."""
    from nbinfra.connections import ConnectionType

    shell: InteractiveShell = ip.shell
    resources, cwd, outside = (tmp_path / d for d in ("resources", "cwd", "outside"))
    for folder in (resources, cwd, outside):
        folder.mkdir()
    for name, text in RESOURCES.items():
        (resources / name).write_text(text)
    monkeypatch.chdir(cwd)
    history = shell.history_manager
    # Inputs stay in memory: ten thousand cells are not written to the profile's database.
    monkeypatch.setattr(history, "db_cache_size", 10**9)
    in_start, raw_start = len(history.input_hist_parsed), len(history.input_hist_raw)
    session = Session(resources=resources)
    configured = set(session.settings.get("connections", {}))
    assert {str(t.value) for t in ConnectionType} <= configured, "configure every kind above"
    with use_session(session):
        fuzz = Harness(shell, cwd, outside / "sentinel")
        monkeypatch.setattr(shell, "_showtraceback", fuzz.showtraceback)
        with capture_output():  # first use imports SDKs (seconds): not what a cell's time is about
            for cell in ("%conn list", "%cache stats", "%llm hi"):
                shell.run_cell(cell)
        try:
            yield fuzz
        finally:
            with history.db_input_cache_lock:
                history.db_input_cache.clear()
            with history.db_output_cache_lock:
                history.db_output_cache.clear()
            del history.input_hist_parsed[in_start:]
            del history.input_hist_raw[raw_start:]
            history.output_hist.clear()
    session.close()


def _fuzz(fuzz: Harness, cells: st.SearchStrategy[str], examples: int) -> None:
    @settings(FUZZ, max_examples=examples)
    @given(cells)
    def one(cell: str) -> None:
        fuzz.run(cell)

    one()


def _line_cells(form: str, long: bool) -> st.SearchStrategy[str]:
    return line(form, long=long).map(lambda text: f"%{form} {text}")


def _cell_cells(form: str, long: bool) -> st.SearchStrategy[str]:
    return st.builds(
        lambda first, text: f"%%{form} {first}\n{text}", first_line(form), body(form, long=long)
    )


FORMS: dict[str, Callable[[bool], st.SearchStrategy[str]]] = {
    "%llm": lambda long: _line_cells("llm", long),
    "%%llm": lambda long: _cell_cells("llm", long),
    "%cache": lambda long: _line_cells("cache", long),
    "%conn": lambda long: _line_cells("conn", long),
    "%%conn": lambda long: _cell_cells("conn", long),
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "form", list(FORMS), ids=lambda f: f.strip("%") + ("-cell" if f.startswith("%%") else "-line")
)
def test_generated_cells_keep_the_promises(harness: Harness, form: str) -> None:
    started = time.process_time()
    _fuzz(harness, FORMS[form](False), EXAMPLES)
    _fuzz(harness, FORMS[form](True), LONG_EXAMPLES)
    cpu = time.process_time() - started
    print(
        f"{form}: {harness.cells} cells ({harness.long} long) in {cpu:.1f} s of CPU; "
        f"slowest {harness.slowest[0]:.2f} s: {harness.slowest[1]!r}"
    )
    assert not harness.problems, f"over {harness.cells} cells:\n{harness.report()}"
    assert harness.cells >= EXAMPLES + LONG_EXAMPLES, harness.cells
    assert harness.long >= LONG_EXAMPLES, harness.long
    ns = harness.shell.user_ns
    assert ns["get_ipython"]() is harness.shell
    assert ns["In"] is harness.shell.history_manager.input_hist_parsed
    assert ns["Out"] is harness.shell.history_manager.output_hist


# -- the parsers alone: pure, total, and the text they keep is the user's, verbatim ------------
def _parses(parse: Callable[[], Any]) -> Any:
    """``parse()``'s result, or None for the errors a parser may raise (one line each)."""
    from nbinfra.notebook._args import HelpRequested

    try:
        return parse()
    except HelpRequested as help_text:
        assert "options:" in help_text.text  # the magic's help, printed by the magic
    except (UsageError, NbinfraError) as exc:
        assert _one_line(str(exc)), str(exc)
    return None


@settings(FUZZ, max_examples=PARSE_EXAMPLES)
@given(text=line("llm"), body=st.one_of(st.none(), body("llm")))
def test_llm_parse_keeps_the_prompt_verbatim(text: str, body: str | None) -> None:
    from nbinfra.notebook.llm_magic import parse

    parsed = _parses(lambda: parse(text, body))
    if parsed is not None and parsed.command is None:
        assert all(
            part.strip() in (text + "\n" + (body or "")) for part in parsed.prompt.split("\n")
        )


@settings(FUZZ, max_examples=PARSE_EXAMPLES)
@given(text=line("cache"))
def test_cache_parse_takes_only_known_commands(text: str) -> None:
    from nbinfra.notebook.cache_magic import SUBCOMMANDS, parse

    parsed = _parses(lambda: parse(text))
    if parsed is not None:
        assert parsed.command in SUBCOMMANDS and parsed.rest in text


@settings(FUZZ, max_examples=PARSE_EXAMPLES)
@given(text=line("conn"), body=st.one_of(st.none(), body("conn")))
def test_conn_parse_keeps_the_query_verbatim(text: str, body: str | None) -> None:
    from nbinfra.notebook.conn_magic import parse

    parsed = _parses(lambda: parse(text, body))
    if parsed is not None and parsed.command is None:
        assert parsed.query == body if body is not None else parsed.query in text
