"""An interrupt in a real IPython shell: one line, the work cancelled, the partial kept.

A timer thread sends SIGINT to the main thread while a cell runs, as a notebook's
Interrupt does; the cell then shows one line (no traceback) and the next cell works.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from IPython.utils.capture import capture_output

from nbinfra.errors import Interrupted
from nbinfra.session import Session
from nbinfra.testing_llm import LLMWireServer, Reply
from tests.notebook import test_conn_magic, test_llm_magic
from tests.notebook.conftest import TestingShell

# The sessions of the magics' own tests: DuckDB in memory; DuckDB and PostgreSQL ("pg");
# the OpenAI wire server and a session pointing at it.
duck = test_conn_magic.duck
both = test_conn_magic.both
wire = test_llm_magic.wire
llm_session = test_llm_magic.llm_session

LONG_DUCKDB = "SELECT sum(hash(range)) FROM range(10000000000)"  # minutes of work
pytestmark = pytest.mark.timeout(120)  # an interrupt that does not work hangs the cell


def interrupt_when(ready: Callable[[], bool], *, after: float = 0.3) -> threading.Thread:
    """SIGINT to the main thread once ``ready()`` holds (polled), ``after`` s later."""
    main = threading.main_thread().ident
    assert main is not None

    def send() -> None:
        stop = threading.Event()
        while not ready():
            stop.wait(0.02)
        stop.wait(after)
        signal.pthread_kill(main, signal.SIGINT)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    return sender


def run_interrupted(ip: TestingShell, source: str, ready: Callable[[], bool]) -> tuple[Any, str]:
    """Run ``source`` in the real shell (IPython's own error display), interrupted."""
    sender = interrupt_when(ready)
    with capture_output() as cap:
        result = ip.shell.run_cell(source)
    sender.join(10)
    return result, cap.stdout + cap.stderr


def assert_one_line(text: str, line: str) -> None:
    assert line in text, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert text.strip() == line, text  # nothing else: no stack, no half-printed output


def _duckdb_busy(session: Session) -> Callable[[], bool]:
    from nbinfra.connections import conn

    manager = conn("duckdb").manager
    start = time.monotonic()

    def busy() -> bool:  # the query is running (or, whatever DuckDB says, 2 s passed)
        con = manager._con
        return (con is not None and con.query_progress() > 0) or time.monotonic() - start > 2

    return busy


def test_duckdb_query_interrupts_at_once_and_the_next_cell_runs(
    ip: TestingShell, duck: Session
) -> None:
    before = ip.cell("%conn duckdb SELECT 1")  # connected: the query's progress is watched
    result, text = run_interrupted(ip, f"%conn duckdb {LONG_DUCKDB}", _duckdb_busy(duck))
    assert isinstance(result.error_in_exec, Interrupted)
    assert_one_line(text, "Interrupted: the query was cancelled in DuckDB")
    assert ip.user_ns["_conn"] is before  # nothing kept from a query that did not finish
    assert ip.cell("%conn duckdb SELECT 42 AS answer").rows == [(42,)]


def test_duckdb_script_cell_interrupts_and_the_connection_stays_usable(
    ip: TestingShell, duck: Session
) -> None:
    ip.cell("%%conn duckdb\nCREATE TABLE t AS SELECT 1 AS i")
    source = f"%%conn duckdb\nINSERT INTO t VALUES (2);\n{LONG_DUCKDB}"
    result, text = run_interrupted(ip, source, _duckdb_busy(duck))
    assert isinstance(result.error_in_exec, Interrupted)
    assert_one_line(text, "Interrupted: the query was cancelled in DuckDB")
    assert ip.cell("%%conn duckdb\nSELECT count(*) FROM t").rows[0][0] in (1, 2)


def test_duckdb_own_progress_bar_is_off(ip: TestingShell, duck: Session) -> None:
    rows = ip.cell(
        "%conn duckdb SELECT current_setting('enable_progress_bar_print') AS printed, "
        "current_setting('enable_progress_bar') AS tracked"
    ).rows
    assert rows == [(False, True)]  # DuckDB's bar off; progress still tracked for ours


def _interrupted_outputs(ip: TestingShell, duck: Session, after: float) -> list[Any]:
    """The display outputs of a long DuckDB query interrupted ``after`` s in."""
    ip.cell("%conn duckdb SELECT 1")
    sender = interrupt_when(_duckdb_busy(duck), after=after)
    with capture_output() as cap:
        result = ip.shell.run_cell(f"%conn duckdb {LONG_DUCKDB}")
    sender.join(10)
    assert isinstance(result.error_in_exec, Interrupted)
    return list(cap.outputs)


def test_progress_shows_for_a_long_query_throttled_then_disappears(
    ip: TestingShell, duck: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBINFRA_PROGRESS", "on")
    with capture_output() as fast:
        ip.cell("%conn duckdb SELECT count(*) FROM range(1000)")
    assert fast.outputs == []  # a fast query shows nothing

    outputs = _interrupted_outputs(ip, duck, after=1.5)
    texts = [o.data.get("text/plain", "") for o in outputs]
    drawn = [t for t in texts if t]
    assert drawn and all(re.fullmatch(r"duckdb: query: \d+% · \d+ s", t) for t in drawn), texts
    assert texts[-1] == ""  # removed at the end (an update to an empty output)
    assert all(o.update for o in outputs[1:])  # one output, updated in place
    # shown after 0.5 s, then at most ~10 redraws a second, only when the text changes
    assert len(outputs) <= 2 + 10 * 2.5, len(outputs)


def test_progress_off_under_nbval(
    ip: TestingShell, duck: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBINFRA_PROGRESS", "off")
    assert _interrupted_outputs(ip, duck, after=1.0) == []


# -- PostgreSQL -------------------------------------------------------------------------
@pytest.mark.service
def test_postgres_pg_sleep_is_cancelled_on_the_server(ip: TestingShell, both: Session) -> None:
    marker = "nbinfra_interrupt_test"
    probe = (
        "%conn pg SELECT count(*) FROM pg_stat_activity "
        f"WHERE state = 'active' AND query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
    )
    ip.cell("%conn pg SELECT 1")
    watcher = _postgres_watcher(both, marker)
    result, text = run_interrupted(ip, f"%%conn pg\nSELECT pg_sleep(60) AS {marker}", watcher)
    assert isinstance(result.error_in_exec, Interrupted)
    assert_one_line(text, "Interrupted: the query was cancelled on the server")
    assert ip.cell(probe).rows == [(0,)]  # no longer running on the server
    assert ip.cell("%conn pg SELECT 41 + 1").rows == [(42,)]


def _postgres_watcher(session: Session, marker: str) -> Callable[[], bool]:
    """True once the server runs the marked query (checked on a connection of its own)."""
    import psycopg

    url = session.settings.get("connections")["pg"]["url"]

    def running() -> bool:
        with psycopg.connect(url, autocommit=True) as con:
            row = con.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE %s AND pid <> pg_backend_pid()",
                (f"%{marker}%",),
            ).fetchone()
        return bool(row and row[0])

    return running


# -- streaming %%llm ----------------------------------------------------------------------
def test_streaming_llm_keeps_the_partial_answer(
    ip: TestingShell, llm_session: Session, wire: LLMWireServer
) -> None:
    words = [f"w{i} " for i in range(400)]
    wire.push(Reply("".join(words), chunks=words, chunk_delay=0.02))
    seen = lambda: bool(wire.requests)  # noqa: E731 - the stream has been asked for
    with capture_output() as cap:
        sender = interrupt_when(seen, after=0.8)
        result = ip.shell.run_cell("%%llm -p openai -o answer\nCount for me")
        sender.join(10)
    assert isinstance(result.error_in_exec, Interrupted)
    text = cap.stdout + cap.stderr
    match = re.fullmatch(
        r"Interrupted after (\d+) chunks; the partial answer is in `_llm`", text.strip()
    )
    assert match, text
    partial = ip.user_ns["_llm"]
    assert ip.user_ns["answer"] is partial
    count = int(match.group(1))
    assert 0 < count < len(words)
    assert partial.content == "".join(words[:count])  # every chunk that arrived, in order
    assert partial.finish_reason == "interrupted"
    assert partial.usage.output_tokens > 0 and not partial.usage.exact
    shown = cap.outputs[-1].data["text/plain"]
    assert shown.startswith(partial.content.strip()[:50])  # the cell shows the partial text
    # the next cell works, on the same provider
    wire.push(Reply("done"))
    ip.cell("%%llm -p openai --no-stream -o after\nAnything")
    assert ip.user_ns["after"].content == "done"


def test_an_interrupt_nothing_described_is_still_one_line(
    ip: TestingShell, llm_session: Session, wire: LLMWireServer
) -> None:
    from nbinfra.testing_llm import Fault

    wire.push(Fault.hang(seconds=20))
    asked = lambda: bool(wire.requests)  # noqa: E731
    result, text = run_interrupted(ip, "%llm -p openai --no-stream Say hi", asked)
    assert isinstance(result.error_in_exec, Interrupted)
    assert_one_line(text, "Interrupted: the LLM call was stopped")
    assert "_llm" not in ip.user_ns
