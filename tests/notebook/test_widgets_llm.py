"""provider_picker and context_preview, driven headlessly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import nbinfra
from nbinfra.llm.context import Chat, ContextWindowManager
from nbinfra.llm.tokens import TOKENS_REPLY_PRIMING
from nbinfra.llm.types import Message
from nbinfra.session import Session, use_session
from tests.notebook.conftest import TestingShell


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    (tmp_path / "application-llm.yaml").write_text(
        "llm:\n  default: fake\n  providers:\n"
        "    openai:\n      api_key: sk-widget-test-key\n      model: gpt-4o-mini\n"
        "      models:\n        gpt-4o-mini: {context_window: 128000}\n"
        "        gpt-4o: {context_window: 128000}\n"
    )
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        yield fresh
    fresh.close()


def test_choosing_a_provider_sets_the_llm_default(ip: TestingShell, session: Session) -> None:
    picker = nbinfra.widgets.provider_picker()
    labels = dict((value, label) for label, value in picker.provider.options)
    assert "key set" in labels["openai"] and "no key" in labels["groq"]
    picker.provider.value = "openai"
    assert picker.model.options == ("gpt-4o", "gpt-4o-mini")
    assert ip._nbinfra_magics.default_provider == "openai:gpt-4o-mini"
    picker.model.value = "gpt-4o"
    assert ip._nbinfra_magics.default_provider == "openai:gpt-4o"
    assert "openai:gpt-4o" in picker.status.value
    picker.provider.value = "fake"
    assert ip._nbinfra_magics.default_provider == "fake:fake-echo"
    ip.cell("%%llm -o r\nhello")
    assert ip.user_ns["r"].provider == "fake"


def test_picker_opens_on_what_llm_uses(ip: TestingShell, session: Session) -> None:
    magics = ip._nbinfra_magics
    magics.default_provider = ""
    picker = nbinfra.widgets.provider_picker()
    assert (picker.provider.value, picker.model.value) == ("fake", "fake-echo")
    assert "%llm uses <code>fake:fake-echo</code> (llm.default)" in picker.status.value
    assert magics.default_provider == "", "opening the picker must not change the default"
    ip.run_line_magic("llm", "use openai:gpt-4o")
    picker = nbinfra.widgets.provider_picker()
    assert (picker.provider.value, picker.model.value) == ("openai", "gpt-4o")
    assert "<code>openai:gpt-4o</code>" in picker.status.value
    ip.run_line_magic("llm", "use openai")
    picker = nbinfra.widgets.provider_picker()
    assert (picker.provider.value, picker.model.value) == ("openai", "gpt-4o-mini")
    assert magics.default_provider == "openai"


def test_context_preview_of_a_magic_chat(ip: TestingShell, session: Session) -> None:
    ip.cell("%%llm -p fake --chat demo\nfirst")
    ip.cell("%%llm -p fake --chat demo\nsecond")
    widget = nbinfra.widgets.context_preview("demo")
    assert [e.role for e in widget.preview.entries] == ["user", "assistant", "user", "assistant"]
    with pytest.raises(KeyError, match="No %llm chat named 'nope'"):
        nbinfra.widgets.context_preview("nope")
    chat = ip._nbinfra_magics.state.chats["demo"]
    assert isinstance(chat, Chat)
    assert nbinfra.widgets.context_preview(chat).preview.total_tokens > 0


def _trip(budget: int) -> ContextWindowManager:
    manager = ContextWindowManager(
        context_window=budget, max_output_tokens=0, margin=0, system="You answer briefly."
    )
    for question in ("What should we see in Lyon?", "And outdoors?", "Where should we eat?"):
        manager.add(Message("user", question))
        manager.add(Message("assistant", f"An answer to: {question}"))
    return manager


def test_context_preview_slider_starts_at_what_the_chat_needs() -> None:
    manager = _trip(50)  # the chat keeps some turns, not all
    counter = manager.counter
    needed = (
        counter.message_tokens(manager.messages[0])  # system prompt
        + sum(counter.message_tokens(m) for m in manager.messages[-2:])  # newest turn
        + TOKENS_REPLY_PRIMING
    )
    assert manager.min_budget == needed
    widget = nbinfra.widgets.context_preview(manager)
    assert widget.budget.min == needed
    assert widget.budget.max == manager.count() > manager.budget  # everything fits at the top
    widget.budget.value = widget.budget.max
    assert widget.preview.count("dropped") == 0
    for strategy in ("recent", "sliding_window", "summarization"):
        widget.strategy.value = strategy
        widget.budget.value = needed - 10  # below the minimum: the slider stays at it
        assert widget.budget.value == needed
        preview = widget.preview
        assert (preview.budget, preview.strategy) == (needed, strategy)
        assert [e.status for e in preview.entries] == ["kept"] + ["dropped"] * 4 + ["kept"] * 2
        assert "over budget" not in widget.summary.value and widget.table.value


def test_context_preview_of_a_chat_over_its_own_budget() -> None:
    manager = _trip(20)  # the chat's own budget is below what its newest turn needs
    widget = nbinfra.widgets.context_preview(manager)
    assert widget.budget.value == widget.budget.min == manager.min_budget
    assert widget.preview.count("kept") == 3


def test_context_preview_follows_a_growing_chat() -> None:
    manager = _trip(50)
    widget = nbinfra.widgets.context_preview(manager)
    small = widget.budget.min
    widget.budget.value = small
    manager.add(Message("user", "And a long question: " + "which museum, which park? " * 20))
    assert manager.min_budget > widget.budget.max
    widget.strategy.value = "sliding_window"  # any change re-renders with the new minimum
    assert widget.budget.min == widget.budget.value == manager.min_budget
    assert widget.budget.max >= widget.budget.min
    assert widget.preview.budget == manager.min_budget
    assert widget.preview.entries[-1].status == "kept"
