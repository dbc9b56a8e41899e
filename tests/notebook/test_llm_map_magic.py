"""``%%llm --over df`` and ``%llm map`` through a real IPython shell, on the openai SDK."""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from nbinfra.session import Session, use_session
from nbinfra.testing_llm import LLMWireServer
from tests.notebook.conftest import TestingShell

KEY = "sk-test-key-for-the-wire-server"


@pytest.fixture(scope="module")
def wire() -> Iterator[LLMWireServer]:
    with LLMWireServer("openai", "groq") as server:
        yield server


@pytest.fixture
def session(
    tmp_path: Path, wire: LLMWireServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Session]:
    wire.reset()
    monkeypatch.chdir(tmp_path)  # the default durable store lives under ./.nbinfra/
    (tmp_path / "application-llm.yaml").write_text(
        "llm:\n  default: openai\n  timeout: 5\n  max_retries: 0\n  providers:\n"
        "    openai:\n"
        f"      api_key: {KEY}\n"
        f"      base_url: {wire.base_url('openai')}\n"
        "      model: gpt-4o-mini\n"
        "      rpm: 6000\n"
        "      models:\n"
        "        gpt-4o-mini: {max_output_tokens: 16384, input_price: 0.15, output_price: 0.60}\n"
        "    groq:\n"
        f"      api_key: {KEY}\n"
        f"      base_url: {wire.base_url('groq')}\n"
        "      models:\n"
        "        llama-3.1-8b-instant: {input_price: 0.05, output_price: 0.08}\n"
    )
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        yield fresh
    fresh.close()


def _tickets(ip: TestingShell, n: int = 12) -> pd.DataFrame:
    df = pd.DataFrame(
        {"text": [f"ticket {i}" for i in range(n)], "lang": ["en"] * n},
        index=pd.Index([100 + i for i in range(n)], name="id"),
    )
    ip.user_ns["df"] = df
    ip.user_ns["labels"] = "billing, bug or question"
    return df


def _sent(wire: LLMWireServer) -> list[str]:
    return sorted(r.json()["messages"][-1]["content"] for r in wire.requests if "chat" in r.path)


def test_cell_form_fills_each_row_and_stores_the_frame(
    ip: TestingShell, session: Session, wire: LLMWireServer
) -> None:
    df = _tickets(ip)
    with capture_output() as cap:
        value = ip.cell(
            "%%llm --over df -o out --concurrency 4\nClassify as {labels} ({lang}): {text}"
        )
    assert value is None
    out = ip.user_ns["out"]
    assert list(out.index) == list(df.index) and out["error"].isna().all()
    assert _sent(wire) == sorted(
        f"Classify as billing, bug or question (en): ticket {i}" for i in range(12)
    )
    assert "LLM map: 12 of 12 rows answered" in cap.stdout + "".join(
        str(o.data.get("text/plain", "")) for o in cap.outputs
    )
    # A re-run is answered from the durable store: no request.
    wire.clear()
    ip.cell("%%llm --over df -o out --concurrency 4\nClassify as {labels} ({lang}): {text}")
    assert wire.traffic.count == 0 and ip.user_ns["out"]["cached"].all()


def test_line_form_with_col_and_budget(
    ip: TestingShell, session: Session, wire: LLMWireServer
) -> None:
    _tickets(ip)
    # no template: the column's text is the prompt; the cell's value is the frame
    frame = ip.cell("%llm map --over df --col text")
    assert isinstance(frame, pd.DataFrame) and frame["error"].isna().all()
    assert _sent(wire) == sorted(f"ticket {i}" for i in range(12))
    wire.clear()
    with capture_output() as cap:
        ip.cell(
            "%llm map --over df -o cheap --concurrency 1 --max-cost 0.00005 --max-tokens 50 "
            "Summarise {text} again"
        )
    cheap = ip.user_ns["cheap"]
    sent = int(cheap["answer"].notna().sum())
    assert 0 < sent < 12 and wire.traffic.count == sent
    assert set(cheap.loc[cheap["answer"].isna(), "error"]) == {"budget"}
    assert f"{12 - sent} of 12 rows were not sent" in cap.stdout


def test_fallbacks_from_the_magic(ip: TestingShell, session: Session, wire: LLMWireServer) -> None:
    from nbinfra.testing_llm import Chaos

    _tickets(ip, 10)
    wire.chaos = Chaos(seed=2, server_errors=0.4)  # both formats share the server's knobs
    ip.cell("%%llm --over df -o out --fallbacks groq:llama-3.1-8b-instant\nSay {text}")
    out = ip.user_ns["out"]
    assert out["error"].isna().all()
    assert set(out["provider"]) <= {"openai", "groq"} and "groq" in set(out["provider"])


def test_interrupt_in_a_cell_keeps_the_partial_frame(
    ip: TestingShell, session: Session, wire: LLMWireServer
) -> None:
    _tickets(ip, 60)
    wire.latency = 0.02

    def stop() -> None:
        deadline = time.monotonic() + 10
        while wire.traffic.count < 15 and time.monotonic() < deadline:
            time.sleep(0.001)
        _thread.interrupt_main()

    threading.Thread(target=stop, daemon=True).start()
    with capture_output() as cap:
        ip.cell("%%llm --over df -o out --concurrency 3\nAnswer {text}")
    out = ip.user_ns["out"]
    kept = int(out["answer"].notna().sum())
    assert 10 <= kept < 60
    assert f"Interrupted: {kept} of 60 rows answered" in cap.stdout
    wire.clear()
    ip.cell("%%llm --over df -o out --concurrency 3\nAnswer {text}")
    assert wire.traffic.count == 60 - kept


def test_usage_errors_are_one_line(ip: TestingShell, session: Session, wire: LLMWireServer) -> None:
    _tickets(ip)
    with pytest.raises(UsageError, match="no variable"):
        ip.cell("%%llm --over nope\n{text}")
    with pytest.raises(UsageError, match="No template"):
        ip.cell("%llm map --over df")
    with pytest.raises(UsageError, match="No column 'body'"):
        ip.cell("%llm map --over df --col body")
    with pytest.raises(UsageError, match="chats"):
        ip.cell("%%llm --over df --chat c\n{text}")
    assert wire.traffic.count == 0


def test_schema_over_a_frame(ip: TestingShell, session: Session, wire: LLMWireServer) -> None:
    _tickets(ip, 5)
    ip.run_cell("from pydantic import BaseModel\nclass Label(BaseModel):\n    label: str\n")
    ip.cell("%%llm --over df --schema Label -o out\nClassify {text}")
    out = ip.user_ns["out"]
    assert out["error"].isna().all()
    assert [type(p).__name__ for p in out["parsed"]] == ["Label"] * 5
