"""``LLMWireContract``: one contract every LLM provider passes, on its real SDK against a
local wire server speaking the provider's format.

A provider kind (built in or a plugin's) proves itself by subclassing the contract and
setting ``kind``, ``model``, ``sdk`` (the top-level module of its SDK, which importing the
provider must not import), ``error_event`` (how its format reports "overloaded" inside a
stream) and ``cut_after`` (stream pieces the server sends before a cut, enough to include
some text); implementing ``sdk_read_timeout``; and, when its format is not one of the
built-in ones in ``nbinfra.testing_llm``, overriding the ``wire_server`` fixture with a
started ``LLMWireServer`` speaking its own ``WireFormat`` (the contract resets it before
each test). Needs pytest and pytest-asyncio (``asyncio_mode = "auto"``)::

    from nbinfra.testing_llm import LLMWireServer, WireFormat
    from nbinfra.testing.llm_wire_contract import LLMWireContract

    class MyFormat(WireFormat):
        name = "mine"
        ...  # routes, chat, stream_events, error

    class TestMyProvider(LLMWireContract):
        kind = "mine"
        model = "my-model"
        sdk = "my_sdk"
        error_event = b'data: {"error": "overloaded"}\n\n'

        @pytest.fixture(scope="class")
        @classmethod
        def wire_server(cls):
            with LLMWireServer(MyFormat()) as server:
                yield server

        def sdk_read_timeout(self, client):  # and check the SDK's retries are off
            assert client.max_retries == 0
            return client.timeout

Faults come from the wire server in the provider's own format; every wait is bounded by
``asyncio.wait_for`` so a provider that ignores its timeout fails the test instead of
hanging it. A provider with a native ``schema=`` mode sets ``structured_output = True`` (its
format's ``answer_schema`` reads the schema from the request). ``provider_for`` builds a
provider of any kind aimed at a wire server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

import nbinfra
from nbinfra._secrets import Secret
from nbinfra.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    LLMError,
    ProviderServerError,
    ProviderTimeout,
    RateLimitError,
)
from nbinfra.llm import LLMRegistry
from nbinfra.llm.base import BaseLLMProvider
from nbinfra.llm.settings import ModelInfo, ProviderSettings
from nbinfra.llm.types import StreamChunk
from nbinfra.testing_llm import Fault, LLMWireServer, Reply

__all__ = ["TEST_KEY", "LLMWireContract", "provider_for"]

TEST_KEY = "sk-test-wire-0123456789"
SENTINEL = "sk-SENTINEL-do-not-leak-9f8e7d6c"
BOUND = 8.0  # seconds: no single fault test may take longer than this
FAULT_TIMEOUT = 0.4  # the provider's timeout in hang tests


CONTRACT_SCHEMA: dict[str, Any] = {
    "title": "Ticket",
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "priority": {"enum": ["low", "high"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "owner": {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
        },
    },
    "required": ["title", "priority", "tags"],
}


def provider_for(
    kind: str,
    server: LLMWireServer,
    *,
    key: str = TEST_KEY,
    model: str = "test-model",
    base_url: str | None = None,
    extra: Mapping[str, Any] | None = None,
    models: Mapping[str, ModelInfo] | None = None,
    **overrides: Any,
) -> BaseLLMProvider:
    """A provider of ``kind`` aimed at ``server`` with short timeouts and fast retries.

    The base URL is ``server.base_url(kind)`` unless given; ``timeout``, ``max_retries``
    and ``retry_max_wait`` go to its settings, other ``overrides`` to the constructor.
    """
    settings = ProviderSettings(
        api_key=Secret(key),
        base_url=server.base_url(kind) if base_url is None else base_url,
        model=model,
        timeout=overrides.pop("timeout", 2.0),
        connect_timeout=1.0,
        max_retries=overrides.pop("max_retries", 2),
        retry_backoff=0.01,
        retry_max_wait=overrides.pop("retry_max_wait", 1.0),
        models=dict(models or {}),
        extra=dict(extra or {}),
    )
    return LLMRegistry.get(kind)(settings=settings, **overrides)


def _run_python(code: str, timeout: float) -> subprocess.CompletedProcess[str]:
    # A fresh interpreter importing the same nbinfra as this one (a checkout first).
    here = str(Path(nbinfra.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env
    )


class LLMWireContract:
    kind: ClassVar[str] = ""
    model: ClassVar[str] = ""
    sdk: ClassVar[str] = ""  # top-level module of the provider's SDK
    cut_after: ClassVar[int] = 2
    always_reports_usage: ClassVar[bool] = False
    error_event: ClassVar[bytes] = b""  # how the format reports "overloaded" mid-stream
    # True: the provider sends schema= in a native mechanism its WireFormat's
    # ``answer_schema`` reads (then the structured-output test runs).
    structured_output: ClassVar[bool] = False

    @pytest.fixture(scope="class")
    @classmethod
    def wire_server(cls) -> Iterator[LLMWireServer]:
        """A started server speaking ``kind``'s format, shared by the class's tests.

        This default serves the built-in format named ``kind``; override it to serve a
        ``WireFormat`` of your own."""
        with LLMWireServer(cls.kind) as server:
            yield server

    @pytest.fixture
    def wire(self, wire_server: LLMWireServer) -> LLMWireServer:
        """``wire_server`` with an empty script, no requests and the default reply."""
        wire_server.reset()
        return wire_server

    def sdk_read_timeout(self, client: Any) -> float:
        """The read timeout the SDK client was given; assert there its retries are off."""
        raise NotImplementedError

    def make(self, server: LLMWireServer, **overrides: Any) -> BaseLLMProvider:
        llm = provider_for(self.kind, server, model=self.model, **overrides)
        _ = llm.client  # build the SDK client now: first imports are slow on a busy machine
        return llm

    async def events(self, llm: BaseLLMProvider, prompt: str = "hi") -> list[StreamChunk]:
        async def run() -> list[StreamChunk]:
            return [e async for e in llm.stream_events(prompt)]

        return await asyncio.wait_for(run(), BOUND)

    # -- the happy path ------------------------------------------------------------
    async def test_stream_has_exactly_one_final_event_with_usage(self, wire: LLMWireServer) -> None:
        wire.push(Reply(chunks=["Hel", "lo", ", ", "world"], usage=(9, 4)))
        llm = self.make(wire)
        events = await self.events(llm, "Say hello")
        assert [e.text for e in events if not e.final] == ["Hel", "lo", ", ", "world"]
        finals = [e for e in events if e.final]
        assert len(finals) == 1 and events[-1].final
        final = finals[0].response
        assert final is not None
        assert final.content == "Hello, world"
        assert final.finish_reason == "stop"
        assert final.provider == self.kind
        assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 4)
        assert final.usage.exact is True
        assert final.time_to_first_token is not None
        assert 0 < final.time_to_first_token <= final.latency
        deltas = [t async for t in llm.stream_generate("again")]
        assert "".join(deltas) == wire.default.text
        await llm.aclose()

    async def test_stream_without_reported_usage_is_estimated(self, wire: LLMWireServer) -> None:
        if self.always_reports_usage:
            pytest.skip(f"{self.kind} always reports usage")
        wire.push(Reply("one two three four", usage=None))
        llm = self.make(wire)
        final = (await self.events(llm, "count please"))[-1].response
        assert final is not None and final.content == "one two three four"
        assert final.usage.exact is False
        assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
        await llm.aclose()

    async def test_generate_reports_length_finish(self, wire: LLMWireServer) -> None:
        wire.push(Reply("cut sh", usage=(5, 2), finish_reason="length"))
        llm = self.make(wire)
        resp = await asyncio.wait_for(llm.generate("x", max_tokens=2), BOUND)
        assert (resp.content, resp.finish_reason) == ("cut sh", "length")
        assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.exact) == (5, 2, True)
        await llm.aclose()

    async def test_schema_answer_is_validated_and_repaired(self, wire: LLMWireServer) -> None:
        if not self.structured_output:
            pytest.skip(f"{self.kind} declares no native schema= mode (structured_output)")
        wire.broken_schema_answers = 1  # the first answer misses a required property
        llm = self.make(wire)
        resp = await asyncio.wait_for(llm.generate("a ticket", schema=CONTRACT_SCHEMA), BOUND)
        assert wire.schema_answers == 2 and resp.repairs == 1
        assert set(resp.parsed) >= {"title", "priority", "tags"}
        assert resp.parsed["priority"] in ("low", "high")
        assert isinstance(resp.parsed["tags"], list) and resp.parsed["tags"]
        await llm.aclose()

    async def test_sdk_client_gets_our_timeout_and_no_retries_of_its_own(
        self, wire: LLMWireServer
    ) -> None:
        llm = self.make(wire, timeout=7.5)
        assert self.sdk_read_timeout(llm.client) == pytest.approx(7.5)
        await llm.aclose()

    # -- faults --------------------------------------------------------------------
    async def test_rejected_key_is_authentication_error_naming_the_variable(
        self, wire: LLMWireServer
    ) -> None:
        wire.push(Fault.unauthorized())
        llm = self.make(wire)
        with pytest.raises(AuthenticationError) as info:
            await asyncio.wait_for(llm.generate("hi"), BOUND)
        env_key = type(llm).env_key
        assert env_key and env_key in str(info.value)
        assert len(wire.requests) == 1  # never retried
        await llm.aclose()

    async def test_rate_limit_honours_retry_after_then_succeeds(self, wire: LLMWireServer) -> None:
        wire.push(Fault.rate_limited(retry_after=0.2), Reply("after the wait"))
        llm = self.make(wire)
        resp = await asyncio.wait_for(llm.generate("hi"), BOUND)
        assert resp.content == "after the wait"
        assert len(wire.requests) == 2
        await llm.aclose()

    async def test_rate_limit_carries_retry_after(self, wire: LLMWireServer) -> None:
        wire.push(Fault.rate_limited(retry_after=0.2))
        llm = self.make(wire, max_retries=0)
        with pytest.raises(RateLimitError) as info:
            await asyncio.wait_for(llm.generate("hi"), BOUND)
        assert info.value.retry_after == pytest.approx(0.2)
        await llm.aclose()

    async def test_server_error_is_retried_then_raised(self, wire: LLMWireServer) -> None:
        wire.push(Fault.server_error(), Fault.server_error(), Fault.server_error())
        llm = self.make(wire, max_retries=2)
        with pytest.raises(ProviderServerError):
            await asyncio.wait_for(llm.generate("hi"), BOUND)
        assert len(wire.requests) == 3  # one call + our two retries, none by the SDK
        await llm.aclose()

    async def test_server_error_then_success(self, wire: LLMWireServer) -> None:
        wire.push(Fault.server_error(503), Reply("recovered"))
        llm = self.make(wire)
        assert (await asyncio.wait_for(llm.generate("hi"), BOUND)).content == "recovered"
        await llm.aclose()

    async def test_hang_past_timeout_is_provider_timeout(self, wire: LLMWireServer) -> None:
        wire.push(Fault.hang(seconds=BOUND - 2))
        llm = self.make(wire, timeout=FAULT_TIMEOUT, max_retries=0)
        with pytest.raises(ProviderTimeout):
            await asyncio.wait_for(llm.generate("hi"), BOUND - 3)
        await llm.aclose()

    async def test_per_call_timeout(self, wire: LLMWireServer) -> None:
        wire.push(Fault.hang(seconds=BOUND - 2))
        llm = self.make(wire, timeout=BOUND, max_retries=0)
        with pytest.raises(ProviderTimeout, match=r"0\.4 s"):
            await asyncio.wait_for(llm.generate("hi", timeout=FAULT_TIMEOUT), BOUND - 3)
        assert (await asyncio.wait_for(llm.generate("again"), BOUND)).content
        await llm.aclose()

    async def test_stream_hang_mid_way_times_out_and_keeps_partial_text(
        self, wire: LLMWireServer
    ) -> None:
        wire.push(Fault.hang(seconds=BOUND - 2, after=self.cut_after))
        llm = self.make(wire, timeout=FAULT_TIMEOUT, max_retries=0)
        with pytest.raises(ProviderTimeout) as info:
            await asyncio.wait_for(self.events(llm), BOUND - 3)
        partial = info.value.partial
        assert partial is not None and partial.content
        assert wire.default.text.startswith(partial.content)
        assert partial.finish_reason == "error"
        await llm.aclose()

    async def test_cut_stream_raises_and_keeps_partial_text(self, wire: LLMWireServer) -> None:
        wire.push(Fault.cut(after=self.cut_after))
        llm = self.make(wire)
        with pytest.raises(ProviderServerError) as info:
            await self.events(llm)
        partial = info.value.partial
        assert partial is not None and partial.content
        assert wire.default.text.startswith(partial.content)
        assert partial.content != wire.default.text
        assert len(wire.requests) == 1  # text was delivered: never retried
        await llm.aclose()

    async def test_error_event_inside_a_stream_keeps_partial_text(
        self, wire: LLMWireServer
    ) -> None:
        fmt = wire.formats[self.kind]
        original = fmt.stream_events

        def with_error(reply: Reply, request: Any) -> list[bytes]:
            return [*original(reply, request)[: self.cut_after], self.error_event]

        fmt.stream_events = with_error  # type: ignore[method-assign]
        try:
            llm = self.make(wire)
            with pytest.raises(ProviderServerError, match=r"(?i)overloaded") as info:
                await self.events(llm)
        finally:
            del fmt.stream_events
        partial = info.value.partial
        assert partial is not None and wire.default.text.startswith(partial.content)
        assert partial.content
        assert len(wire.requests) == 1
        await llm.aclose()

    @pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
    async def test_malformed_json_is_server_error(self, wire: LLMWireServer, stream: bool) -> None:
        wire.push(Fault.malformed())
        llm = self.make(wire, max_retries=0)
        with pytest.raises(ProviderServerError):
            if stream:
                await self.events(llm)
            else:
                await asyncio.wait_for(llm.generate("hi"), BOUND)
        await llm.aclose()

    async def test_bad_request_is_not_retried(self, wire: LLMWireServer) -> None:
        wire.push(Fault.bad_request(), Fault.bad_request())
        llm = self.make(wire)
        with pytest.raises(BadRequestError) as info:
            await asyncio.wait_for(llm.generate("hi"), BOUND)
        assert len(wire.requests) == 1
        assert info.value.provider == self.kind
        assert isinstance(info.value.__cause__, Exception)  # translated with `from exc`
        await llm.aclose()

    async def test_json_answer_cut_mid_body(self, wire: LLMWireServer) -> None:
        wire.push(Fault.cut())
        llm = self.make(wire, max_retries=0)
        with pytest.raises(ProviderServerError):
            await asyncio.wait_for(llm.generate("hi"), BOUND)
        await llm.aclose()

    async def test_stream_error_before_any_text_is_retried(self, wire: LLMWireServer) -> None:
        wire.push(Fault.server_error(), Reply(chunks=["fine"], usage=(3, 1)))
        llm = self.make(wire)
        events = await self.events(llm)
        assert [e.text for e in events if not e.final] == ["fine"]
        assert len(wire.requests) == 2
        await llm.aclose()

    async def test_context_length_error(self, wire: LLMWireServer) -> None:
        wire.push(Fault.context_length())
        llm = self.make(wire)
        with pytest.raises(ContextLengthError) as info:
            await asyncio.wait_for(llm.generate("hi"), BOUND)
        assert "ContextWindowManager" in str(info.value)
        assert len(wire.requests) == 1
        await llm.aclose()

    def test_sync_facade_on_the_background_loop(self, wire: LLMWireServer) -> None:
        from nbinfra.llm.sync import SyncLLM

        wire.push(Reply("sync answer", usage=(4, 2)), Reply(chunks=["x", "y"]))
        llm = SyncLLM(self.make(wire))
        try:
            assert llm.generate("hi").content == "sync answer"
            assert list(llm.stream("hi")) == ["x", "y"]
        finally:
            llm.close()

    def test_shipped_configuration_builds_the_provider(self) -> None:
        from nbinfra.config import load_settings
        from nbinfra.llm import LLMFactory
        from nbinfra.session import Session

        with Session() as fresh:
            llm = LLMFactory.get_llm(self.kind, settings=load_settings(environ={}), session=fresh)
        assert llm.provider == self.kind and llm.model
        assert llm.timeout > 0 and llm.retry.max_retries >= 0

    # -- secrets and imports -------------------------------------------------------
    async def test_key_never_in_errors_logs_or_reprs(
        self, wire: LLMWireServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        llm = self.make(wire, key=SENTINEL, max_retries=1)
        seen: list[str] = [repr(llm), str(llm), repr(llm.settings)]
        for fault in (Fault.unauthorized(), Fault.server_error(), Fault.server_error()):
            wire.push(fault)
        for _ in range(2):
            try:
                await asyncio.wait_for(llm.generate("hi"), BOUND)
            except LLMError as exc:
                seen += [str(exc), repr(exc), *exc._render_traceback_()]
        wire.push(Fault.cut(after=self.cut_after))
        try:
            await self.events(llm)
        except LLMError as exc:
            seen += [str(exc), repr(exc)]
        sent = [r for r in wire.requests if SENTINEL in str(r.headers)]
        assert sent or type(llm).needs_key is False  # the key did reach the server
        text = "\n".join(seen) + caplog.text
        assert SENTINEL not in text
        await llm.aclose()

    def test_importing_nbinfra_llm_and_the_provider_imports_no_sdk(self) -> None:
        code = (
            "import sys, nbinfra.llm\n"
            "from nbinfra.llm import LLMRegistry\n"
            f"cls = LLMRegistry.get({self.kind!r})\n"
            "from nbinfra._secrets import Secret\n"
            "from nbinfra.llm.settings import ProviderSettings\n"
            "cls(settings=ProviderSettings(api_key=Secret('k-123456')))\n"
            f"print({self.sdk!r} in sys.modules)\n"
        )
        out = _run_python(code, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "False"
