"""Ollama on the official ``ollama`` SDK against a local server speaking Ollama's API
(``/api/chat`` JSON and NDJSON streams, ``/api/show``, ``/api/embed``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from nbinfra.errors import BadRequestError, ProviderServerError
from nbinfra.llm.truncation import TRUNCATION_WARNING, reset_truncation_warnings
from nbinfra.testing.llm_wire_contract import LLMWireContract
from nbinfra.testing_llm import Reply, header
from tests.llm.conftest import Wire, provider_for

pytest.importorskip("ollama")

MODEL = "llama3.2"


class TestOllamaWire(LLMWireContract):
    structured_output = True
    kind = "ollama"
    model = MODEL
    sdk = "ollama"
    cut_after = 2
    error_event = b'{"error": "server overloaded, please retry shortly"}\n'

    def sdk_read_timeout(self, client: Any) -> float:
        return float(client._client.timeout.read)


async def test_chat_request_options_and_eval_counts(wire_factory: Wire) -> None:
    server = wire_factory("ollama")
    server.push(Reply("Forty-two.", usage=(21, 6)))
    llm = TestOllamaWire().make(server, key="")
    resp = await llm.generate(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"}],
        temperature=0.3,
        max_tokens=50,
        top_p=0.9,
        stop=["\n\n"],
        seed=7,
        response_format="json",
    )
    request = server.last("/api/chat")
    assert (request.method, request.path) == ("POST", "/api/chat")
    assert header(request, "authorization") is None  # a local Ollama needs no key
    body = request.json()
    assert body["model"] == MODEL and body["stream"] is False
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why?"},
    ]
    assert body["options"] == {
        "temperature": 0.3,
        "top_p": 0.9,
        "num_predict": 50,
        "stop": ["\n\n"],
        "seed": 7,
    }
    assert body["format"] == "json"
    assert resp.content == "Forty-two." and resp.finish_reason == "stop"
    # usage is prompt_eval_count / eval_count
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.exact) == (21, 6, True)
    await llm.aclose()


async def test_stream_is_ndjson_with_counts_on_the_last_line(wire_factory: Wire) -> None:
    server = wire_factory("ollama")
    server.push(Reply(chunks=["a", "b"], usage=(12, 2)))
    llm = TestOllamaWire().make(server)
    events = [e async for e in llm.stream_events("hi")]
    assert server.last("/api/chat").json()["stream"] is True
    final = events[-1].response
    assert final is not None and final.content == "ab"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 2)
    pieces = server.formats["ollama"].stream_events(Reply(chunks=["a"]), server.last())
    assert all(p.endswith(b"\n") and b"\n" not in p[:-1] for p in pieces)  # one JSON a line
    assert b'"prompt_eval_count": 12' in pieces[-1] or b'"prompt_eval_count"' in pieces[-1]
    await llm.aclose()


async def test_num_ctx_is_sent_and_is_the_window(wire_factory: Wire) -> None:
    server = wire_factory("ollama")
    llm = provider_for("ollama", server, model=MODEL, extra={"num_ctx": 8192})
    await llm.generate("hi")
    assert server.last("/api/chat").json()["options"] == {"num_ctx": 8192}
    await llm.initialize()
    assert llm.context_window == 8192
    await llm.aclose()


async def test_initialize_checks_the_model_is_pulled(wire_factory: Wire) -> None:
    server = wire_factory("ollama")
    server.models["llama3.2"] = {"num_ctx": 4096}
    llm = TestOllamaWire().make(server)
    await llm.initialize()
    assert server.last("/api/show").json() == {"model": MODEL}
    assert llm.context_window == 4096  # the Modelfile's num_ctx, not the trained length
    await llm.aclose()

    missing = provider_for("ollama", server, model="mistral")
    with pytest.raises(BadRequestError, match="ollama pull mistral"):
        await missing.initialize()
    assert not missing.initialized
    await missing.aclose()


async def test_window_from_model_info_without_num_ctx(wire_factory: Wire) -> None:
    server = wire_factory("ollama")
    server.models["llama3.2"] = {"context_length": 131072}
    llm = TestOllamaWire().make(server)
    await llm.initialize()
    assert llm.context_window == 131072
    await llm.aclose()


async def test_unpulled_model_on_chat_says_how_to_pull(wire_factory: Wire) -> None:
    server = wire_factory("ollama")
    server.models["llama3.2"] = {}
    llm = provider_for("ollama", server, model="phi3")
    with pytest.raises(BadRequestError, match="ollama pull"):
        await llm.generate("hi")
    assert len(server.requests) == 1
    await llm.aclose()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_silent_truncation_is_flagged(
    wire_factory: Wire, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    reset_truncation_warnings()
    server = wire_factory("ollama")
    llm = TestOllamaWire().make(server)
    prompt = " ".join(f"word{i}" for i in range(1500))
    sent = llm.count_tokens(prompt).tokens
    assert sent > 1000
    server.push(Reply("ok", usage=(256, 1)))  # Ollama kept only 256 of them
    caplog.set_level(logging.WARNING)
    if stream:
        events = [e async for e in llm.stream_events(prompt)]
        resp = events[-1].response
        assert resp is not None
    else:
        resp = await llm.generate(prompt)
    assert TRUNCATION_WARNING in resp.warnings
    assert "truncated" in caplog.text and "num_ctx" in caplog.text

    server.push(Reply("ok", usage=(sent, 1)))  # everything was read: no flag
    assert (await llm.generate(prompt)).warnings == []
    await llm.aclose()


async def test_embeddings_use_api_embed(wire_factory: Wire) -> None:
    server = wire_factory("ollama")
    llm = TestOllamaWire().make(server)
    vectors = await llm.embed(["alpha", "beta"])
    body = server.last("/api/embed").json()
    assert body == {"model": "nomic-embed-text", "input": ["alpha", "beta"]}
    assert len(vectors) == 2 and len(vectors[0]) == 8 and vectors[0] != vectors[1]
    await llm.aclose()


async def test_no_server_says_how_to_start_ollama() -> None:
    from nbinfra.llm.ollama import OllamaProvider
    from nbinfra.llm.settings import ProviderSettings
    from nbinfra.testing import free_port

    llm = OllamaProvider(
        settings=ProviderSettings(
            base_url=f"http://127.0.0.1:{free_port()}", timeout=1.0, max_retries=0
        )
    )
    with pytest.raises(ProviderServerError, match="ollama serve"):
        await llm.generate("hi")
    await llm.aclose()


def test_misspelt_setting_is_refused_with_a_suggestion(wire_factory: Wire) -> None:
    from nbinfra.errors import ConfigError

    server = wire_factory("ollama")
    with pytest.raises(ConfigError, match=r"num_ctxx .*'num_ctx'"):
        provider_for("ollama", server, extra={"num_ctxx": 4096})


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_cached_prompt_without_prompt_eval_count_is_estimated_not_flagged(
    wire_factory: Wire, stream: bool
) -> None:
    server = wire_factory("ollama")
    llm = TestOllamaWire().make(server)
    prompt = " ".join(f"word{i}" for i in range(500))
    server.push(Reply("ok", usage=(0, 5)))  # the whole prompt came from Ollama's cache
    if stream:
        resp = [e async for e in llm.stream_events(prompt)][-1].response
        assert resp is not None
    else:
        resp = await llm.generate(prompt)
    assert resp.usage.exact is False and resp.usage.output_tokens == 5
    assert resp.usage.input_tokens == llm.count_tokens(prompt).tokens
    assert resp.warnings == []
    await llm.aclose()


async def test_default_llm_is_ollama_when_it_answers_and_no_key_is_set(
    wire_factory: Wire, nbinfra_session: object
) -> None:
    from nbinfra.config import Settings
    from nbinfra.llm import LLMFactory
    from nbinfra.llm.ollama import OllamaProvider

    server = wire_factory("ollama")
    server.push(Reply("local answer"))
    conf = Settings.from_dict(
        {"llm": {"providers": {"ollama": {"base_url": server.url, "model": MODEL}}}}, environ={}
    )
    llm = LLMFactory.get_llm(settings=conf, session=nbinfra_session)  # type: ignore[arg-type]
    assert isinstance(llm, OllamaProvider) and llm.model == MODEL
    assert (await llm.generate("hi")).content == "local answer"
    await llm.aclose()
