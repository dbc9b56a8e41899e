"""ContextWindowManager: property tests for every strategy, summarization, preview, Chat."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbinfra.errors import ContextLengthError, ProviderTimeout
from nbinfra.llm.context import (
    SUMMARY_PREFIX,
    Chat,
    ContextWindowManager,
    known_context_window,
)
from nbinfra.llm.tokens import TOKENS_REPLY_PRIMING, get_counter
from nbinfra.llm.truncation import (
    TRUNCATION_WARNING,
    check_prompt_tokens,
    reset_truncation_warnings,
)
from nbinfra.llm.types import Message, TokenCount
from tests.llm.doubles import ScriptedLLM

COUNTER = get_counter(None)
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]


@dataclass
class Conversation:
    messages: list[Message]
    units: list[list[int]]  # message indices of each turn (after the system prompt)
    sys_end: int


def _text(i: int, n_words: int) -> str:
    return f"m{i} " + " ".join(WORDS[(i + k) % len(WORDS)] for k in range(n_words))


@st.composite
def conversations(draw: st.DrawFn) -> Conversation:
    messages: list[Message] = []
    for _ in range(draw(st.integers(0, 2))):
        messages.append(Message("system", _text(len(messages), draw(st.integers(0, 30)))))
    sys_end = len(messages)
    units: list[list[int]] = []
    n_units = draw(st.integers(1, 25))
    for u in range(n_units):
        if u == 0 and draw(st.booleans()) and draw(st.booleans()):
            head = "assistant"  # a conversation may open with the assistant speaking
        elif u == 0:
            head = "user"  # a leading system message would join the system prompt
        else:
            head = draw(st.sampled_from(["user"] * 6 + ["system"]))
        unit = [len(messages)]
        messages.append(Message(head, _text(len(messages), draw(st.integers(0, 60)))))
        for _ in range(draw(st.integers(0, 2))):
            role = draw(st.sampled_from(["assistant", "assistant", "tool"]))
            unit.append(len(messages))
            messages.append(Message(role, _text(len(messages), draw(st.integers(0, 60)))))
        units.append(unit)
    return Conversation(messages, units, sys_end)


def _summarizer() -> ScriptedLLM:
    # long answers, so the manager has to cut them to summary_tokens
    return ScriptedLLM(lambda msgs: "summary " + " ".join(WORDS * 10))


def _manager(strategy: str, budget: int, max_turns: int = 3) -> ContextWindowManager:
    return ContextWindowManager(
        context_window=budget,
        max_output_tokens=0,
        margin=0,
        strategy=strategy,  # type: ignore[arg-type]
        max_turns=max_turns,
        summarizer=_summarizer() if strategy == "summarization" else None,
        summary_tokens=24,
    )


def _tokens(messages: list[Message]) -> int:
    return COUNTER.count_messages(messages).tokens


def _check_invariants(conv: Conversation, fitted: list[Message], budget: int) -> set[int]:
    index = {m.content: i for i, m in enumerate(conv.messages)}
    assert _tokens(fitted) <= budget
    assert fitted[: conv.sys_end] == conv.messages[: conv.sys_end], "system prompt kept"
    assert fitted[-1] == conv.messages[-1], "newest message kept"
    kept = {index[m.content] for m in fitted if not m.content.startswith(SUMMARY_PREFIX)}
    for unit in conv.units:
        assert set(unit) <= kept or not set(unit) & kept, f"turn {unit} was split"
    return kept


def _needed(conv: Conversation) -> int:
    newest = conv.messages[conv.sys_end :][conv.units[-1][0] - conv.sys_end :]
    return _tokens(conv.messages[: conv.sys_end] + newest)


@pytest.mark.parametrize("strategy", ["recent", "sliding_window", "summarization"])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(conv=conversations(), budget=st.integers(20, 2500), max_turns=st.integers(1, 6))
def test_fit_invariants(strategy: str, conv: Conversation, budget: int, max_turns: int) -> None:
    manager = _manager(strategy, budget, max_turns)
    manager.extend(conv.messages)
    assert manager.min_budget == _needed(conv)
    if _needed(conv) > budget:
        with pytest.raises(ContextLengthError, match="budget is"):
            manager.fit()
        return
    fitted = manager.fit()
    kept = _check_invariants(conv, fitted, budget)
    kept_units = [u for u in conv.units if u[0] in kept]
    assert kept_units == conv.units[len(conv.units) - len(kept_units) :], "kept turns are newest"
    summaries = [m for m in fitted if m.content.startswith(SUMMARY_PREFIX)]
    preview = manager.preview()
    assert preview.total_tokens == _tokens(fitted) <= preview.budget == budget
    assert preview.count("kept") == len(fitted) - len(summaries)
    assert {e.index for e in preview.entries if e.status == "kept"} == kept
    if strategy == "recent":
        dropped = len(conv.units) - len(kept_units)
        if dropped:  # maximal: the next older turn would not have fit
            previous = [conv.messages[i] for i in conv.units[dropped - 1]]
            assert _tokens(fitted + previous) > budget
    if strategy == "sliding_window":
        assert len(kept_units) <= max_turns
    if strategy == "summarization":
        assert len(summaries) <= 1
        if summaries:
            assert fitted[conv.sys_end] is summaries[0]
            assert len(kept_units) < len(conv.units)
    else:
        assert not summaries


@pytest.mark.parametrize("strategy", ["recent", "sliding_window"])
@settings(max_examples=40, deadline=None)
@given(conv=conversations(), budget=st.integers(20, 1500))
def test_incremental_fit_matches_fresh_fit(strategy: str, conv: Conversation, budget: int) -> None:
    growing = _manager(strategy, budget)
    for message in conv.messages:
        growing.add(message)
        with contextlib.suppress(ContextLengthError):
            growing.fit()
    fresh = _manager(strategy, budget)
    fresh.extend(conv.messages)
    try:
        expected = fresh.fit()
    except ContextLengthError:
        with pytest.raises(ContextLengthError):
            growing.fit()
        return
    assert growing.fit() == expected


def _chatty(manager: ContextWindowManager, turns: int, start: int = 0, words: int = 30) -> None:
    for i in range(start, start + turns):
        manager.add(Message("user", _text(2 * i, words)))
        manager.add(Message("assistant", _text(2 * i + 1, words)))


def test_recent_keeps_newest_turns_within_budget() -> None:
    manager = ContextWindowManager(context_window=400, max_output_tokens=100, margin=20)
    assert manager.budget == 280
    manager.add(Message("system", "You are terse."))
    _chatty(manager, 20)
    fitted = manager.fit()
    assert fitted[0] == Message("system", "You are terse.")
    assert fitted[-1] == manager.messages[-1]
    assert _tokens(fitted) <= 280
    assert len(fitted) < len(manager)


def test_sliding_window_keeps_at_most_max_turns() -> None:
    manager = ContextWindowManager(
        context_window=100_000, strategy="sliding_window", max_turns=3, system="sys"
    )
    _chatty(manager, 10)
    fitted = manager.fit()
    assert [m.content for m in fitted[1:]] == [m.content for m in manager.messages[-6:]]


def test_newest_turn_too_long_raises_with_advice() -> None:
    manager = ContextWindowManager(context_window=60, max_output_tokens=0, margin=0)
    manager.add(Message("user", " ".join(WORDS * 20)))
    with pytest.raises(ContextLengthError, match="shorten the message"):
        manager.fit()


async def test_summary_is_cached_and_extended_incrementally() -> None:
    summarizer = ScriptedLLM(["first summary", "second summary", "third summary"])
    manager = ContextWindowManager(
        context_window=700,
        max_output_tokens=100,
        margin=0,
        strategy="summarization",
        summarizer=summarizer,
        summary_tokens=40,
        system="You are terse.",
    )
    _chatty(manager, 3)
    await manager.afit()
    assert summarizer.calls == [], "nothing fell out yet, nothing to summarise"

    _chatty(manager, 10, start=3)
    fitted = await manager.afit()
    assert len(summarizer.calls) == 1
    assert fitted[1] == Message("system", SUMMARY_PREFIX + "first summary")
    first_prompt = summarizer.calls[0][0][-1].content
    assert "(none yet)" in first_prompt and _text(0, 30) in first_prompt

    assert await manager.afit() == fitted  # cached: no new call
    assert manager.fit() == fitted
    assert len(summarizer.calls) == 1

    covered = [e.index for e in manager.preview().entries if e.status == "summarised"]
    _chatty(manager, 4, start=13)
    fitted = await manager.afit()
    assert len(summarizer.calls) == 2
    second_prompt = summarizer.calls[1][0][-1].content
    assert "first summary" in second_prompt
    new_part = second_prompt.split("New messages:", 1)[1]
    for i in covered:  # already summarised messages are not sent again
        assert manager.messages[i].content not in new_part
    assert manager.messages[covered[-1] + 1].content in new_part
    assert fitted[1].content == SUMMARY_PREFIX + "second summary"
    assert _tokens(fitted) <= manager.budget
    preview = manager.preview()
    assert preview.summary == "second summary"
    assert preview.count("summarised") > len(covered)
    assert preview.total_tokens == _tokens(fitted)


def test_summary_is_cut_to_summary_tokens() -> None:
    summarizer = ScriptedLLM(lambda msgs: " ".join(WORDS * 50))
    manager = ContextWindowManager(
        context_window=500,
        max_output_tokens=0,
        margin=0,
        strategy="summarization",
        summarizer=summarizer,
        summary_tokens=10,
    )
    _chatty(manager, 12)
    fitted = manager.fit()
    summary = fitted[0]
    assert summary.content.startswith(SUMMARY_PREFIX)
    assert COUNTER.count_text(manager.summary or "").tokens <= 10
    assert _tokens(fitted) <= manager.budget


def test_summary_fits_a_budget_smaller_than_summary_tokens() -> None:
    # The default summary_tokens (256) exceed this budget: the summary gets what the newest
    # turn leaves instead, and the older turns are summarised, not dropped.
    summarizer = ScriptedLLM(lambda msgs: " ".join(WORDS * 50))
    manager = ContextWindowManager(
        context_window=200, max_output_tokens=0, margin=0, strategy="summarization",
        summarizer=summarizer, system="You are terse.",
    )  # fmt: skip
    _chatty(manager, 8, words=12)
    assert manager.count() > manager.budget and manager.summary_tokens > manager.budget
    preview = manager.preview()
    assert preview.count("summarised") > 0 and preview.count("dropped") == 0
    assert preview.total_tokens <= manager.budget
    fitted = manager.fit()
    assert len(summarizer.calls) == 1
    assert fitted[1].content.startswith(SUMMARY_PREFIX) and len(fitted[1].content) > len(
        SUMMARY_PREFIX
    )
    assert _tokens(fitted) <= manager.budget
    after = manager.preview()
    assert after.total_tokens == _tokens(fitted)
    assert [e.index for e in after.entries if e.status == "summarised"] == [
        e.index for e in preview.entries if e.status == "summarised"
    ]
    assert after.count("kept") == len(fitted) - 1


def test_summary_is_cut_when_the_budget_shrinks() -> None:
    summarizer = ScriptedLLM(lambda msgs: " ".join(WORDS * 50))
    manager = ContextWindowManager(
        context_window=10_000, max_output_tokens=0, margin=0, strategy="summarization",
        summarizer=summarizer, summary_tokens=60,
    )  # fmt: skip
    _chatty(manager, 6, words=12)
    newest = _tokens(manager.messages[-2:])
    prefix = COUNTER.message_tokens(Message("system", SUMMARY_PREFIX))
    wide_budget = newest + prefix + 60 + 10  # a full summary and the newest turn only
    manager.context_window = wide_budget
    wide = manager.fit()
    assert wide[0].content.startswith(SUMMARY_PREFIX) and wide[1:] == manager.messages[-2:]
    assert COUNTER.message_tokens(wide[0]) > 50
    manager.context_window = newest + prefix + 20  # the same turns, less room for the summary
    narrow = manager.fit()
    assert len(summarizer.calls) == 1, "the cached summary is cut, not rewritten"
    assert narrow[0].content.startswith(SUMMARY_PREFIX) and narrow[1:] == manager.messages[-2:]
    assert wide[0].content.startswith(narrow[0].content)
    assert _tokens(narrow) <= manager.budget
    assert manager.preview().total_tokens == _tokens(narrow)
    manager.context_window = wide_budget
    assert manager.fit() == wide, "the whole summary is kept for wider budgets"


def test_summarization_drops_turns_when_no_summary_fits() -> None:
    summarizer = ScriptedLLM(["never used"])
    manager = ContextWindowManager(
        context_window=10_000, max_output_tokens=0, margin=0, strategy="summarization",
        summarizer=summarizer,
    )  # fmt: skip
    _chatty(manager, 3, words=12)
    newest = _tokens(manager.messages[-2:])
    manager.context_window = newest + 5  # not even a short summary beside the newest turn
    preview = manager.preview()
    assert preview.count("summarised") == 0 and preview.count("dropped") == 4
    assert manager.fit() == manager.messages[-2:]
    assert summarizer.calls == []


def test_preview_reports_statuses_and_tokens() -> None:
    manager = ContextWindowManager(
        context_window=300, max_output_tokens=0, margin=0, system="You are terse."
    )
    _chatty(manager, 10)
    preview = manager.preview()
    fitted = manager.fit()
    assert preview.total_tokens == _tokens(fitted) <= preview.budget == 300
    assert [e.status for e in preview.entries].count("kept") == len(fitted)
    assert preview.entries[0].status == "kept" and preview.entries[1].status == "dropped"
    for entry in preview.entries:
        assert entry.tokens == COUNTER.message_tokens(manager.messages[entry.index])
    assert preview.exact and preview.strategy == "recent" and preview.summary is None
    assert "kept" in str(preview) and "dropped" in str(preview)
    wider = manager.preview(budget=100_000)
    assert wider.count("dropped") == 0
    window = manager.preview(strategy="sliding_window")
    assert window.count("kept") <= 1 + 2 * manager.max_turns
    assert manager.fit() == fitted  # previews do not disturb the manager


def test_pop_and_clear() -> None:
    manager = ContextWindowManager(context_window=4096, system="sys")
    _chatty(manager, 3)
    manager.fit()
    last = manager.pop()
    assert last.role == "assistant" and len(manager) == 6
    assert manager.fit()[-1].role == "user"
    manager.clear()
    assert manager.messages == [Message("system", "sys")]
    manager.clear(keep_system=False)
    assert manager.messages == [] and manager.fit() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "oldest"}, "Unknown strategy"),
        ({"strategy": "summarization"}, "needs summarizer"),
        ({"context_window": 1000, "max_output_tokens": 1000}, "No room for a prompt"),
        ({"max_turns": 0}, "max_turns"),
    ],
    ids=["strategy", "summarizer", "budget", "max_turns"],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ContextWindowManager(**kwargs)  # type: ignore[arg-type]


def test_known_context_windows() -> None:
    assert known_context_window("gpt-4o-mini") == 128_000
    assert known_context_window("groq:llama-3.1-8b-instant") == 131_072
    assert known_context_window("something-else") is None
    assert ContextWindowManager("mystery").context_window == 8_192


async def test_chat_sends_fitted_history_and_records_reply() -> None:
    llm = ScriptedLLM(["one", "two", "three"])
    chat = Chat(llm, system="You are terse.", context_window=4096, max_output_tokens=256)
    first = await chat.ask("hello")
    second = await chat.ask("again")
    assert (first.content, second.content) == ("one", "two")
    sent, options = llm.calls[1]
    assert sent == [
        Message("system", "You are terse."),
        Message("user", "hello"),
        Message("assistant", "one"),
        Message("user", "again"),
    ]
    assert options["max_tokens"] == 256
    assert chat.history[-1] == Message("assistant", "two")
    assert chat.preview().count("kept") == 5


async def test_chat_failed_call_leaves_no_trace() -> None:
    llm = ScriptedLLM(fail_with=ProviderTimeout("timed out"))
    chat = Chat(llm, system="sys")
    with pytest.raises(ProviderTimeout):
        await chat.ask("hello")
    assert chat.history == [Message("system", "sys")]


async def test_chat_flags_silent_truncation_once(caplog: pytest.LogCaptureFixture) -> None:
    reset_truncation_warnings()
    llm = ScriptedLLM(["a", "b"], report_input_tokens=lambda msgs: 5)
    chat = Chat(llm, context_window=4096)
    with caplog.at_level(logging.WARNING, logger="nbinfra"):
        first = await chat.ask(" ".join(WORDS * 10))
        second = await chat.ask(" ".join(WORDS * 10))
    assert TRUNCATION_WARNING in first.warnings and TRUNCATION_WARNING in second.warnings
    assert caplog.text.count("probably truncated") == 1


async def test_chat_does_not_flag_honest_counts() -> None:
    llm = ScriptedLLM(["a"], report_input_tokens=lambda msgs: COUNTER.count_messages(msgs).tokens)
    response = await Chat(llm, context_window=4096).ask("hello there")
    assert response.warnings == []


@pytest.mark.parametrize(
    ("sent", "reported", "flagged"),
    [
        (1000, 1000, False),
        (1000, 990, False),  # framing differences of a few tokens
        (1000, 900, True),
        (TokenCount(1000, exact=False), 800, False),  # another tokenizer's estimate
        (TokenCount(1000, exact=False), 500, True),
        (5000, 2048, True),  # Ollama's default num_ctx
        (1000, 0, False),  # provider did not say
    ],
)
def test_check_prompt_tokens(sent: int | TokenCount, reported: int, flagged: bool) -> None:
    assert check_prompt_tokens(sent, reported, provider="p", model="m") is flagged


def test_reply_priming_is_counted() -> None:
    manager = ContextWindowManager(context_window=2000)
    manager.add("hi")
    assert manager.count() == COUNTER.message_tokens(Message("user", "hi")) + TOKENS_REPLY_PRIMING


def test_chat_ask_sync() -> None:
    chat = Chat(ScriptedLLM(["sync answer"]), context_window=4096)
    assert chat.ask_sync("hello").content == "sync answer"
    assert [m.role for m in chat.history] == ["user", "assistant"]


def test_modules_import_no_sdk() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "import nbinfra.llm.context, nbinfra.llm.replay, nbinfra.llm.tokens\n"
        "heavy = {'tiktoken', 'httpx', 'openai', 'numpy', 'pandas', 'ipywidgets'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": root, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
