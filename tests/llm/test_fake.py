"""The offline ``fake`` provider: deterministic, scriptable, announced as a stand-in."""

from __future__ import annotations

import json

import pytest

from nbinfra.llm import fake
from nbinfra.llm.fake import ANNOUNCEMENT, FakeLLMProvider
from nbinfra.llm.settings import ProviderSettings
from nbinfra.llm.types import LLMResponse, Usage


def make(**kwargs: object) -> FakeLLMProvider:
    return FakeLLMProvider(settings=ProviderSettings(), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def unannounced(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a fresh kernel: this process has not printed the notice yet."""
    monkeypatch.setattr(fake, "_ANNOUNCED_IN", set())


async def test_canned_answer_is_deterministic_and_says_it_is_a_stand_in(
    capsys: pytest.CaptureFixture[str], unannounced: None
) -> None:
    llm = make()
    a = await llm.generate("What is 2+2?")
    b = await llm.generate("What is 2+2?")
    assert a.content == b.content
    assert "stand-in" in a.content and "What is 2+2?" in a.content
    assert a.provider == "fake" and a.raw == {"stand_in": True}
    assert "stand-in" in repr(llm)
    out = capsys.readouterr()
    assert out.out == ANNOUNCEMENT + "\n"  # one line, on stdout
    assert out.err == ""  # stderr shows as an error box in JupyterLab


async def test_announced_once_per_process(
    capsys: pytest.CaptureFixture[str], unannounced: None
) -> None:
    for _ in range(3):  # three notebook cells, three providers
        await make().generate("hi")
    assert capsys.readouterr().out.count(ANNOUNCEMENT) == 1
    await make(announce=False).generate("quiet")
    assert capsys.readouterr().out == ""


async def test_not_announced_when_told_not_to(
    capsys: pytest.CaptureFixture[str], unannounced: None
) -> None:
    await make(announce=False).generate("quiet")
    assert capsys.readouterr().out == ""
    await make().generate("now")  # the first announcing instance still announces
    assert capsys.readouterr().out.count(ANNOUNCEMENT) == 1


async def test_scripted_responses_in_order_then_canned() -> None:
    llm = make(
        responses=["one", LLMResponse("two", "m", "fake", usage=Usage(3, 1))], announce=False
    )
    assert (await llm.generate("a")).content == "one"
    second = await llm.generate("b")
    assert second.content == "two" and second.usage == Usage(3, 1)
    assert "stand-in" in (await llm.generate("c")).content
    assert [m[0][-1].content for m in llm.calls] == ["a", "b", "c"]


async def test_respond_callable_and_chunking() -> None:
    llm = make(respond=lambda msgs, opts: msgs[-1].content.upper(), chunk_words=2, announce=False)
    chunks = [t async for t in llm.stream_generate("one two three four five")]
    assert chunks == ["ONE TWO ", "THREE FOUR ", "FIVE"]


async def test_json_mode_returns_json() -> None:
    llm = make(announce=False)
    resp = await llm.generate("give json", response_format="json")
    assert json.loads(resp.content) == {"stand_in": True, "echo": "give json"}


async def test_initialize_and_embeddings() -> None:
    llm = make(announce=False, embedding_dim=12)
    await llm.initialize()
    assert llm.initialized and llm.context_window == 8192
    v1, v2, v1_again = await llm.embed(["cat", "dog", "cat"])
    assert len(v1) == 12 and v1 == v1_again and v1 != v2
    assert sum(x * x for x in v1) == pytest.approx(1.0)
    assert await llm.embed([]) == []
