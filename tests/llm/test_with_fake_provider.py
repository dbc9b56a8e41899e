"""Context and replay with the real ``fake`` provider (skipped until it is on this branch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbinfra.errors import ReplayMissError
from nbinfra.llm.context import SUMMARY_PREFIX, Chat, ContextWindowManager
from nbinfra.llm.replay import ResponseStore
from nbinfra.llm.types import Message
from nbinfra.session import Session

fake = pytest.importorskip("nbinfra.llm.fake", reason="the fake provider is built on llm-providers")


@pytest.fixture(autouse=True)
def _fresh_session(nbinfra_session: Session) -> Session:
    return nbinfra_session


async def test_fake_provider_writes_the_summary_incrementally() -> None:
    summarizer = fake.FakeLLMProvider(responses=["summary one", "summary two"], announce=False)
    manager = ContextWindowManager(
        context_window=500,
        max_output_tokens=0,
        margin=0,
        strategy="summarization",
        summarizer=summarizer,
        summary_tokens=20,
    )
    for i in range(12):
        manager.add(Message("user", f"question {i} " + "word " * 25))
        manager.add(Message("assistant", f"answer {i} " + "word " * 25))
    fitted = await manager.afit()
    assert fitted[0].content == SUMMARY_PREFIX + "summary one"
    assert await manager.afit() == fitted and len(summarizer.calls) == 1
    for i in range(12, 16):
        manager.add(Message("user", f"question {i} " + "word " * 25))
        manager.add(Message("assistant", f"answer {i} " + "word " * 25))
    fitted = await manager.afit()
    assert fitted[0].content == SUMMARY_PREFIX + "summary two"
    assert len(summarizer.calls) == 2
    assert "summary one" in summarizer.calls[1][0][-1].content


async def test_chat_recorded_with_fake_replays_without_calls(tmp_path: Path) -> None:
    recorder = ResponseStore("record")
    live = fake.FakeLLMProvider(responses=["one", "two", "three"], announce=False)
    live.response_store = recorder
    chat = Chat(live, system="You are terse.", context_window=4096, max_output_tokens=64)
    answers = [(await chat.ask(q)).content for q in ("a?", "b?", "c?")]
    assert answers == ["one", "two", "three"] and len(live.calls) == 3
    path = tmp_path / "chat.jsonl"
    assert recorder.export_jsonl(path) == 3

    replayer = ResponseStore("replay")
    await replayer.import_jsonl(path)
    offline = fake.FakeLLMProvider(responses=["different"], announce=False)
    offline.response_store = replayer
    again = Chat(offline, system="You are terse.", context_window=4096, max_output_tokens=64)
    assert [(await again.ask(q)).content for q in ("a?", "b?", "c?")] == answers
    assert offline.calls == []
    with pytest.raises(ReplayMissError):
        await again.ask("never asked")
    assert offline.calls == [] and len(again.history) == 7  # the failed prompt left no trace


async def test_chat_with_fake_summarises_under_a_small_budget() -> None:
    # As in notebook 05: a chat on the offline stand-in with a budget far below the default
    # summary_tokens. The older turns are summarised by the fake, not dropped.
    llm = fake.FakeLLMProvider(announce=False)
    chat = Chat(
        llm,
        context_window=125 + 1024 + 64,
        strategy="summarization",
        summarizer=llm,
    )
    questions = (
        "We are planning a three day trip to Lyon. What should we see on day one?",
        "And on day two, something outdoors?",
        "Day three: where should we eat?",
        "And where do we stay?",
    )
    for question in questions:
        await chat.ask(question)
    preview = chat.preview()
    assert preview.count("dropped") == 0 and preview.count("summarised") >= 2
    assert preview.summary and "Lyon" in preview.summary
    sent = llm.calls[-1][0]  # the last question went out with the summary in front
    assert sent[0].content.startswith(SUMMARY_PREFIX) and sent[-1].content == questions[-1]
    summarised = [e.index for e in preview.entries if e.status == "summarised"]
    assert summarised == list(range(len(summarised)))
