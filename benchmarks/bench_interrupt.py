"""Interrupt latency: from SIGINT to control back, for DuckDB, PostgreSQL and a stream.

A timer thread sends SIGINT to the main thread (what a notebook's Interrupt does) once
the work is under way; the sample is the time from the signal to the call returning.

- DuckDB ``SELECT sum(hash(range)) FROM range(10000000000)``: ``nbinfra.conn().query()``
  (the query runs on a query thread; the interrupt calls ``interrupt()``) vs raw
  ``duckdb`` run on the main thread, which often sees the signal only when its query ends (so
  its query is a shorter one, of a few seconds), and vs raw ``con.interrupt()`` called
  from a second thread (the floor: DuckDB's own stopping time). Target: under 1 s.
- PostgreSQL ``SELECT pg_sleep(60)``: ``nbinfra.conn()`` (the task is cancelled, psycopg
  sends the server a cancel request) vs raw synchronous psycopg (which cancels on
  ``KeyboardInterrupt`` as well). Target: under 1 s.
- A slow stream (one chunk every 20 ms) from the local wire server: nbinfra's
  ``stream_events`` vs the raw ``openai`` SDK's synchronous stream. Target: under 1 s.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from benchmarks import services
from benchmarks.harness import Comparison, settle

AREA = "interrupt"
LONG = "SELECT sum(hash(range)) FROM range(10000000000)"
WAIT = 0.3  # seconds of work before the interrupt


def run(smoke: bool = False) -> list[Comparison]:
    rounds = 2 if smoke else 7
    return [_duckdb(rounds, smoke), _postgres(rounds), _stream(rounds)]


def latency(call: Callable[[], object], ready: Callable[[], bool], wait: float = WAIT) -> float:
    """Seconds from a SIGINT (sent ``wait`` s after ``ready()``) to ``call`` returning."""
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread() is threading.main_thread()
    sent: list[float] = []

    def send() -> None:
        pause = threading.Event()
        while not ready():
            pause.wait(0.005)
        pause.wait(wait)
        sent.append(time.perf_counter())
        signal.pthread_kill(main, signal.SIGINT)

    settle()
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        call()
    except KeyboardInterrupt:
        pass
    else:
        sender.join()
        raise AssertionError("the call finished before the interrupt")
    end = time.perf_counter()
    sender.join()
    return end - sent[0]


def _started_after(seconds: float) -> Callable[[], bool]:
    start = time.monotonic()
    return lambda: time.monotonic() - start >= seconds


def _duckdb(rounds: int, smoke: bool) -> Comparison:
    import duckdb

    from nbinfra.connections.duckdb import DuckDBConnectionManager
    from nbinfra.connections.sync import SyncConnection

    db = SyncConnection(DuckDBConnectionManager(name="bench"))
    db.query("SELECT 1")
    con = db.manager.connection
    raw = duckdb.connect()
    raw.execute("SET enable_progress_bar_print = false").fetchall()
    # progress is tracked (query_progress() > 0 tells the query runs) only when this is on;
    # DuckDB's default for it depends on where it runs
    raw.execute("SET enable_progress_bar = true").fetchall()
    # The main-thread query must end by itself: a few seconds of work.
    short = "SELECT sum(hash(range)) FROM range(300000000)"

    def busy(c: Any) -> Callable[[], bool]:
        return lambda: c.query_progress() > 0

    def floor() -> float:
        done = threading.Event()

        def work() -> None:
            try:
                raw.sql(LONG).fetchall()
            except duckdb.InterruptException:
                done.set()

        worker = threading.Thread(target=work)
        worker.start()
        while raw.query_progress() <= 0:
            time.sleep(0.005)
        time.sleep(WAIT)
        start = time.perf_counter()
        raw.interrupt()
        worker.join()
        assert done.is_set()
        return time.perf_counter() - start

    def raw_main() -> None:
        try:
            raw.sql(short).fetchall()
        except RuntimeError as exc:  # duckdb turns the signal into "Query interrupted"
            raise KeyboardInterrupt from exc

    samples: dict[str, list[float]] = {"nbinfra": [], "raw duckdb (main thread)": [], "floor": []}
    for i in range(rounds):
        samples["nbinfra"].append(latency(lambda: db.query(LONG), busy(con)))
        if i < (1 if smoke else 3):  # up to seconds each: three rounds tell the story
            samples["raw duckdb (main thread)"].append(
                latency(raw_main, _started_after(0.0), wait=0.1)
            )
        samples["floor"].append(floor())
    db.close()
    raw.close()
    return Comparison(
        AREA,
        "DuckDB query interrupted",
        "SIGINT 0.3 s into SELECT sum(hash(range)) FROM range(1e10); seconds until control "
        "returns (raw main thread: a 3e8-row query, which runs to its end)",
        samples,
        nbinfra="nbinfra",
        baseline="floor",
        unit="s",
        max_seconds=1.0,
        notes="floor: raw con.interrupt() from a second thread, the time DuckDB takes to stop.",
    )


def _postgres(rounds: int) -> Comparison:
    import psycopg

    from nbinfra.connections.postgres import PostgresConnectionManager
    from nbinfra.connections.sync import SyncConnection

    server = services.postgres()
    db = SyncConnection(PostgresConnectionManager(name="bench", url=server.url))
    db.query("SELECT 1")
    raw = psycopg.connect(server.url, autocommit=True)
    sleep = "SELECT pg_sleep(60)"
    samples: dict[str, list[float]] = {"nbinfra": [], "raw psycopg": []}
    for _ in range(rounds):
        samples["nbinfra"].append(latency(lambda: db.query(sleep), _started_after(0.0)))
        samples["raw psycopg"].append(
            latency(lambda: raw.execute(sleep).fetchall(), _started_after(0.0))
        )
    # both really stopped the server's work
    left = raw.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = %s", (sleep,)
    ).fetchone()
    assert left == (0,), left
    db.close()
    raw.close()
    return Comparison(
        AREA,
        "PostgreSQL pg_sleep(60) interrupted",
        "SIGINT 0.3 s into SELECT pg_sleep(60); seconds until control returns (the server's "
        "query is cancelled by both)",
        samples,
        nbinfra="nbinfra",
        baseline="raw psycopg",
        unit="s",
        max_seconds=1.0,
    )


def _stream(rounds: int) -> Comparison:
    import openai

    from nbinfra._secrets import Secret
    from nbinfra.llm.openai import OpenAIProvider
    from nbinfra.llm.settings import ProviderSettings
    from nbinfra.llm.sync import SyncLLM
    from nbinfra.testing_llm import LLMWireServer, Reply

    words = [f"w{i} " for i in range(2000)]
    slow = Reply("".join(words), chunks=words, chunk_delay=0.02)
    samples: dict[str, list[float]] = {"nbinfra": [], "raw openai SDK": []}
    with LLMWireServer("openai") as server:
        server.default = slow
        settings = ProviderSettings(api_key=Secret("sk-bench"), base_url=server.base_url())
        llm = SyncLLM(OpenAIProvider("m", settings=settings))
        client = openai.OpenAI(api_key="sk-bench", base_url=server.base_url(), max_retries=0)
        got: list[int] = [0]

        def ours() -> None:
            for _ in llm.stream_events("count"):
                got[0] += 1

        def theirs() -> None:
            stream = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "count"}], stream=True
            )
            with stream:
                for _ in stream:
                    got[0] += 1

        arrived = lambda: got[0] > 0  # noqa: E731
        for _ in range(rounds):
            for name, call in (("nbinfra", ours), ("raw openai SDK", theirs)):
                got[0] = 0
                samples[name].append(latency(call, arrived))
        llm.close()
        client.close()
    return Comparison(
        AREA,
        "LLM stream interrupted",
        "SIGINT 0.3 s into a stream of one chunk per 20 ms; seconds until control returns "
        "(the HTTP stream closed)",
        samples,
        nbinfra="nbinfra",
        baseline="raw openai SDK",
        unit="s",
        max_seconds=1.0,
    )
