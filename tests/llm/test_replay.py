"""Response store: cache, record, export, import into a fresh store, replay offline.

The provider here is a small stand-in built on the official ``openai`` SDK, pointed at a
local HTTP server speaking the chat-completions wire format, so "no network call" is
checked on the server's request log (the real providers are built on another branch and
call the same hook).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from nbinfra.cache import CacheService
from nbinfra.config import Settings
from nbinfra.errors import ReplayMissError
from nbinfra.llm.replay import (
    STATE_KEY,
    MemoryKeyValueStore,
    ResponseStore,
    build_request,
    request_key,
    through_store,
    use_response_store,
)
from nbinfra.llm.types import LLMResponse, Message, Usage
from nbinfra.session import Session
from nbinfra.testing import LocalHTTPServer, RedisServer, Request, Response


def _completion(request: Request) -> Response:
    body = request.json()
    last = body["messages"][-1]["content"]
    temperature = body.get("temperature")
    return Response(
        200,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"echo[{temperature}]: {last}"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
        },
    )


class SDKProvider:
    """``generate`` through the response store hook, else the OpenAI SDK on a local server."""

    provider = "openai"

    def __init__(self, base_url: str, store: ResponseStore | None, model: str = "gpt-4") -> None:
        self.base_url = base_url
        self.model = model
        self.response_store = store
        self.network_calls = 0

    async def generate(self, messages: list[Message], /, **options: Any) -> LLMResponse:
        request = build_request(self.provider, self.model, messages, options)
        return await through_store(self.response_store, request, lambda: self._call(request))

    async def _call(self, request: dict[str, Any]) -> LLMResponse:
        import openai

        self.network_calls += 1
        client = openai.AsyncOpenAI(base_url=self.base_url, api_key="sk-test", max_retries=0)
        try:
            raw = await client.chat.completions.create(
                model=request["model"], messages=request["messages"], **request["options"]
            )
        finally:
            await client.close()
        choice = raw.choices[0]
        assert raw.usage is not None
        return LLMResponse(
            content=choice.message.content or "",
            model=raw.model,
            provider=self.provider,
            finish_reason=choice.finish_reason,
            usage=Usage(raw.usage.prompt_tokens, raw.usage.completion_tokens),
            latency=0.01,
            raw=raw,
            options=dict(request["options"]),
        )


@pytest.fixture(autouse=True)
def _fresh_session(nbinfra_session: Session) -> Session:
    """Stores without an explicit kv use ``CacheService`` on the session: one per test."""
    return nbinfra_session


@pytest.fixture
def server(local_http_server: LocalHTTPServer) -> LocalHTTPServer:
    local_http_server.route("POST", "/v1/chat/completions", _completion)
    return local_http_server


SESSION = [
    ([Message("system", "terse"), Message("user", "hello")], {"temperature": 0.0}),
    ([Message("user", "what is 2+2?")], {"temperature": 0.5, "seed": 7}),
    ([Message("user", "hello")], {}),
]


async def test_record_export_import_replay_offline(server: LocalHTTPServer, tmp_path: Path) -> None:
    recorder = ResponseStore("record")
    live = SDKProvider(server.url + "/v1", recorder)
    recorded = [await live.generate(msgs, **opts) for msgs, opts in SESSION]
    assert live.network_calls == len(server.requests) == 3
    assert [r.content for r in recorded] == [
        "echo[0.0]: hello",
        "echo[0.5]: what is 2+2?",
        "echo[None]: hello",
    ]
    path = tmp_path / "llm.jsonl"
    assert recorder.export_jsonl(path) == 3
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert {line["request"]["model"] for line in lines} == {"gpt-4"}

    fresh = ResponseStore("replay")
    assert await fresh.import_jsonl(path) == 3
    offline = SDKProvider("http://127.0.0.1:9/v1", fresh)  # nothing listens there
    replayed = [await offline.generate(msgs, **opts) for msgs, opts in SESSION]
    assert offline.network_calls == 0 and len(server.requests) == 3
    for before, after in zip(recorded, replayed, strict=True):
        assert (after.content, after.model, after.finish_reason) == (
            before.content,
            before.model,
            before.finish_reason,
        )
        assert (after.usage.input_tokens, after.usage.output_tokens) == (11, 3)
        assert after.cached and after.usage.cached and not before.cached

    with pytest.raises(ReplayMissError, match="no recorded response for openai/gpt-4"):
        await offline.generate([Message("user", "never asked")])
    with pytest.raises(ReplayMissError):  # a different option is a different request
        await offline.generate(SESSION[0][0], temperature=1.0)
    assert offline.network_calls == 0 and fresh.misses == 2


async def test_cache_mode_serves_repeats_and_misses_on_new_options(server: LocalHTTPServer) -> None:
    store = ResponseStore("cache")
    llm = SDKProvider(server.url + "/v1", store)
    first = await llm.generate([Message("user", "hi")], temperature=0.2)
    again = await llm.generate([Message("user", "hi")], temperature=0.2, timeout=30)
    assert llm.network_calls == 1 and again.cached and again.content == first.content
    await llm.generate([Message("user", "hi")], temperature=0.3)
    assert llm.network_calls == 2 and (store.hits, store.misses) == (1, 2)


async def test_off_and_record_always_call(server: LocalHTTPServer) -> None:
    for mode in ("off", "record"):
        llm = SDKProvider(server.url + "/v1", ResponseStore(mode))  # type: ignore[arg-type]
        await llm.generate([Message("user", "hi")])
        await llm.generate([Message("user", "hi")])
        assert llm.network_calls == 2, mode
    assert len(ResponseStore("off")) == 0


async def test_store_uses_the_given_key_value_store() -> None:
    kv = MemoryKeyValueStore()
    store = ResponseStore("cache", kv)
    request = build_request("fake", "m", [Message("user", "x")])
    await store.put(request, LLMResponse("y", "m", "fake"))
    assert len(kv) == 1
    other = ResponseStore("replay", kv)  # a second store over the same cache sees it
    hit = await other.get(request)
    assert hit is not None and hit.content == "y"


def test_request_key_is_stable_and_ignores_transport_options() -> None:
    a = build_request("openai", "gpt-4", [Message("user", "hi")], {"temperature": 0, "seed": 1})
    b = {
        "options": {"seed": 1, "temperature": 0, "timeout": 5, "stream": True},
        "messages": [{"content": "hi", "role": "user"}],
        "model": "gpt-4",
        "provider": "openai",
    }
    assert request_key(a) == request_key(b)
    assert len(request_key(a)) == 64
    for changed in (
        {**a, "model": "gpt-4o"},
        {**a, "provider": "azure"},
        {**a, "options": {"temperature": 0, "seed": 2}},
        {**a, "messages": [{"role": "user", "content": "hi!"}]},
        {**a, "messages": [{"role": "system", "content": "hi"}]},
    ):
        assert request_key(changed) != request_key(a)


async def test_import_rejects_malformed_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"request": {}, "response": {"content": "x"}}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1 is not a recorded LLM response"):
        await ResponseStore("replay").import_jsonl(bad)
    with pytest.raises(FileNotFoundError):
        await ResponseStore("replay").import_jsonl(tmp_path / "missing.jsonl")


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="use one of off, cache, record, replay"):
        ResponseStore("rewind")  # type: ignore[arg-type]


def test_use_response_store_installs_into_the_session(nbinfra_session: Any, tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    recorder = ResponseStore("record")
    request = build_request("fake", "m", [Message("user", "q")])
    asyncio.run(recorder.put(request, LLMResponse("a", "m", "fake")))
    recorder.export_jsonl(path)
    store = use_response_store("replay", path)
    assert nbinfra_session.state[STATE_KEY] is store
    assert len(store) == 1 and store.mode == "replay"


async def test_default_store_lives_in_cache_service() -> None:
    store = ResponseStore("cache")
    assert isinstance(store.kv, CacheService) and store.kv.namespace == "llm.responses"
    assert store.kv.default_ttl == 0  # recordings do not expire
    request = build_request("fake", "m", [Message("user", "q")], {"temperature": 0.1})
    await store.put(request, LLMResponse("a", "m", "fake", usage=Usage(4, 1)))
    hit = await ResponseStore("replay").get(request)  # another store, same session cache
    assert hit is not None and (hit.content, hit.usage.input_tokens) == ("a", 4)


async def test_recordings_shared_through_redis(
    server: LocalHTTPServer, redis_server: RedisServer
) -> None:
    cache = {"backend": "redis", "redis": {"url": redis_server.url}}
    settings = Settings.from_dict({"cache": cache})
    kernel_one, kernel_two = Session(settings), Session(settings)  # two notebooks
    try:
        recorder = ResponseStore("record", namespace="llm.test-redis", session=kernel_one)
        await recorder.kv.clear()  # type: ignore[attr-defined]
        live = SDKProvider(server.url + "/v1", recorder)
        recorded = [await live.generate(msgs, **opts) for msgs, opts in SESSION]
        assert live.network_calls == 3

        replayer = ResponseStore("replay", namespace="llm.test-redis", session=kernel_two)
        assert replayer.kv.provider.kind == "redis"  # type: ignore[attr-defined]
        offline = SDKProvider("http://127.0.0.1:9/v1", replayer)
        replayed = [await offline.generate(msgs, **opts) for msgs, opts in SESSION]
        assert [r.content for r in replayed] == [r.content for r in recorded]
        assert offline.network_calls == 0 and len(server.requests) == 3
        await recorder.kv.clear()  # type: ignore[attr-defined]
    finally:  # the Redis clients live on this test's loop: close them here
        await kernel_one.aclose()
        await kernel_two.aclose()


def test_export_creates_missing_folders(tmp_path: Path) -> None:
    store = ResponseStore(mode="record")
    target = tmp_path / "not" / "yet" / "there.jsonl"
    assert store.export_jsonl(target) == 0
    assert target.is_file() and target.read_text() == ""
