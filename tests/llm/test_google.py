"""Gemini on the official ``google-genai`` SDK against a local generativelanguage server."""

from __future__ import annotations

from typing import Any

import pytest

from nbinfra.errors import AuthenticationError
from nbinfra.testing.llm_wire_contract import LLMWireContract
from nbinfra.testing_llm import Fault, Reply, header
from tests.llm.conftest import TEST_KEY, Wire

pytest.importorskip("google.genai")

MODEL = "gemini-2.0-flash"


class TestGoogleWire(LLMWireContract):
    structured_output = True
    kind = "google"
    model = MODEL
    sdk = "google.genai"
    cut_after = 2
    error_event = (
        b'data: {"error": {"code": 503, "message": "The model is overloaded.", '
        b'"status": "UNAVAILABLE"}}\r\n\r\n'
    )

    def sdk_read_timeout(self, client: Any) -> float:
        options = client._api_client._http_options
        assert options.retry_options.attempts == 1
        assert options.httpx_async_client.timeout.read == options.timeout / 1000
        return float(options.timeout) / 1000


async def test_generate_request_path_key_and_generation_config(wire_factory: Wire) -> None:
    server = wire_factory("google")
    server.push(Reply("Forty-two.", usage=(21, 6)))
    llm = TestGoogleWire().make(server)
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
        response_format="json",
    )
    request = server.last(":generateContent")
    assert (request.method, request.path) == ("POST", f"/v1beta/models/{MODEL}:generateContent")
    assert header(request, "x-goog-api-key") == TEST_KEY
    body = request.json()
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert [(c["role"], c["parts"][0]["text"]) for c in body["contents"]] == [
        ("user", "Why?"),
        ("model", "Because."),
        ("user", "More?"),
    ]
    assert body["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.9,
        "maxOutputTokens": 50,
        "stopSequences": ["\n\n"],
        "seed": 7,
        "responseMimeType": "application/json",
    }
    assert resp.content == "Forty-two."
    assert resp.finish_reason == "stop"  # STOP in the common vocabulary
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (21, 6)
    await llm.aclose()


async def test_stream_uses_sse_endpoint(wire_factory: Wire) -> None:
    server = wire_factory("google")
    llm = TestGoogleWire().make(server)
    text = "".join([t async for t in llm.stream_generate("hi")])
    request = server.last(":streamGenerateContent")
    assert request.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert request.query == "alt=sse"
    assert text == server.default.text
    await llm.aclose()


async def test_bad_key_http_400_api_key_invalid_is_authentication_error(wire_factory: Wire) -> None:
    server = wire_factory("google")
    server.push(Fault.unauthorized())
    llm = TestGoogleWire().make(server)
    with pytest.raises(AuthenticationError, match="GOOGLE_API_KEY"):
        await llm.generate("hi")
    # what the server answered is Gemini's real shape: 400 + API_KEY_INVALID
    answer = server.formats["google"].error(Fault.unauthorized())
    assert answer.status == 400 and "API_KEY_INVALID" in str(answer.body)
    await llm.aclose()


async def test_retry_delay_from_retry_info_when_no_header(wire_factory: Wire) -> None:
    from nbinfra.errors import RateLimitError

    server = wire_factory("google")
    server.push(Fault("status", 429, "Resource has been exhausted", retry_after=0.3))
    llm = TestGoogleWire().make(server, max_retries=0)
    fmt = server.formats["google"]
    original = fmt.error

    def without_header(fault: Fault) -> object:
        answer = original(fault)
        answer.headers.pop("retry-after", None)
        return answer

    fmt.error = without_header  # type: ignore[method-assign,assignment]
    try:
        with pytest.raises(RateLimitError) as info:
            await llm.generate("hi")
    finally:
        del fmt.error
    assert info.value.retry_after == pytest.approx(0.3)
    await llm.aclose()


async def test_initialize_learns_input_token_limit(wire_factory: Wire) -> None:
    server = wire_factory("google")
    server.models[MODEL] = {"inputTokenLimit": 32768}
    llm = TestGoogleWire().make(server)
    await llm.initialize()
    request = server.last(f"/models/{MODEL}")
    assert request.method == "GET" and header(request, "x-goog-api-key") == TEST_KEY
    assert llm.context_window == 32768
    await llm.aclose()


async def test_embeddings_batch(wire_factory: Wire) -> None:
    server = wire_factory("google")
    llm = TestGoogleWire().make(server)
    vectors = await llm.embed(["alpha", "beta"])
    request = server.last(":batchEmbedContents")
    assert request.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    texts = [r["content"]["parts"][0]["text"] for r in request.json()["requests"]]
    assert texts == ["alpha", "beta"]
    assert len(vectors) == 2 and len(vectors[0]) == 8 and vectors[0] != vectors[1]
    await llm.aclose()
