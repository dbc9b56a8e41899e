"""Hugging Face on ``huggingface_hub.AsyncInferenceClient`` against a local TGI-style server
(the OpenAI-compatible ``/v1/chat/completions`` that ``base_url`` points at)."""

from __future__ import annotations

from typing import Any

import pytest

from nbinfra.testing.llm_wire_contract import LLMWireContract
from nbinfra.testing_llm import Reply, header
from tests.llm.conftest import TEST_KEY, Wire

pytest.importorskip("huggingface_hub")

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


class TestHuggingFaceWire(LLMWireContract):
    structured_output = True
    kind = "huggingface"
    model = MODEL
    sdk = "huggingface_hub"
    cut_after = 3  # the role chunk, then two text chunks
    error_event = b'data: {"error": "Model is overloaded", "error_type": "overloaded"}\n\n'

    def sdk_read_timeout(self, client: Any) -> float:
        return float(client.timeout)  # the SDK's default is none at all


async def test_request_path_token_and_options(wire_factory: Wire) -> None:
    server = wire_factory("huggingface")
    server.push(Reply("Forty-two.", usage=(21, 6)))
    llm = TestHuggingFaceWire().make(server)
    resp = await llm.generate(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"}],
        temperature=0.3,
        max_tokens=50,
        top_p=0.9,
        stop=["\n\n"],
        seed=7,
        response_format="json",
    )
    request = server.last("/chat/completions")
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert header(request, "authorization") == f"Bearer {TEST_KEY}"
    body = request.json()
    assert body["model"] == MODEL
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why?"},
    ]
    assert (body["temperature"], body["max_tokens"], body["top_p"]) == (0.3, 50, 0.9)
    assert (body["stop"], body["seed"]) == (["\n\n"], 7)
    assert body["response_format"] == {"type": "json_object"}
    assert body["stream"] is False
    assert resp.content == "Forty-two." and resp.finish_reason == "stop"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (21, 6)
    await llm.aclose()


async def test_stream_asks_for_usage(wire_factory: Wire) -> None:
    server = wire_factory("huggingface")
    llm = TestHuggingFaceWire().make(server)
    events = [e async for e in llm.stream_events("hi")]
    body = server.last("/chat/completions").json()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert events[-1].response is not None and events[-1].response.usage.exact
    await llm.aclose()


async def test_client_has_our_timeout(wire_factory: Wire) -> None:
    server = wire_factory("huggingface")
    llm = TestHuggingFaceWire().make(server, timeout=1.5)
    assert llm.client.timeout == 1.5  # the SDK's default is none at all
    await llm.aclose()


async def test_initialize_sends_one_token_probe(wire_factory: Wire) -> None:
    server = wire_factory("huggingface")
    llm = TestHuggingFaceWire().make(server)
    await llm.initialize()
    body = server.last("/chat/completions").json()
    assert body["max_tokens"] == 1 and body["model"] == MODEL
    assert llm.initialized
    await llm.aclose()


async def test_tgi_finish_reasons_in_common_vocabulary(wire_factory: Wire) -> None:
    server = wire_factory("huggingface")
    server.push(Reply("done", finish_reason="eos_token"))
    llm = TestHuggingFaceWire().make(server)
    assert (await llm.generate("hi")).finish_reason == "stop"
    await llm.aclose()
