"""Anthropic on the official ``anthropic`` SDK against a local Messages API server."""

from __future__ import annotations

from typing import Any

import pytest

from nbinfra.llm.anthropic import JSON_INSTRUCTION
from nbinfra.testing.llm_wire_contract import LLMWireContract
from nbinfra.testing_llm import Reply, header
from tests.llm.conftest import TEST_KEY, Wire

pytest.importorskip("anthropic")

MODEL = "claude-3-5-haiku-latest"


class TestAnthropicWire(LLMWireContract):
    structured_output = True
    kind = "anthropic"
    model = MODEL
    sdk = "anthropic"
    always_reports_usage = True  # usage is a required field of every message
    cut_after = 5  # message_start, content_block_start, ping, then two text deltas
    error_event = (
        b"event: error\n"
        b'data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
        b"\n\n"
    )

    def sdk_read_timeout(self, client: Any) -> float:
        assert client.max_retries == 0
        return float(client.timeout.read)


def _key_sent(request: object) -> bool:
    # Older SDKs send x-api-key, newer ones a bearer token: either carries our key.
    return header(request, "x-api-key") == TEST_KEY or (  # type: ignore[arg-type]
        header(request, "authorization") == f"Bearer {TEST_KEY}"  # type: ignore[arg-type]
    )


async def test_request_has_top_level_system_and_options(wire_factory: Wire) -> None:
    server = wire_factory("anthropic")
    server.push(Reply("Forty-two.", usage=(21, 6)))
    llm = TestAnthropicWire().make(server)
    resp = await llm.generate(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Why?"},
            {"role": "assistant", "content": "Because."},
            {"role": "user", "content": "More?"},
        ],
        temperature=0.3,
        max_tokens=50,
        top_p=0.9,
        stop=["\n\n"],
        seed=7,
    )
    request = server.last("/v1/messages")
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert _key_sent(request)
    assert header(request, "anthropic-version")
    assert header(request, "x-stainless-retry-count") == "0"
    body = request.json()
    assert body["model"] == MODEL
    assert body["system"] == "Be brief."
    assert body["messages"] == [
        {"role": "user", "content": "Why?"},
        {"role": "assistant", "content": "Because."},
        {"role": "user", "content": "More?"},
    ]
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.3, 0.9, 50)
    assert body["stop_sequences"] == ["\n\n"]
    assert "seed" not in body and "stream" not in body
    assert resp.content == "Forty-two."
    assert resp.finish_reason == "stop"  # end_turn in the common vocabulary
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (21, 6)
    await llm.aclose()


async def test_default_max_tokens_and_json_instruction(wire_factory: Wire) -> None:
    server = wire_factory("anthropic")
    llm = TestAnthropicWire().make(server)
    await llm.generate("hi", response_format="json")
    body = server.last("/v1/messages").json()
    assert body["max_tokens"] == 4096  # the API requires one
    assert body["system"] == JSON_INSTRUCTION
    await llm.aclose()


async def test_stream_request_and_usage_from_message_start_and_delta(wire_factory: Wire) -> None:
    server = wire_factory("anthropic")
    server.push(Reply(chunks=["a", "b"], usage=(30, 2), finish_reason="length"))
    llm = TestAnthropicWire().make(server)
    events = [e async for e in llm.stream_events("hi")]
    assert server.last("/v1/messages").json()["stream"] is True
    final = events[-1].response
    assert final is not None and final.content == "ab"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (30, 2)
    assert final.finish_reason == "length"  # max_tokens
    # the server really spoke Anthropic's event names
    pieces = server.formats["anthropic"].stream_events(Reply(chunks=["a"]), server.last())
    names = [p.split(b"\n", 1)[0] for p in pieces]
    assert names[0] == b"event: message_start"
    assert b"event: message_delta" in names and names[-1] == b"event: message_stop"
    await llm.aclose()


async def test_initialize_learns_window_from_model(wire_factory: Wire) -> None:
    server = wire_factory("anthropic")
    server.models[MODEL] = {"max_input_tokens": 150000}
    llm = TestAnthropicWire().make(server)
    await llm.initialize()
    request = server.last("/v1/models/")
    assert request.path == f"/v1/models/{MODEL}" and _key_sent(request)
    assert llm.initialized and llm.context_window == 150000
    await llm.aclose()


@pytest.mark.parametrize("status", [529, 500])
async def test_overloaded_is_server_error(wire_factory: Wire, status: int) -> None:
    from nbinfra.errors import ProviderServerError
    from nbinfra.testing_llm import Fault

    server = wire_factory("anthropic")
    server.push(Fault.server_error(status))
    llm = TestAnthropicWire().make(server, max_retries=0)
    with pytest.raises(ProviderServerError, match=str(status)):
        await llm.generate("hi")
    await llm.aclose()


async def test_temperature_above_one_is_refused_before_sending(wire_factory: Wire) -> None:
    from nbinfra.errors import BadRequestError

    server = wire_factory("anthropic")
    llm = TestAnthropicWire().make(server)
    with pytest.raises(BadRequestError, match="between 0 and 1"):
        await llm.generate("hi", temperature=1.5)
    assert server.requests == []
    await llm.aclose()


async def test_prompt_tokens_include_cache_reads_and_writes(wire_factory: Wire) -> None:
    server = wire_factory("anthropic")
    fmt = server.formats["anthropic"]
    original = fmt._message

    def cached(reply: Reply, request: Any, content: list[Any]) -> dict[str, Any]:
        out = original(reply, request, content)
        out["usage"].update(cache_read_input_tokens=100, cache_creation_input_tokens=20)
        return out

    fmt._message = cached  # type: ignore[method-assign]
    try:
        llm = TestAnthropicWire().make(server)
        server.push(Reply("x", usage=(3, 1)), Reply(chunks=["y"], usage=(3, 1)))
        resp = await llm.generate("hi")
        final = [e async for e in llm.stream_events("hi")][-1].response
    finally:
        del fmt._message
    assert resp.usage.input_tokens == 123
    assert final is not None and final.usage.input_tokens == 123
    await llm.aclose()
