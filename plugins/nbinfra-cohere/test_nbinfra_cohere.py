"""The ``cohere`` kind on the real ``cohere`` SDK against a local server speaking Cohere's v2
Chat API (``POST /v2/chat``, JSON and ``stream: true`` SSE; errors in Cohere's JSON shape):
nbinfra's whole LLM wire contract, then what is Cohere's own."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from nbinfra_cohere import CohereProvider

import nbinfra
from nbinfra.errors import (
    AuthenticationError,
    BadRequestError,
    LLMError,
    ProviderServerError,
    RateLimitError,
)
from nbinfra.llm import LLMFactory, LLMRegistry, SyncLLM
from nbinfra.session import Session, use_session
from nbinfra.testing import Request, Response
from nbinfra.testing.llm_wire_contract import TEST_KEY, LLMWireContract, provider_for
from nbinfra.testing_llm import Fault, LLMWireServer, Reply, WireFormat, header

pytest.importorskip("cohere")

MODEL = "command-r-plus-08-2024"
facade_llm: Callable[..., SyncLLM] = nbinfra.llm  # type: ignore[assignment]  # callable module


def _sse(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\n".encode() + b"data: " + json.dumps(data).encode() + b"\n\n"


class CohereFormat(WireFormat):
    """Cohere's ``/v2/chat`` (JSON, and SSE events ``message-start``, ``content-start``,
    ``content-delta``, ``content-end``, ``message-end`` with usage) and ``/v1/models/{id}``."""

    name = "cohere"
    FINISH: ClassVar[dict[str, str]] = {"stop": "COMPLETE", "length": "MAX_TOKENS"}
    billed_only = False  # usage with billed_units and no tokens (set by a test)

    def routes(self) -> list[tuple[str, str, str]]:
        return [("POST", "/v2/chat", "chat"), ("GET", "/v1/models/*", "model")]

    def _usage(self, reply: Reply) -> dict[str, Any] | None:
        if reply.usage is None:
            return None
        i, o = reply.usage
        if self.billed_only:
            return {"billed_units": {"input_tokens": i, "output_tokens": o}}
        # Billed input leaves out the prompt template's tokens; ``tokens`` counts them.
        billed = {"input_tokens": max(i - 3, 0), "output_tokens": o}
        return {"billed_units": billed, "tokens": {"input_tokens": i, "output_tokens": o}}

    def _finish(self, reply: Reply) -> str:
        return self.FINISH.get(reply.finish_reason, reply.finish_reason.upper())

    def chat(self, reply: Reply, request: Request, stream: bool) -> Response:
        if stream:
            return Response(
                200, headers=self._stream_headers(), chunks=self.stream_events(reply, request)
            )
        body: dict[str, Any] = {
            "id": "chat-test",
            "finish_reason": self._finish(reply),
            "message": {"role": "assistant", "content": [{"type": "text", "text": reply.text}]},
        }
        usage = self._usage(reply)
        if usage is not None:
            body["usage"] = usage
        return Response(200, body)

    def stream_events(self, reply: Reply, request: Request) -> list[bytes]:
        empty = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": []}
        out = [
            _sse({"type": "message-start", "id": "chat-test", "delta": {"message": empty}}),
            _sse(
                {
                    "type": "content-start",
                    "index": 0,
                    "delta": {"message": {"content": {"type": "text", "text": ""}}},
                }
            ),
        ]
        out += [
            _sse(
                {
                    "type": "content-delta",
                    "index": 0,
                    "delta": {"message": {"content": {"text": c}}},
                }
            )
            for c in reply.stream_chunks()
        ]
        end: dict[str, Any] = {"finish_reason": self._finish(reply)}
        usage = self._usage(reply)
        if usage is not None:
            end["usage"] = usage
        out += [
            _sse({"type": "content-end", "index": 0}),
            _sse({"type": "message-end", "delta": end}),
        ]
        return out

    def error(self, fault: Fault) -> Response:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        message = fault.message
        if fault.code == "context_length_exceeded":
            message = (
                "too many tokens: total number of tokens in the prompt cannot exceed 8192 - "
                "received 9000. Try using a shorter prompt."
            )
        return Response(fault.status, {"id": "err-test", "message": message}, headers=headers)

    def malformed(self, stream: bool) -> Response:
        if stream:
            return Response(
                200,
                headers=self._stream_headers(),
                chunks=[b"event: message-start\ndata: {not json\n\n"],
            )
        return Response(200, b'{"id": "chat-x", "message": {', headers={"Content-Type": "x"})

    def other(self, endpoint: str, request: Request) -> Response:
        if endpoint == "model":
            name = request.path.rsplit("/models/", 1)[-1]
            found: dict[str, Any] = {"name": name, "endpoints": ["chat"], "finetuned": False}
            found.update(self.server.models.get(name, {}))
            return Response(200, found)
        return super().other(endpoint, request)


class TestCohereWire(LLMWireContract):
    kind = "cohere"
    model = MODEL
    sdk = "cohere"
    cut_after = 4  # message-start, content-start, then two text deltas
    error_event = _sse(
        {
            "type": "message-end",
            "delta": {"finish_reason": "ERROR", "error": "The model is overloaded."},
        }
    )

    @pytest.fixture(scope="class")
    @classmethod
    def wire_server(cls) -> Iterator[LLMWireServer]:
        with LLMWireServer(CohereFormat()) as server:
            yield server

    def sdk_read_timeout(self, client: Any) -> float:
        wrapper = client._client_wrapper
        assert wrapper.get_max_retries() == 0
        return float(wrapper.httpx_client.httpx_client.timeout.read)


@pytest.fixture
def wire() -> Iterator[LLMWireServer]:
    with LLMWireServer(CohereFormat()) as server:
        yield server


def make(server: LLMWireServer, **overrides: Any) -> Any:
    return provider_for("cohere", server, model=MODEL, **overrides)


# -- registration ---------------------------------------------------------------------
def test_the_entry_point_registers_the_kind() -> None:
    assert "cohere" in LLMRegistry.kinds()
    assert LLMRegistry.get("cohere") is CohereProvider


@pytest.fixture
def no_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Session]:
    """A fresh default session in a folder with no ``resources/`` above it: no file has an
    ``llm.providers.cohere`` entry, and ``COHERE_API_KEY`` is unset."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NBINFRA_RESOURCES", raising=False)
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    with Session() as fresh, use_session(fresh):
        yield fresh


def test_cohere_api_key_alone_is_found(
    no_files: Session, monkeypatch: pytest.MonkeyPatch, wire: LLMWireServer
) -> None:
    monkeypatch.setenv("COHERE_API_KEY", TEST_KEY)
    llm = LLMFactory.get_llm("cohere", base_url=wire.base_url("cohere"))
    assert isinstance(llm, CohereProvider) and llm.model == MODEL
    assert llm.settings.api_key.reveal() == TEST_KEY
    wire.push("hello from cohere")
    facade = facade_llm("cohere", base_url=wire.base_url("cohere"))
    assert facade.generate("hi").content == "hello from cohere"
    assert header(wire.last("/v2/chat"), "authorization") == f"Bearer {TEST_KEY}"


def test_without_a_key_the_error_names_cohere_api_key(
    no_files: Session, wire: LLMWireServer
) -> None:
    held = facade_llm("cohere", base_url=wire.base_url("cohere"))
    with pytest.raises(AuthenticationError, match="set COHERE_API_KEY"):
        held.generate("hi")
    assert wire.requests == []


# -- Cohere's own wire ------------------------------------------------------------------
async def test_request_body_options_and_bearer_key(wire: LLMWireServer) -> None:
    wire.push(Reply("Forty-two.", usage=(21, 6)))
    llm = make(wire)
    turns = [
        {"role": "system", "content": "Answer in one line."},
        {"role": "user", "content": "What is six times seven?"},
        {"role": "assistant", "content": "Forty-two."},
        {"role": "user", "content": "Say it again."},
    ]
    resp = await llm.generate(
        turns,
        temperature=0.3,
        max_tokens=50,
        top_p=0.9,
        stop=["\n\n"],
        seed=7,
        response_format="json",
    )
    request = wire.last("/v2/chat")
    assert (request.method, request.path) == ("POST", "/v2/chat")
    assert header(request, "authorization") == f"Bearer {TEST_KEY}"
    body = request.json()
    assert body["model"] == MODEL
    assert body["messages"] == turns  # Cohere v2 takes system turns in the list
    assert (body["temperature"], body["max_tokens"], body["p"], body["seed"]) == (0.3, 50, 0.9, 7)
    assert body["stop_sequences"] == ["\n\n"]
    assert body["response_format"] == {"type": "json_object"}
    assert "stream" not in body or body["stream"] is False
    assert resp.content == "Forty-two."
    assert resp.finish_reason == "stop"  # COMPLETE in the common vocabulary
    assert resp.raw.finish_reason == "COMPLETE"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (21, 6)  # usage.tokens
    await llm.aclose()


async def test_stream_sends_stream_true_and_reads_message_end(wire: LLMWireServer) -> None:
    wire.push(Reply(chunks=["a", "b"], usage=(30, 2), finish_reason="length"))
    llm = make(wire)
    events = [e async for e in llm.stream_events("hi")]
    assert wire.last("/v2/chat").json()["stream"] is True
    assert [e.text for e in events if not e.final] == ["a", "b"]
    final = events[-1].response
    assert final is not None and final.content == "ab"
    assert final.finish_reason == "length"  # MAX_TOKENS
    assert (final.usage.input_tokens, final.usage.output_tokens) == (30, 2)
    # the server really spoke Cohere's v2 event names
    pieces = wire.formats["cohere"].stream_events(Reply(chunks=["a"]), wire.last())
    names = [p.split(b"\n", 1)[0] for p in pieces]
    assert names == [
        b"event: message-start",
        b"event: content-start",
        b"event: content-delta",
        b"event: content-end",
        b"event: message-end",
    ]
    await llm.aclose()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_billed_units_when_tokens_are_absent(wire: LLMWireServer, stream: bool) -> None:
    fmt = wire.formats["cohere"]
    fmt.billed_only = True  # type: ignore[attr-defined]
    wire.push(Reply("x y", usage=(11, 2)))
    llm = make(wire)
    if stream:
        resp = [e async for e in llm.stream_events("hi")][-1].response
    else:
        resp = await llm.generate("hi")
    assert resp is not None and resp.usage.exact
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (11, 2)
    await llm.aclose()


async def test_stream_ending_after_content_end_without_message_end_raises(
    wire: LLMWireServer,
) -> None:
    fmt = wire.formats["cohere"]
    original = fmt.stream_events

    def no_end(reply: Reply, request: Any) -> list[bytes]:
        return original(reply, request)[:-1]  # everything up to content-end, then EOF

    fmt.stream_events = no_end  # type: ignore[method-assign]
    try:
        llm = make(wire, max_retries=0)
        with pytest.raises(ProviderServerError, match="message-end") as info:
            [e async for e in llm.stream_events("hi")]
    finally:
        del fmt.stream_events
    partial = info.value.partial
    assert partial is not None and partial.content == wire.default.text
    await llm.aclose()


async def test_initialize_learns_context_length_from_the_model(wire: LLMWireServer) -> None:
    wire.models[MODEL] = {"context_length": 128000}
    llm = make(wire)
    await llm.initialize()
    request = wire.last("/v1/models/")
    assert request.path == f"/v1/models/{MODEL}"
    assert header(request, "authorization") == f"Bearer {TEST_KEY}"
    assert llm.initialized and llm.context_window == 128000
    await llm.aclose()


@pytest.mark.parametrize(
    ("status", "message", "error", "match"),
    [
        (498, "invalid api token", AuthenticationError, "COHERE_API_KEY"),
        (404, "model 'command-x' not found", BadRequestError, "command-x"),
        (503, "service unavailable", ProviderServerError, "HTTP 503"),
    ],
    ids=["invalid-token", "unknown-model", "unavailable"],
)
async def test_cohere_statuses_are_mapped(
    wire: LLMWireServer, status: int, message: str, error: type[LLMError], match: str
) -> None:
    wire.push(Fault("status", status, message))
    llm = make(wire, max_retries=0)
    with pytest.raises(error, match=match):
        await llm.generate("hi")
    assert len(wire.requests) == 1
    await llm.aclose()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_rate_limit_message_and_retry_after_in_cohere_shape(
    wire: LLMWireServer, stream: bool
) -> None:
    import cohere.errors

    wire.push(Fault.rate_limited(retry_after=3))
    llm = make(wire, max_retries=0)
    with pytest.raises(RateLimitError, match="Rate limit reached") as info:
        if stream:
            [e async for e in llm.stream_events("hi")]
        else:
            await llm.generate("hi")
    assert info.value.retry_after == 3
    assert isinstance(info.value.__cause__, cohere.errors.TooManyRequestsError)
    await llm.aclose()
