"""provider_picker and context_preview, driven headlessly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import nbinfra
from nbinfra.llm.context import Chat
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
