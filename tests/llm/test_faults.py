"""Faults from the wire server -> the mapped error, retries with an explicit stop,
bounded total time, partial text kept on a broken stream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from nbinfra.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    LLMError,
    ProviderServerError,
    ProviderTimeout,
    RateLimitError,
)
from nbinfra.testing import free_port
from nbinfra.testing_llm import Fault, LLMWireServer, Reply
from tests.llm.conftest import provider_for

KINDS = ["openai", "azure", "groq"]
BOUND = 10.0  # seconds: every fault must surface well within this


def chat_requests(server: LLMWireServer) -> int:
    return sum(1 for r in server.requests if "chat/completions" in r.path)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.unauthorized(), AuthenticationError),
        (Fault.context_length(), ContextLengthError),
        (Fault.bad_request(), BadRequestError),
    ],
    ids=["401", "context-length", "400"],
)
async def test_non_retryable_faults_map_and_do_not_retry(
    kind: str, fault: Fault, error: type[LLMError], wire_factory: Callable[..., LLMWireServer]
) -> None:
    server = wire_factory(kind)
    server.push(fault, fault, fault)
    llm = provider_for(kind, server)
    with pytest.raises(error) as info:
        await asyncio.wait_for(llm.generate("hi"), BOUND)
    assert chat_requests(server) == 1
    assert info.value.provider == kind
    assert isinstance(info.value.__cause__, Exception)  # translated with `from exc`
    if error is AuthenticationError:
        env = {"openai": "OPENAI_API_KEY", "azure": "AZURE_OPENAI_API_KEY", "groq": "GROQ_API_KEY"}
        assert env[kind] in str(info.value)
    await llm.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_rate_limit_honours_retry_after_then_succeeds(
    kind: str, wire_factory: Callable[..., LLMWireServer]
) -> None:
    server = wire_factory(kind)
    server.push(Fault.rate_limited(retry_after=0.2), Reply("finally"))
    llm = provider_for(kind, server)
    loop = asyncio.get_running_loop()
    start = loop.time()
    resp = await asyncio.wait_for(llm.generate("hi"), BOUND)
    assert resp.content == "finally"
    assert chat_requests(server) == 2
    assert loop.time() - start >= 0.2  # it waited what Retry-After said (a lower bound)
    await llm.aclose()


async def test_retry_after_beyond_max_wait_is_not_slept(
    wire_factory: Callable[..., LLMWireServer],
) -> None:
    server = wire_factory("openai")
    server.push(Fault.rate_limited(retry_after=120), Reply("never"))
    llm = provider_for("openai", server, retry_max_wait=1.0)
    with pytest.raises(RateLimitError) as info:
        await asyncio.wait_for(llm.generate("hi"), BOUND)
    assert info.value.retry_after == 120
    assert "120" in str(info.value)
    assert chat_requests(server) == 1
    await llm.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_server_errors_retry_up_to_the_stop(
    kind: str, wire_factory: Callable[..., LLMWireServer]
) -> None:
    server = wire_factory(kind)
    server.push(*[Fault.server_error()] * 5)
    llm = provider_for(kind, server, max_retries=2)
    with pytest.raises(ProviderServerError, match="HTTP 500"):
        await asyncio.wait_for(llm.generate("hi"), BOUND)
    assert chat_requests(server) == 3  # one call + two retries, then stop
    server.reset()
    server.push(Fault.server_error(503), Reply("recovered"))
    assert (await llm.generate("hi")).content == "recovered"
    await llm.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_hang_past_timeout(kind: str, wire_factory: Callable[..., LLMWireServer]) -> None:
    server = wire_factory(kind)
    server.push(Fault.hang(3.0))
    llm = provider_for(kind, server, timeout=0.3, max_retries=0)
    with pytest.raises(ProviderTimeout, match=r"0\.3 s"):
        await asyncio.wait_for(llm.generate("hi"), BOUND)
    await llm.aclose()


async def test_per_call_timeout(wire_factory: Callable[..., LLMWireServer]) -> None:
    server = wire_factory("openai")
    server.push(Fault.hang(3.0))
    llm = provider_for("openai", server, timeout=30.0, max_retries=0)
    with pytest.raises(ProviderTimeout, match=r"0\.25 s"):
        await asyncio.wait_for(llm.generate("hi", timeout=0.25), BOUND)
    await llm.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_malformed_json(kind: str, wire_factory: Callable[..., LLMWireServer]) -> None:
    server = wire_factory(kind)
    server.push(Fault.malformed())
    llm = provider_for(kind, server, max_retries=0)
    with pytest.raises(ProviderServerError, match="JSON"):
        await asyncio.wait_for(llm.generate("hi"), BOUND)
    server.push(Fault.malformed())
    with pytest.raises(ProviderServerError):
        await asyncio.wait_for(_drain(llm.stream_generate("hi")), BOUND)
    await llm.aclose()


async def _drain(stream: object) -> list[str]:
    return [t async for t in stream]  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", KINDS)
async def test_cut_stream_keeps_partial_text(
    kind: str, wire_factory: Callable[..., LLMWireServer]
) -> None:
    server = wire_factory(kind)
    server.default = Reply(chunks=["one ", "two ", "three ", "four"])
    first_content = 2 if kind == "azure" else 1  # role chunk (+ Azure's empty chunk)
    server.push(Fault.cut(after=first_content + 2))
    llm = provider_for(kind, server)
    received: list[str] = []
    with pytest.raises(ProviderServerError, match="broke") as info:
        async with asyncio.timeout(BOUND):
            async for text in llm.stream_generate("count"):
                received.append(text)
    assert received == ["one ", "two "]
    partial = info.value.partial
    assert partial is not None
    assert partial.content == "one two "
    assert partial.finish_reason == "error"
    assert partial.usage.exact is False and partial.usage.output_tokens > 0
    assert chat_requests(server) == 1  # text had arrived: no silent retry
    await llm.aclose()


async def test_stream_stalling_mid_way_times_out_with_partial(
    wire_factory: Callable[..., LLMWireServer],
) -> None:
    server = wire_factory("openai")
    server.default = Reply(chunks=["a", "b", "c"])
    server.push(Fault.hang(3.0, after=2))
    llm = provider_for("openai", server, timeout=0.3)
    with pytest.raises(ProviderTimeout) as info:
        await asyncio.wait_for(_drain(llm.stream_generate("x")), BOUND)
    assert info.value.partial is not None and info.value.partial.content == "a"
    await llm.aclose()


async def test_stream_errors_before_text_are_retried(
    wire_factory: Callable[..., LLMWireServer],
) -> None:
    server = wire_factory("openai")
    server.push(Fault.server_error(), Fault.rate_limited(0.01), Reply(chunks=["ok"]))
    llm = provider_for("openai", server)
    events = [e async for e in llm.stream_events("x")]
    assert [e.text for e in events if not e.final] == ["ok"]
    assert sum(e.final for e in events) == 1
    assert chat_requests(server) == 3
    await llm.aclose()


async def test_unreachable_server() -> None:
    from nbinfra._secrets import Secret
    from nbinfra.llm.openai import OpenAIProvider
    from nbinfra.llm.settings import ProviderSettings

    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    llm = OpenAIProvider(
        settings=ProviderSettings(
            api_key=Secret("sk-unreachable-1"), base_url=url, timeout=1.0, max_retries=0
        )
    )
    with pytest.raises(ProviderServerError, match=r"Cannot reach openai at http://127\.0\.0\.1"):
        await asyncio.wait_for(llm.generate("x"), BOUND)
    await llm.aclose()


async def test_json_answer_cut_mid_body(wire_factory: Callable[..., LLMWireServer]) -> None:
    server = wire_factory("openai")
    server.push(Fault.cut())
    llm = provider_for("openai", server, max_retries=0)
    with pytest.raises(ProviderServerError, match="broke mid-response"):
        await asyncio.wait_for(llm.generate("x"), BOUND)
    server.push(Fault.cut(), Reply("second try"))
    retrying = provider_for("openai", server, max_retries=1)
    assert (await retrying.generate("x")).content == "second try"
    await llm.aclose()
    await retrying.aclose()
