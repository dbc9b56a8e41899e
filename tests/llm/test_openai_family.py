"""OpenAI, Azure OpenAI and Groq on their official SDKs against a local wire server.

Asserts what we send (path, auth header, body with options and stream_options) and what
we parse (content, usage, finish reason, Azure's empty first stream chunk).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nbinfra.llm.types import StreamChunk
from nbinfra.testing_llm import LLMWireServer, Reply, header
from tests.llm.conftest import TEST_KEY, provider_for

KINDS = ["openai", "azure", "groq"]
CHAT_PATH = {
    "openai": "/v1/chat/completions",
    "azure": "/openai/deployments/my-deployment/chat/completions",
    "groq": "/openai/v1/chat/completions",
}


def _auth_ok(kind: str, request: object) -> None:
    if kind == "azure":
        assert header(request, "api-key") == TEST_KEY  # type: ignore[arg-type]
        assert "api-version=2024-10-21" in request.query  # type: ignore[attr-defined]
    else:
        assert header(request, "authorization") == f"Bearer {TEST_KEY}"  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
async def test_generate_sends_options_and_parses_usage(
    kind: str, wire_factory: Callable[..., LLMWireServer]
) -> None:
    server = wire_factory(kind)
    server.push(Reply("The answer is 42.", usage=(21, 6), finish_reason="length"))
    llm = provider_for(kind, server)
    resp = await llm.generate(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"}],
        temperature=0.3,
        max_tokens=50,
        top_p=0.9,
        stop=["\n\n"],
        seed=7,
        response_format="json",
    )
    request = server.last("chat/completions")
    assert request.method == "POST"
    assert request.path == CHAT_PATH[kind]
    _auth_ok(kind, request)
    assert header(request, "x-stainless-retry-count") == "0"  # the SDK does not retry
    assert header(request, "x-stainless-read-timeout") == "2.0"  # our timeout, not 600 s
    body = request.json()
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why?"},
    ]
    assert body["temperature"] == 0.3
    assert body["max_tokens"] == 50
    assert body["top_p"] == 0.9
    assert body["stop"] == ["\n\n"]
    assert body["seed"] == 7
    assert body["response_format"] == {"type": "json_object"}
    assert "stream" not in body
    assert resp.content == "The answer is 42."
    assert resp.finish_reason == "length"
    assert resp.provider == kind
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.exact) == (21, 6, True)
    assert resp.options["temperature"] == 0.3
    assert resp.latency > 0
    await llm.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_ends_with_one_final_event_with_usage(
    kind: str, wire_factory: Callable[..., LLMWireServer]
) -> None:
    server = wire_factory(kind)
    server.push(Reply(chunks=["Hel", "lo", ", ", "world"], usage=(9, 4)))
    llm = provider_for(kind, server)
    events: list[StreamChunk] = [e async for e in llm.stream_events("Say hello", temperature=0)]
    body = server.last("chat/completions").json()
    assert body["stream"] is True
    if kind == "groq":
        assert "stream_options" not in body  # Groq reports usage in x_groq unasked
    else:
        assert body["stream_options"] == {"include_usage": True}
    texts = [e.text for e in events if not e.final]
    assert texts == ["Hel", "lo", ", ", "world"]
    finals = [e for e in events if e.final]
    assert len(finals) == 1 and events[-1].final
    final = finals[0].response
    assert final is not None
    assert final.content == "Hello, world"
    assert final.finish_reason == "stop"
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.exact) == (9, 4, True)
    assert final.time_to_first_token is not None
    assert 0 < final.time_to_first_token <= final.latency
    await llm.aclose()


async def test_azure_first_chunk_with_empty_choices_is_skipped(
    wire_factory: Callable[..., LLMWireServer],
) -> None:
    server = wire_factory("azure")
    server.push(Reply(chunks=["A", "B"], usage=(3, 2)))
    llm = provider_for("azure", server)
    deltas = [t async for t in llm.stream_generate("x")]
    assert deltas == ["A", "B"]
    # the server really sent the empty-choices chunk first
    events = server.formats["azure"].stream_events(Reply(chunks=["A"]), server.last("chat"))
    assert b'"choices": []' in events[0] and b"prompt_filter_results" in events[0]
    await llm.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_without_reported_usage_is_estimated(
    kind: str, wire_factory: Callable[..., LLMWireServer]
) -> None:
    server = wire_factory(kind)
    server.push(Reply("one two three four", usage=None))
    llm = provider_for(kind, server)
    events = [e async for e in llm.stream_events("count please")]
    final = events[-1].response
    assert final is not None and final.content == "one two three four"
    assert final.usage.exact is False
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    await llm.aclose()


async def test_cost_from_configured_prices(wire_factory: Callable[..., LLMWireServer]) -> None:
    server = wire_factory("openai")
    server.push(Reply("ok", usage=(1_000_000, 500_000)))
    llm = provider_for("openai", server)
    resp = await llm.generate("hi")
    assert resp.cost == pytest.approx(0.15 + 0.30)
    await llm.aclose()


@pytest.mark.parametrize("kind", ["openai", "groq"])
async def test_initialize_checks_model_and_learns_window(
    kind: str, wire_factory: Callable[..., LLMWireServer]
) -> None:
    server = wire_factory(kind)
    model = "llama-3.1-8b-instant" if kind == "groq" else "gpt-4o-mini"
    server.models[model] = {"context_window": 4096}
    llm = provider_for(kind, server)
    assert llm.context_window in (128000, 131072)  # from configuration before initialize
    await llm.initialize()
    request = server.last("/models/")
    assert request.method == "GET" and request.path.endswith(f"/models/{model}")
    _auth_ok(kind, request)
    assert llm.initialized and llm.context_window == 4096
    await llm.aclose()


async def test_azure_initialize_lists_models(wire_factory: Callable[..., LLMWireServer]) -> None:
    server = wire_factory("azure")
    llm = provider_for("azure", server)
    await llm.initialize()
    request = server.last("/openai/models")
    _auth_ok("azure", request)
    assert llm.initialized
    await llm.aclose()


async def test_embeddings(wire_factory: Callable[..., LLMWireServer]) -> None:
    server = wire_factory("openai")
    llm = provider_for("openai", server)
    vectors = await llm.embed(["alpha", "beta"])
    body = server.last("/embeddings").json()
    assert body["input"] == ["alpha", "beta"]
    assert body["model"] == "text-embedding-3-small"
    assert len(vectors) == 2 and len(vectors[0]) == 8 and vectors[0] != vectors[1]
    assert vectors == await llm.embed(["alpha", "beta"])
    await llm.aclose()


async def test_official_openai_uses_max_completion_tokens() -> None:
    from nbinfra._secrets import Secret
    from nbinfra.llm.openai import OpenAIProvider
    from nbinfra.llm.settings import ProviderSettings

    llm = OpenAIProvider(settings=ProviderSettings(api_key=Secret("sk-x-123456"), model="o4-mini"))
    messages, opts = llm.prepare("hi", {"max_tokens": 5})
    assert llm._params(messages, opts, stream=False)["max_completion_tokens"] == 5


async def test_azure_embeddings_use_the_deployment(
    wire_factory: Callable[..., LLMWireServer],
) -> None:
    server = wire_factory("azure")
    llm = provider_for("azure", server)
    vectors = await llm.embed("hello", model="emb-deployment")
    request = server.last("/embeddings")
    assert request.path == "/openai/deployments/emb-deployment/embeddings"
    _auth_ok("azure", request)
    assert len(vectors) == 1 and len(vectors[0]) == 8
    await llm.aclose()


async def test_groq_has_no_embeddings(wire_factory: Callable[..., LLMWireServer]) -> None:
    from nbinfra.errors import LLMError

    llm = provider_for("groq", wire_factory("groq"))
    with pytest.raises(LLMError, match="embedding_model"):
        await llm.embed("x")


def test_provider_used_from_two_event_loops(wire_factory: Callable[..., LLMWireServer]) -> None:
    import asyncio

    from nbinfra import _loop

    server = wire_factory("openai")
    llm = provider_for("openai", server)
    on_background = _loop.run_sync(llm.generate("a")).content  # nbinfra's loop

    async def here() -> str:
        text = (await llm.generate("b")).content  # another loop: its own client
        await llm.aclose()  # closes both clients, each on its loop
        return text

    assert asyncio.run(here()) == on_background == server.default.text
    assert llm._client is None


async def test_initialize_without_key_names_the_variable(
    wire_factory: Callable[..., LLMWireServer],
) -> None:
    from nbinfra.errors import AuthenticationError

    llm = provider_for("groq", wire_factory("groq"), key="")
    with pytest.raises(AuthenticationError, match="No API key for groq: set GROQ_API_KEY"):
        await llm.initialize()
