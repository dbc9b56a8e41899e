"""``map`` over the official openai SDK and a local wire server, asserted by the server's counts."""

from __future__ import annotations

import _thread
import asyncio
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel

from nbinfra.errors import ConfigError, ProviderServerError
from nbinfra.llm.base import BaseLLMProvider
from nbinfra.llm.durable import FileKeyValueStore
from nbinfra.llm.replay import MemoryKeyValueStore, ResponseStore
from nbinfra.llm.sync import SyncLLM
from nbinfra.session import Session, use_session
from nbinfra.testing_llm import Chaos, Fault, LLMWireServer, Reply, ServerLimit
from tests.llm.conftest import Wire, provider_for


@pytest.fixture(autouse=True)
def fresh_session(tmp_path: Path) -> Iterator[Session]:
    """Limiters live in the session: each test starts with none."""
    session = Session(resources=tmp_path)
    with use_session(session):
        yield session
    session.close()


@pytest.fixture
def wire(wire_factory: Wire) -> LLMWireServer:
    return wire_factory("openai")


_MADE: list[BaseLLMProvider] = []


@pytest.fixture(autouse=True)
def _close_providers() -> Iterator[None]:
    yield
    while _MADE:
        SyncLLM(_MADE.pop()).close()


def _provider(server: LLMWireServer, **kw: Any) -> BaseLLMProvider:
    provider = provider_for("openai", server, max_retries=0, **kw)
    _MADE.append(provider)
    return provider


def _llm(server: LLMWireServer, **kw: Any) -> SyncLLM:
    return SyncLLM(_provider(server, **kw))


def _texts(n: int, tag: str = "t") -> pd.DataFrame:
    index = [f"r{i}" for i in range(n)]
    return pd.DataFrame({"text": [f"{tag} {i}" for i in range(n)]}, index=index)


def test_frame_is_aligned_and_a_rerun_sends_nothing(wire: LLMWireServer, tmp_path: Path) -> None:
    wire.latency = 0.01
    llm = _llm(wire)
    df = _texts(30)
    store = str(tmp_path / "answers.jsonl")
    out = llm.map(df, "Classify: {text}", concurrency=4, store=store, progress=False)
    assert list(out.index) == list(df.index)
    assert list(out.columns) == [
        "answer", "prompt_tokens", "completion_tokens", "cost", "latency",
        "provider", "model", "cached", "error",
    ]  # fmt: skip
    assert out["error"].isna().all() and (out["answer"] == wire.default.text).all()
    assert (out["prompt_tokens"] == 10).all() and (out["completion_tokens"] == 7).all()
    assert out["cost"].iloc[0] == pytest.approx((10 * 0.15 + 7 * 0.60) / 1e6)
    assert set(out["provider"]) == {"openai"} and not out["cached"].any()
    # the template was filled per row with the row's column
    sent = sorted(r.json()["messages"][-1]["content"] for r in wire.requests if "chat" in r.path)
    assert sent == sorted(f"Classify: t {i}" for i in range(30))
    assert wire.traffic.count == 30
    wire.traffic.clear()
    again = llm.map(df, "Classify: {text}", concurrency=4, store=store, progress=False)
    assert wire.traffic.count == 0 and again["cached"].all()
    assert again["answer"].tolist() == out["answer"].tolist()
    summary = again.attrs["nbinfra_map"]
    assert summary.from_store == 30 and summary.requests == 0


def test_concurrency_never_exceeds_n(wire: LLMWireServer) -> None:
    wire.latency = 0.03
    out = _llm(wire).map([f"p{i}" for i in range(40)], concurrency=5, store=_memory())
    assert out["error"].isna().all()
    assert wire.traffic.count == 40
    assert wire.traffic.max_in_flight == 5  # used, and never passed


def test_rate_limit_is_never_exceeded_by_more_than_one_burst(wire: LLMWireServer) -> None:
    rpm = 1200  # 20 a second, a burst of one second's worth
    wire.limit = ServerLimit(rpm=rpm)
    wire.latency = 0.005
    start = time.monotonic()
    out = _llm(wire).map([f"p{i}" for i in range(60)], concurrency=16, rpm=rpm, store=_memory())
    elapsed = time.monotonic() - start
    assert out["error"].isna().all()
    burst = rpm / 60
    for window in (0.5, 1.0, 2.0):
        assert wire.traffic.window_max(window) <= rpm / 60 * window + burst + 1
    assert wire.traffic.answered(429) <= 2  # the server's own limit was (almost) never hit
    assert elapsed >= (60 - burst) / (rpm / 60) * 0.9  # it did wait for the bucket


def test_429s_slow_the_whole_batch_not_each_row(
    wire: LLMWireServer, fresh_session: Session
) -> None:
    # The client thinks 6,000 rpm; the server allows 600 (10 a second, a burst of 10).
    wire.limit = ServerLimit(rpm=600)
    llm = _llm(wire)
    out = llm.map([f"p{i}" for i in range(40)], concurrency=16, rpm=6000, store=_memory())
    assert out["error"].isna().all()  # 0 failed rows
    refused = wire.traffic.answered(429)
    # Rows retrying on their own would be refused again and again while the server
    # refills; the shared gate holds everyone back for each Retry-After.
    assert refused <= 40
    (limiter,) = fresh_session.state["llm.limiters"].values()
    assert limiter.limited == refused > 0 and limiter.cuts >= 1  # the rate came down
    assert wire.traffic.count == 40 + refused


def test_random_429s_and_5xx_are_absorbed(wire: LLMWireServer) -> None:
    wire.chaos = Chaos(seed=3, rate_limited=0.1, server_errors=0.05, cuts=0.05, retry_after=0.02)
    out = _llm(wire).map([f"p{i}" for i in range(60)], concurrency=8, store=_memory())
    assert out["error"].isna().all()
    assert wire.traffic.answered(429) > 0 and wire.traffic.answered(500) > 0
    cut = wire.traffic.count - wire.traffic.answered(429) - wire.traffic.answered(500) - 60
    assert cut > 0  # answers cut mid-body were asked again


def test_failed_rows_are_retried_once_then_reported(wire: LLMWireServer) -> None:
    llm = _llm(wire)
    wire.push(Fault.server_error())  # the first row fails once, then succeeds at the end
    out = llm.map(["a", "b", "c"], concurrency=1, store=_memory())
    assert out["error"].isna().all() and wire.traffic.count == 4
    wire.reset()
    wire.chaos = Chaos(server_errors=1.0)
    out = llm.map(["d", "e", "f"], concurrency=2, store=_memory())
    assert wire.traffic.count == 6  # each row tried twice, not raised
    assert out["error"].str.startswith("ProviderServerError").all()
    assert out["answer"].isna().all()
    with pytest.raises(ProviderServerError):
        llm.map(["g"], errors="raise", store=_memory())


def test_interrupt_keeps_finished_rows_and_the_rerun_sends_only_the_rest(
    wire: LLMWireServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wire.latency = 0.02
    llm = _llm(wire)
    df = _texts(80)
    path = tmp_path / "answers.jsonl"
    stopper = threading.Thread(target=_interrupt_when, args=(wire, 25), daemon=True)
    stopper.start()
    out = llm.map(df, "{text}", concurrency=4, store=str(path), progress=False)
    stopper.join(5)
    said = capsys.readouterr().out.strip().splitlines()
    kept = int(out["answer"].notna().sum())
    assert 20 <= kept < 80
    assert said[-1].startswith(f"Interrupted: {kept} of 80 rows answered")
    assert set(out.loc[out["answer"].isna(), "error"]) == {"interrupted"}
    # What a dead kernel leaves: the file, read by a new store.
    assert len(FileKeyValueStore(path)) == kept
    wire.traffic.clear()
    again = llm.map(df, "{text}", concurrency=4, store=str(path), progress=False)
    assert wire.traffic.count == 80 - kept
    assert again["error"].isna().all() and int(again["cached"].sum()) == kept


def _interrupt_when(server: LLMWireServer, count: int) -> None:
    deadline = time.monotonic() + 10
    while server.traffic.count < count and time.monotonic() < deadline:
        time.sleep(0.001)
    _thread.interrupt_main()


def test_a_killed_process_keeps_every_answer_it_received(
    wire: LLMWireServer, tmp_path: Path
) -> None:
    wire.latency = 0.02
    path = tmp_path / "answers.jsonl"
    code = textwrap.dedent(
        f"""
        from nbinfra.llm.sync import SyncLLM
        from nbinfra.testing.llm_wire_contract import provider_for
        from nbinfra.testing_llm import LLMWireServer

        class At:
            def base_url(self, kind): return {wire.base_url("openai")!r}

        llm = SyncLLM(provider_for("openai", At(), model="gpt-4o-mini", max_retries=0))
        llm.map([f"p{{i}}" for i in range(200)], concurrency=4, store={str(path)!r})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while wire.traffic.count < 40 and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.kill()  # no cleanup of any kind runs
    finally:
        proc.wait(10)
    kept = len(FileKeyValueStore(path))
    assert 30 <= kept < 200
    wire.traffic.clear()
    llm = _llm(wire)
    out = llm.map([f"p{i}" for i in range(200)], concurrency=8, store=str(path), progress=False)
    assert wire.traffic.count == 200 - kept
    assert out["error"].isna().all()


def test_replay_runs_the_whole_map_offline(wire: LLMWireServer) -> None:
    kv = MemoryKeyValueStore()
    llm = _llm(wire)
    llm.map(["a", "b", "c"], store=ResponseStore("cache", kv))
    wire.traffic.clear()
    out = llm.map(["a", "b", "c", "new"], store=ResponseStore("replay", kv))
    assert wire.traffic.count == 0
    assert out["answer"].notna().tolist() == [True, True, True, False]
    assert out["error"].iloc[3].startswith("ReplayMissError")


def test_budget_stops_before_the_spend_would_pass_it(
    wire: LLMWireServer, capsys: pytest.CaptureFixture[str]
) -> None:
    llm = _llm(wire)
    prompts = [f"q{i:02d}" for i in range(30)]
    provider: BaseLLMProvider = llm.llm
    prompt_tokens = provider.count_tokens(prompts[0]).tokens
    estimate = (prompt_tokens * 0.15 + 100 * 0.60) / 1e6  # max_tokens=100 caps the answer
    actual = (10 * 0.15 + 7 * 0.60) / 1e6  # what the server reports
    budget = 12 * actual + estimate + 1e-9  # rows 0..12 fit, row 13 would not
    out = llm.map(prompts, concurrency=1, budget=budget, max_tokens=100, store=_memory())
    answered = out["answer"].notna()
    assert answered.tolist() == [True] * 13 + [False] * 17
    assert set(out.loc[~answered, "error"]) == {"budget"}
    assert wire.traffic.count == 13
    assert out["cost"].sum() <= budget
    said = capsys.readouterr().out
    assert "17 of 30 rows were not sent" in said
    with pytest.raises(ValueError, match="max_tokens"):
        llm.map(prompts, budget=1.0, store=_memory())


def test_fallbacks_answer_the_rows_the_primary_refused(
    wire: LLMWireServer, wire_factory: Wire
) -> None:
    backup = wire_factory("openai", "groq")  # a second server
    wire.chaos = Chaos(seed=5, server_errors=0.3)
    wire.push(Fault.context_length())
    second = _provider(backup, model="gpt-4.1-mini")
    llm = _llm(wire)
    store = _memory()
    out = llm.map([f"p{i}" for i in range(40)], concurrency=4, fallbacks=[second], store=store)
    assert out["error"].isna().all()
    refused = wire.traffic.count - wire.traffic.answered(200)
    assert refused > 0
    assert (out["model"] == "gpt-4.1-mini").sum() == refused == backup.traffic.count
    assert (out["model"] == "gpt-4o-mini").sum() == 40 - refused
    wire.traffic.clear()
    backup.traffic.clear()
    llm.map([f"p{i}" for i in range(40)], fallbacks=[second], store=store)
    assert wire.traffic.count == backup.traffic.count == 0  # each row found where it was answered


def test_rate_limits_come_from_the_configuration(tmp_path: Path, wire: LLMWireServer) -> None:
    from nbinfra.llm.factory import get_llm

    (tmp_path / "application-llm.yaml").write_text(
        "llm:\n  providers:\n    openai:\n      api_key: sk-test\n"
        f"      base_url: {wire.base_url('openai')}\n      rpm: 120\n      tpm: 50000\n"
        "      models:\n        gpt-4o-mini: {rpm: 300}\n"
    )
    session = Session(resources=tmp_path)
    try:
        provider = get_llm("openai", session=session)
        _MADE.append(provider)
        assert provider.settings.rpm == 120 and provider.model_info().rpm == 300
        from nbinfra.llm.map import MapRun

        run = MapRun(provider, ["a"], store=_memory())
        limiter = run.work.limiters[0]
        assert limiter.rate == pytest.approx(5.0) and limiter.tokens is not None
    finally:
        session.close()
    (tmp_path / "application-llm.yaml").write_text(
        "llm:\n  providers:\n    openai:\n      rpm: 0\n"
    )
    bad = Session(resources=tmp_path)
    try:
        with pytest.raises(ConfigError, match="rpm"):
            get_llm("openai", session=bad)
    finally:
        bad.close()


def test_bad_arguments_fail_before_anything_is_sent(wire: LLMWireServer) -> None:
    llm = _llm(wire)
    df = _texts(3)
    with pytest.raises(ValueError, match="template"):
        llm.map(df)
    with pytest.raises(KeyError, match="No column 'body'"):
        llm.map(df, column="body")
    with pytest.raises(ValueError, match="concurrency"):
        llm.map(["a"], concurrency=0)
    with pytest.raises(TypeError, match="list of prompts"):
        llm.map("just one prompt")
    assert wire.traffic.count == 0
    out = llm.map(df, column="text", store=_memory())  # the column's text is the prompt
    assert sorted(r.json()["messages"][-1]["content"] for r in wire.requests) == [
        "t 0", "t 1", "t 2",
    ]  # fmt: skip
    assert out["error"].isna().all()


def test_reply_model_is_what_the_row_records(wire: LLMWireServer) -> None:
    wire.push(Reply("x", model="gpt-4o-mini-2024-07-18"))
    out = _llm(wire).map(["a"], store=_memory())
    assert out["model"].iloc[0] == "gpt-4o-mini-2024-07-18"


def _memory() -> ResponseStore:
    return ResponseStore("cache", MemoryKeyValueStore())


class Label(BaseModel):
    label: str
    confidence: float


def test_schema_rows_are_parsed_repaired_and_resumed(wire: LLMWireServer, tmp_path: Path) -> None:
    llm = _llm(wire)
    store = str(tmp_path / "answers.jsonl")
    wire.broken_schema_answers = 1  # one row needs a repair round
    out = llm.map([f"p{i}" for i in range(6)], schema=Label, concurrency=1, store=store)
    assert out["error"].isna().all()
    assert list(out.columns[:2]) == ["answer", "parsed"]
    assert all(isinstance(p, Label) for p in out["parsed"])
    assert wire.traffic.count == 7  # six rows, one repair round
    assert out["prompt_tokens"].iloc[0] == 20  # the repaired row counts both rounds
    wire.traffic.clear()
    again = llm.map([f"p{i}" for i in range(6)], schema=Label, concurrency=1, store=store)
    assert wire.traffic.count == 0
    assert [p.model_dump() for p in again["parsed"]] == [p.model_dump() for p in out["parsed"]]


def test_the_same_prompt_twice_is_asked_once(wire: LLMWireServer) -> None:
    out = _llm(wire).map(["a", "b", "a", "a", "c", "b"], concurrency=3, store=_memory())
    assert wire.traffic.count == 3
    assert out["error"].isna().all()
    assert out["cached"].tolist() == [False, False, True, True, False, True]


def test_tokens_per_minute_hold_requests_back(wire: LLMWireServer) -> None:
    llm = _llm(wire)
    per_request = llm.count_tokens("tpm 00").tokens + 50  # the prompt and max_tokens
    tpm = per_request * 10 * 60  # ten requests a second, a burst of ten
    start = time.monotonic()
    out = llm.map([f"tpm {i:02d}" for i in range(25)], concurrency=16, tpm=tpm, max_tokens=50,
                  store=_memory())  # fmt: skip
    assert out["error"].isna().all()
    assert time.monotonic() - start >= 1.2  # 15 requests past the burst at 10 a second
    assert wire.traffic.window_max(1.0) <= 10 + 10 + 2


def test_a_429_past_the_wait_budget_moves_the_row_to_the_fallback(
    wire: LLMWireServer, wire_factory: Wire
) -> None:
    backup = wire_factory("openai", "groq")
    wire.limit = ServerLimit(rpm=120, burst=0.05)  # one request at a time, two a second
    second = _provider(backup, model="gpt-4.1-mini")
    out = _llm(wire).map(
        [f"p{i}" for i in range(12)], concurrency=6, fallbacks=[second], max_wait=0.3,
        store=_memory(),
    )  # fmt: skip
    assert out["error"].isna().all()
    by_backup = int((out["model"] == "gpt-4.1-mini").sum())
    assert by_backup == backup.traffic.count > 0
    assert wire.traffic.answered(200) == 12 - by_backup


def test_a_timeout_moves_the_row_to_the_fallback(wire: LLMWireServer, wire_factory: Wire) -> None:
    backup = wire_factory("openai", "groq")
    wire.latency = 2.0  # every answer of the primary comes after its 0.3 s limit
    second = _provider(backup, model="gpt-4.1-mini")
    out = _llm(wire, timeout=0.3).map(
        [f"p{i}" for i in range(6)], concurrency=3, fallbacks=[second], store=_memory()
    )
    assert out["error"].isna().all()
    assert (out["model"] == "gpt-4.1-mini").all()
    assert backup.traffic.count == 6  # each row sent there once, after its timeout


def test_one_gate_holds_every_worker_for_the_retry_after(wire: LLMWireServer) -> None:
    # No client-side limit at all: only the server's 429s and their Retry-After pace it.
    wire.limit = ServerLimit(rpm=600, burst=0.1)  # 10 a second, one at a time
    out = _llm(wire).map([f"g{i}" for i in range(20)], concurrency=8, store=_memory())
    assert out["error"].isna().all()
    # After each 429 every worker waits for the gate: each pause costs a few refusals
    # (the requests already in flight), not one per worker per spin.
    assert wire.traffic.answered(429) <= 3 * 20


def test_the_progress_line_is_throttled_and_says_rate_eta_tokens_and_cost(
    wire: LLMWireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbinfra import progress

    drawn: list[tuple[str, float | None, float]] = []
    removed: list[bool] = []

    class Recorder:
        def draw(self, label: str, percent: float | None, elapsed: float) -> None:
            drawn.append((label, percent, time.monotonic()))

        def remove(self) -> None:
            removed.append(True)

    monkeypatch.setenv("NBINFRA_PROGRESS", "on")
    previous = progress.set_display(lambda forced: Recorder())
    try:
        wire.latency = 0.05
        start = time.monotonic()
        _llm(wire).map([f"p{i}" for i in range(40)], concurrency=2, store=_memory())
        elapsed = time.monotonic() - start
    finally:
        progress.set_display(previous)
    assert drawn and removed == [True]
    assert len(drawn) <= (elapsed - progress.DELAY) * 10 + 2  # at most ~10 a second
    label = drawn[-1][0]
    assert re.fullmatch(
        r"LLM map: \d+/40 · [\d.]+ rows/s · ETA \d+ s · [\d,]+ tokens · 0\.\d{4} USD", label
    ), label
    percents = [p for _, p, _ in drawn]
    assert None not in percents and percents == sorted(percents)  # type: ignore[type-var]


def test_a_rejected_key_raises_at_once(wire: LLMWireServer) -> None:
    from nbinfra.errors import AuthenticationError

    wire.push(Fault.unauthorized())
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        _llm(wire).map([f"k{i}" for i in range(50)], concurrency=1, store=_memory())
    assert wire.traffic.count < 5  # not one refused request per row


def test_amap_is_the_async_core_and_the_facade_refuses_the_loop(wire: LLMWireServer) -> None:
    from nbinfra import _loop
    from nbinfra.errors import LoopError

    llm = _llm(wire)

    async def inside() -> Any:
        with pytest.raises(LoopError, match="amap"):
            llm.map(["x"], store=_memory())
        return await llm.llm.amap(["a", "b"], store=_memory())

    out = _loop.run_sync(inside())
    assert out["error"].isna().all() and wire.traffic.count == 2
    elsewhere = asyncio.run(llm.llm.amap(["c"], store=_memory()))  # another loop: forwarded
    assert elsewhere["answer"].iloc[0] == wire.default.text
