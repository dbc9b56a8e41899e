"""BaseLLMProvider behaviour shared by every provider: options, retry policy, estimates,
the response-store hook (cache / record / replay) and stream framing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nbinfra.errors import (
    AuthenticationError,
    BadRequestError,
    ProviderServerError,
    ProviderTimeout,
    RateLimitError,
    ReplayMissError,
)
from nbinfra.llm.base import Delta, RetryPolicy, estimate_messages, estimate_text
from nbinfra.llm.fake import FakeLLMProvider
from nbinfra.llm.settings import ProviderSettings
from nbinfra.llm.types import LLMResponse, Message, Usage
from nbinfra.testing_llm import LLMWireServer, Reply
from tests.llm.conftest import provider_for


def fake(**kwargs: Any) -> FakeLLMProvider:
    settings = ProviderSettings(max_retries=2, retry_backoff=0.0, timeout=5.0)
    return FakeLLMProvider(settings=settings, announce=False, **kwargs)


# -- options ------------------------------------------------------------------------
def test_unknown_option_names_the_nearest() -> None:
    llm = fake()
    with pytest.raises(TypeError, match="Did you mean 'temperature'"):
        llm.prepare("hi", {"temprature": 0.1})


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("temperature", 3.5, "between 0 and 2"),
        ("top_p", -0.1, "between 0 and 1"),
        ("max_tokens", 0, "at least 1"),
        ("max_tokens", "10", "integer"),
        ("seed", 1.5, "integer"),
        ("stop", [1, 2], "strings"),
        ("response_format", "xml", "'json' or 'text'"),
        ("timeout", 0, "positive"),
    ],
)
def test_bad_option_values(key: str, value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fake().prepare("hi", {key: value})


def test_options_merge_instance_defaults_and_call_values() -> None:
    llm = fake(temperature=0.2, max_tokens=10)
    messages, opts = llm.prepare("hi", {"max_tokens": 99, "stop": "END", "system": "Be kind."})
    assert [m.role for m in messages] == ["system", "user"]
    assert opts.temperature == 0.2 and opts.max_tokens == 99 and opts.stop == ("END",)
    assert opts.to_dict() == {"temperature": 0.2, "max_tokens": 99, "stop": ["END"]}
    _, json_opts = llm.prepare("hi", {"response_format": {"type": "json_object"}})
    assert json_opts.json and json_opts.response_format == "json"
    _, other = llm.prepare("hi", {"model": "other-model"})
    assert other.model == "other-model"


def test_request_key_shape() -> None:
    llm = fake()
    messages, opts = llm.prepare([Message("user", "hi")], {"seed": 3})
    assert llm.request_key(messages, opts) == {
        "provider": "fake",
        "model": "fake-echo",
        "messages": [{"role": "user", "content": "hi"}],
        "options": {"seed": 3},
    }


# -- retry policy -------------------------------------------------------------------
def test_retry_policy_has_an_explicit_stop() -> None:
    policy = RetryPolicy(max_retries=3, backoff=0.5, max_wait=1.5)
    server = ProviderServerError("boom")
    assert [policy.delay(n, server) for n in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, None]
    assert policy.delay(1, ProviderTimeout("slow")) == 0.5
    assert policy.delay(1, RateLimitError("429", retry_after=1.2)) == 1.2
    assert policy.delay(1, RateLimitError("429", retry_after=60)) is None
    assert policy.delay(1, AuthenticationError("no")) is None
    assert policy.delay(1, BadRequestError("no")) is None


async def test_scripted_errors_go_through_retries() -> None:
    llm = fake(
        responses=[RateLimitError("slow down", retry_after=0), ProviderServerError("x"), "ok"]
    )
    assert (await llm.generate("hi")).content == "ok"
    assert len(llm.calls) == 3
    llm.script(AuthenticationError("bad key"), "never")
    with pytest.raises(AuthenticationError):
        await llm.generate("hi")


# -- estimates ----------------------------------------------------------------------
def test_estimates_are_labelled() -> None:
    assert estimate_text("x" * 40).tokens == 10
    assert estimate_text("abc").exact is False
    count = estimate_messages([Message("user", "x" * 40), Message("assistant", "y" * 8)])
    assert count.tokens == (10 + 4) + (2 + 4) + 3 and count.label == "estimated"


def test_count_tokens_accepts_prompts_and_messages() -> None:
    llm = fake()
    assert llm.count_tokens("hello world").tokens > 0
    long = llm.count_tokens([{"role": "user", "content": "hello world " * 50}])
    assert long.tokens > llm.count_tokens("hello world").tokens


# -- streams ------------------------------------------------------------------------
async def test_stream_generate_yields_only_text_and_events_end_once() -> None:
    llm = fake(responses=["alpha beta gamma", "alpha beta gamma"])
    texts = [t async for t in llm.stream_generate("hi")]
    assert "".join(texts) == "alpha beta gamma" and all(isinstance(t, str) for t in texts)
    events = [e async for e in llm.stream_events("hi")]
    assert [e.final for e in events] == [False, False, False, True]
    final = events[-1].response
    assert final is not None and final.content == "alpha beta gamma"
    assert final.usage.exact is False and final.time_to_first_token is not None


async def test_plain_text_chunks_and_deltas_make_one_response() -> None:
    """A provider's ``_stream`` yields bare ``str`` for text-only chunks (the fast path)
    and ``Delta`` for end-of-stream facts; both reach the caller and the final response."""

    class Mixed(FakeLLMProvider):
        async def _stream(self, messages: Any, opts: Any) -> Any:
            yield "a "
            yield Delta("b ", model="model-2", raw={"n": 2})
            yield "c"
            yield Delta(finish_reason="length", usage=Usage(7, 3))

    llm = Mixed(settings=ProviderSettings(), announce=False)
    assert [t async for t in llm.stream_generate("hi")] == ["a ", "b ", "c"]
    events = [e async for e in llm.stream_events("hi")]
    assert [e.text for e in events if not e.final] == ["a ", "b ", "c"]
    final = events[-1].response
    assert final is not None and final.content == "a b c"
    assert (final.model, final.finish_reason, final.raw) == ("model-2", "length", {"n": 2})
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.exact) == (
        7,
        3,
        True,
    )


async def test_stream_generate_records_the_response_it_does_not_yield() -> None:
    store = MemoryStore("record")
    llm = fake(responses=["one two"], response_store=store)
    assert "".join([t async for t in llm.stream_generate("q")]) == "one two"
    (recorded,) = store.data.values()
    assert recorded.content == "one two" and recorded.usage.output_tokens > 0
    store.mode = "replay"
    assert [t async for t in llm.stream_generate("q")] == ["one two"]
    assert len(llm.calls) == 1  # the replay made no call


async def test_breaking_off_a_stream_closes_the_provider_stream() -> None:
    closed: list[bool] = []

    class Tracking(FakeLLMProvider):
        async def _stream(self, messages: Any, opts: Any) -> Any:
            try:
                for word in ("a ", "b ", "c "):
                    yield Delta(word)
            finally:
                closed.append(True)

    llm = Tracking(settings=ProviderSettings(), announce=False)
    for make in (llm.stream_generate, llm.stream_events):
        closed.clear()
        stream = make("hi")
        await stream.__anext__()
        await stream.aclose()  # type: ignore[attr-defined]
        assert closed == [True]  # closed now, not at garbage collection


# -- response store hook ------------------------------------------------------------
class MemoryStore:
    """A minimal store following interfaces.md (the real one lives in nbinfra.llm)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.data: dict[str, LLMResponse] = {}
        self.gets: list[dict[str, Any]] = []

    @staticmethod
    def _key(request: dict[str, Any]) -> str:
        return repr(sorted((k, repr(v)) for k, v in request.items()))

    async def get(self, request: dict[str, Any]) -> LLMResponse | None:
        self.gets.append(request)
        return self.data.get(self._key(request))

    async def put(self, request: dict[str, Any], response: LLMResponse) -> None:
        self.data[self._key(request)] = response


async def test_record_then_replay_makes_no_http_request(
    wire_factory: Callable[..., LLMWireServer],
) -> None:
    server = wire_factory("openai")
    server.push(Reply("recorded answer", usage=(5, 2)), Reply(chunks=["stream", "ed"]))
    store = MemoryStore("record")
    llm = provider_for("openai", server, response_store=store)
    first = await llm.generate("question", temperature=0)
    streamed = [e async for e in llm.stream_events("other", temperature=0)]
    assert len(store.data) == 2 and store.gets == []  # record mode never reads
    calls = len(server.requests)

    store.mode = "replay"
    again = await llm.generate("question", temperature=0)
    assert again.content == first.content == "recorded answer"
    assert again.cached is True
    replayed = [e async for e in llm.stream_events("other", temperature=0)]
    assert [e.text for e in replayed if not e.final] == ["streamed"]
    assert replayed[-1].final and replayed[-1].response is not None
    assert replayed[-1].response.content == streamed[-1].response.content  # type: ignore[union-attr]
    with pytest.raises(ReplayMissError, match="no recorded response"):
        await llm.generate("never asked", temperature=0)
    with pytest.raises(ReplayMissError):
        await llm.generate("question", temperature=0.5)  # options are part of the key
    assert len(server.requests) == calls  # zero HTTP requests while replaying
    await llm.aclose()


async def test_cache_mode_reads_then_writes() -> None:
    store = MemoryStore("cache")
    llm = fake(responses=["first", "second"], response_store=store)
    assert (await llm.generate("q")).content == "first"
    hit = await llm.generate("q")
    assert hit.content == "first" and hit.cached
    assert len(llm.calls) == 1
    store.mode = "off"
    assert (await llm.generate("q")).content == "second"


async def test_store_comes_from_the_session(nbinfra_session: Any) -> None:
    from nbinfra.llm import LLMFactory

    store = MemoryStore("replay")
    llm = LLMFactory.get_llm("fake", session=nbinfra_session)
    nbinfra_session.state["llm.response_store"] = store
    with pytest.raises(ReplayMissError):
        await llm.generate("hi")
    assert store.gets and store.gets[0]["provider"] == "fake"
