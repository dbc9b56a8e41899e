"""%llm / %%llm against the fake provider and the OpenAI SDK on a local wire server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from nbinfra.errors import AuthenticationError, InvalidOptionError, LLMError, ReplayMissError
from nbinfra.session import Session, use_session
from nbinfra.testing_llm import Fault, LLMWireServer, Reply
from tests.notebook.conftest import TestingShell

KEY = "sk-test-key-for-the-wire-server"


@pytest.fixture(scope="module")
def wire() -> Iterator[LLMWireServer]:
    with LLMWireServer("openai") as server:
        yield server


@pytest.fixture
def llm_session(tmp_path: Path, wire: LLMWireServer) -> Iterator[Session]:
    wire.reset()
    (tmp_path / "application-llm.yaml").write_text(
        "llm:\n  default: fake\n  timeout: 5\n  max_retries: 0\n  providers:\n"
        "    openai:\n"
        f"      api_key: {KEY}\n"
        f"      base_url: {wire.base_url('openai')}\n"
        "      model: gpt-4o-mini\n"
        "      models:\n"
        "        gpt-4o-mini: {context_window: 128000, max_output_tokens: 16384,"
        " input_price: 0.15, output_price: 0.60}\n"
        "    groq:\n      api_key: ''\n"
    )
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        yield fresh
    fresh.close()


def _chat_body(wire: LLMWireServer) -> dict[str, Any]:
    body: dict[str, Any] = wire.last("chat").json()
    return body


def test_fake_streams_then_renders_markdown_with_footer(
    ip: TestingShell, llm_session: Session
) -> None:
    with capture_output() as cap:
        assert ip.cell("%%llm -o r\nSay hi") is None
    response = ip.user_ns["r"]
    assert ip.user_ns["_llm"] is response and response.provider == "fake"
    final = cap.outputs[-1]
    assert "Say hi" in final.data["text/markdown"]
    assert "fake:" in final.data["text/markdown"] and "tokens" in final.data["text/markdown"]
    meta = final.metadata["nbinfra"]
    assert meta["provider"] == "fake" and meta["usage"]["output_tokens"] > 0


def test_offline_notice_is_one_stdout_line_once_per_kernel(
    ip: TestingShell, llm_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbinfra.llm import fake

    monkeypatch.setattr(fake, "_ANNOUNCED_IN", set())  # as in a fresh kernel
    cells = (
        "%llm --no-stream -f text first question",
        "import nbinfra\nsecond = nbinfra.llm('fake').generate('second')",
        "from nbinfra.llm import LLMFactory\nprovider = LLMFactory.get_llm('fake')\n"
        "third = await provider.generate('third')",
    )
    outs, errs = [], []
    for source in cells:
        with capture_output() as cap:
            ip.cell(source)
        outs.append(cap.stdout)
        errs.append(cap.stderr)
    assert outs[0] == fake.ANNOUNCEMENT + "\n"  # one line, in the first cell that used it
    assert outs[1:] == ["", ""]
    assert errs == ["", "", ""]  # nothing on stderr (JupyterLab shows it as an error box)
    assert "third" in ip.user_ns["third"].content


def test_openai_wire_options_streaming_and_cost(
    ip: TestingShell, llm_session: Session, wire: LLMWireServer
) -> None:
    wire.push(Reply("A **bold** answer.", usage=(100, 20)))
    with capture_output() as cap:
        ip.cell("%%llm -p openai -t 0.2 --max-tokens 50 -s 'be brief' -o r\nExplain caches")
    body = _chat_body(wire)
    assert body["stream"] is True
    assert body["temperature"] == 0.2 and body["max_tokens"] == 50
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert body["messages"][-1]["content"] == "Explain caches"
    response = ip.user_ns["r"]
    assert response.content == "A **bold** answer."
    assert response.usage.input_tokens == 100 and response.cost is not None
    final = cap.outputs[-1]
    assert final.data["text/markdown"].startswith("A **bold** answer.")
    assert "$" in final.data["text/markdown"]
    assert final.metadata["nbinfra"]["options"]["temperature"] == 0.2

    wire.push(Reply("plain"))
    ip.run_line_magic("llm", "-p openai:gpt-4o --no-stream -f text one line prompt")
    body = _chat_body(wire)
    assert body.get("stream") in (None, False) and body["model"] == "gpt-4o"
    assert body["messages"][-1]["content"] == "one line prompt"


def test_interpolation_keeps_json_braces(
    ip: TestingShell, llm_session: Session, wire: LLMWireServer
) -> None:
    ip.user_ns["topic"] = "Redis"
    ip.user_ns["cfg"] = {"ttl": 60}
    ip.cell('%%llm -p openai --no-stream\nAbout {topic} ({cfg[ttl]} s): reply as {"a": 1} {{x}}')
    expected = 'About Redis (60 s): reply as {"a": 1} {x}'
    assert _chat_body(wire)["messages"][-1]["content"] == expected
    ip.cell("%%llm -p openai --no-stream --no-interpolate\nAbout {topic}")
    assert _chat_body(wire)["messages"][-1]["content"] == "About {topic}"


def test_formats_code_and_json(ip: TestingShell, llm_session: Session, wire: LLMWireServer) -> None:
    wire.push(Reply("```python\nprint('hi')\n```"))
    ip.rl_next_input = None
    ip.cell("%%llm  -p openai  -f code\nwrite code")  # extra spaces are fine
    assert ip.rl_next_input == "print('hi')"  # the kernel turns this into a new cell below
    wire.push(Reply('```json\n{"a": [1, 2]}\n```'))
    assert ip.cell("%%llm -p openai -f json\ngive json") == {"a": [1, 2]}
    assert _chat_body(wire)["response_format"] == {"type": "json_object"}
    wire.push(Reply("not json at all"))
    with pytest.raises(LLMError, match="not valid JSON") as info:
        ip.cell("%%llm -p openai -f json\ngive json")
    assert "\n" not in str(info.value)
    assert ip.user_ns["_llm"].content == "not json at all"


def test_chats_history_budget_reset(
    ip: TestingShell, llm_session: Session, wire: LLMWireServer
) -> None:
    ip.cell("%%llm -p openai --chat c1 -s 'sys prompt'\nfirst question")
    ip.cell("%%llm -p openai --chat c1\nsecond question")
    body = _chat_body(wire)
    assert body["stream"] is True  # chats stream into the cell too
    sent = [m["content"] for m in body["messages"]]
    assert sent[0] == "sys prompt" and "first question" in sent and sent[-1] == "second question"
    wire.push(Fault.server_error(500), Fault.server_error(500), Fault.server_error(500))
    with pytest.raises(LLMError):
        ip.cell("%%llm -p openai --chat c1\nthis one fails")
    wire.clear()
    chats = ip.run_line_magic("llm", "chats")
    assert chats.rows[0][0] == "c1" and chats.rows[0][1] == 5
    history = ip.run_line_magic("llm", "history c1")
    assert [row[1] for row in history.rows] == ["system", "user", "assistant", "user", "assistant"]
    # a tiny budget: the recent strategy keeps the system prompt and the newest turn only
    ip.cell("%%llm -p openai --chat c1 --strategy recent --budget 40\nthird")
    sent = [m["content"] for m in _chat_body(wire)["messages"]]
    assert sent[0] == "sys prompt" and sent[-1] == "third" and "first question" not in sent
    ip.run_line_magic("llm", "reset c1")
    assert ip.run_line_magic("llm", "chats").rows == []
    with pytest.raises(UsageError, match="No chat named 'c1'"):
        ip.run_line_magic("llm", "history c1")
    with pytest.raises(UsageError, match="add --chat"):
        ip.run_line_magic("llm", "--budget 10 hi")


@pytest.mark.parametrize("stream", ["", "--no-stream"])
def test_chat_turns_go_through_chat_and_flag_a_cut_prompt(
    ip: TestingShell, llm_session: Session, wire: LLMWireServer, stream: str
) -> None:
    from nbinfra.llm.truncation import TRUNCATION_WARNING, reset_truncation_warnings

    reset_truncation_warnings()
    long_prompt = " ".join(["context"] * 400)
    wire.push(Reply("short answer", usage=(5, 2)))  # the server saw 5 of ~400 tokens
    ip.cell(f"%%llm -p openai --chat cut {stream} -o r -f text\n{long_prompt}")
    assert TRUNCATION_WARNING in ip.user_ns["r"].warnings
    wire.push(Reply("honest", usage=(900, 1)))
    ip.cell(f"%%llm -p openai --chat cut {stream} -o r2 -f text\nnext")
    assert TRUNCATION_WARNING not in ip.user_ns["r2"].warnings
    history = ip.run_line_magic("llm", "history cut")
    assert [row[1] for row in history.rows] == ["user", "assistant", "user", "assistant"]


def test_list_use_usage(ip: TestingShell, llm_session: Session, wire: LLMWireServer) -> None:
    listing = ip.run_line_magic("llm", "list")
    rows = {row[0]: row for row in listing.rows}
    assert rows["openai"][3] == "yes" and rows["groq"][3] == "no"
    assert rows["openai"][4] == "yes"  # the wire server answers on its base_url
    assert "gpt-4o-mini" in rows["openai"][2]
    ip.run_line_magic("llm", "use openai:gpt-4o-mini")
    assert ip._nbinfra_magics.default_provider == "openai:gpt-4o-mini"
    wire.push(Reply("x", usage=(7, 3)))
    ip.cell("%%llm\nhello")
    assert _chat_body(wire)["model"] == "gpt-4o-mini"
    meter = ip.run_line_magic("llm", "usage")
    totals = meter.totals()
    assert totals["calls"] == 1 and totals["input"] == 7 and totals["output"] == 3
    assert "session" in meter._repr_markdown_()
    with pytest.raises(Exception, match="nope") as info:
        ip.run_line_magic("llm", "use nope")
    assert "\n" not in str(info.value)


def test_record_then_replay_offline(
    ip: TestingShell, llm_session: Session, wire: LLMWireServer, tmp_path: Path
) -> None:
    recording = tmp_path / "calls.jsonl"
    ip.run_line_magic("llm", f"replay record {recording}")
    wire.push(Reply("recorded answer"))
    ip.cell("%%llm -p openai\nremember me")
    assert json.loads(recording.read_text().splitlines()[0])["response"]["content"] == (
        "recorded answer"
    )
    before = len(wire.requests)
    ip.run_line_magic("llm", f"replay load {recording}")
    ip.cell("%%llm -p openai -o again\nremember me")
    assert ip.user_ns["again"].content == "recorded answer" and ip.user_ns["again"].cached
    assert len(wire.requests) == before  # no network in replay
    with pytest.raises(ReplayMissError) as info:
        ip.cell("%%llm -p openai\nnever recorded")
    assert len(info.value._render_traceback_()) == 1
    ip.run_line_magic("llm", "replay off")


def test_cache_and_no_cache(ip: TestingShell, llm_session: Session, wire: LLMWireServer) -> None:
    ip.run_line_magic("llm", "replay on")
    ip.cell("%%llm -p openai -o a\nsame prompt")
    count = len(wire.requests)
    with capture_output() as cap:
        ip.cell("%%llm -p openai -o b\nsame prompt")
    assert len(wire.requests) == count and ip.user_ns["b"].cached
    assert "cache hit" in cap.outputs[-1].data["text/markdown"]
    ip.cell("%%llm -p openai --no-cache -o c\nsame prompt")
    assert len(wire.requests) > count and not ip.user_ns["c"].cached
    ip.run_line_magic("llm", "replay off")


def test_errors_are_one_line(ip: TestingShell, llm_session: Session) -> None:
    with pytest.raises(AuthenticationError, match="GROQ_API_KEY") as info:
        ip.cell("%%llm -p groq\nhi")
    assert len(info.value._render_traceback_()) == 1
    with pytest.raises(InvalidOptionError, match="between 0 and 2"):
        ip.run_line_magic("llm", "-t 3 hi")
    with pytest.raises(UsageError, match="No prompt"):
        ip.cell("%%llm -p fake\n   ")
    with pytest.raises(UsageError, match="takes no arguments"):
        ip.run_line_magic("llm", "usage please")
    assert ip.run_line_magic("llm", "-p fake --no-stream -f text -- usage please") is None
    ip.run_line_magic("config", "NbinfraMagics.short_errors = False")
    with pytest.raises(AuthenticationError) as info:
        ip.cell("%%llm -p groq\nhi")
    assert len(info.value._render_traceback_()) > 1  # the full traceback when asked for


def test_config_streaming_and_default_format(
    ip: TestingShell, llm_session: Session, wire: LLMWireServer
) -> None:
    ip.run_line_magic("config", "NbinfraMagics.streaming = False")
    ip.run_line_magic("config", "NbinfraMagics.default_format = 'text'")
    with capture_output() as cap:
        ip.cell("%%llm -p openai\nno stream please")
    assert _chat_body(wire).get("stream") in (None, False)
    assert "text/markdown" not in cap.outputs[-1].data
    ip.run_line_magic("config", "NbinfraMagics.default_format = 'yaml'")
    with pytest.raises(UsageError, match="Unknown format 'yaml'"):
        ip.cell("%%llm -p openai\nhi")


def test_a_prompt_ending_in_a_question_mark_is_sent_not_read_as_help(
    ip: TestingShell, llm_session: Session, wire: LLMWireServer
) -> None:
    ip.user_ns["pi"] = 3.14
    wire.push(Reply("An in-memory store."))
    with capture_output() as cap:
        result = ip.run_cell("%llm -p openai --no-stream what is Redis, and pi?")
    assert result.error_in_exec is None and result.error_before_exec is None
    assert _chat_body(wire)["messages"][-1]["content"] == "what is Redis, and pi?"
    assert ip.user_ns["_llm"].content == "An in-memory store."
    assert "Type:" not in cap.stdout  # not %pinfo of pi
    # %llm? with no text is still IPython's help on the magic, and sends nothing
    sent = len(wire.requests)
    with capture_output() as cap:
        ip.run_cell("%llm?")
    assert "Docstring" in cap.stdout and len(wire.requests) == sent
