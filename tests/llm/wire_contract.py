"""One contract every wire-tested provider passes: subclass ``WireContract`` and set
``kind`` (and ``cut_after``: stream pieces the server sends before cutting, enough to
include some text).

Faults come from the local wire server in the provider's own format; every wait is
bounded by ``asyncio.wait_for`` so a provider that ignores its timeout fails the test
instead of hanging it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, ClassVar

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
from nbinfra.llm.base import BaseLLMProvider
from nbinfra.llm.types import StreamChunk
from nbinfra.testing_llm import Fault, LLMWireServer, Reply
from tests.llm.conftest import provider_for
from tests.pyrun import run_python

SENTINEL = "sk-SENTINEL-do-not-leak-9f8e7d6c"
BOUND = 8.0  # seconds: no single fault test may take longer than this
FAULT_TIMEOUT = 0.4  # the provider's timeout in hang tests

Wire = Callable[..., LLMWireServer]


class WireContract:
    kind: ClassVar[str] = ""
    model: ClassVar[str] = ""
    sdk: ClassVar[str] = ""  # top-level module of the provider's SDK
    cut_after: ClassVar[int] = 2
    always_reports_usage: ClassVar[bool] = False
    error_event: ClassVar[bytes] = b""  # how the format reports "overloaded" mid-stream

    def make(self, server: LLMWireServer, **overrides: Any) -> BaseLLMProvider:
        llm = provider_for(self.kind, server, model=self.model, **overrides)
        _ = llm.client  # build the SDK client now: first imports are slow on a busy machine
        return llm

    async def events(self, llm: BaseLLMProvider, prompt: str = "hi") -> list[StreamChunk]:
        async def run() -> list[StreamChunk]:
            return [e async for e in llm.stream_events(prompt)]

        return await asyncio.wait_for(run(), BOUND)

    # -- the happy path ------------------------------------------------------------
    async def test_stream_has_exactly_one_final_event_with_usage(self, wire_factory: Wire) -> None:
        server = wire_factory(self.kind)
        server.push(Reply(chunks=["Hel", "lo", ", ", "world"], usage=(9, 4)))
        llm = self.make(server)
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
        assert "".join(deltas) == server.default.text
        await llm.aclose()

    async def test_stream_without_reported_usage_is_estimated(self, wire_factory: Wire) -> None:
        if self.always_reports_usage:
            pytest.skip(f"{self.kind} always reports usage")
        server = wire_factory(self.kind)
        server.push(Reply("one two three four", usage=None))
        llm = self.make(server)
        final = (await self.events(llm, "count please"))[-1].response
        assert final is not None and final.content == "one two three four"
        assert final.usage.exact is False
        assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
        await llm.aclose()

    async def test_generate_reports_length_finish(self, wire_factory: Wire) -> None:
        server = wire_factory(self.kind)
        server.push(Reply("cut sh", usage=(5, 2), finish_reason="length"))
        llm = self.make(server)
        resp = await asyncio.wait_for(llm.generate("x", max_tokens=2), BOUND)
        assert (resp.content, resp.finish_reason) == ("cut sh", "length")
        assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.exact) == (5, 2, True)
        await llm.aclose()

    def sdk_read_timeout(self, client: Any) -> float:
        """The read timeout the SDK client was given (per provider)."""
        raise NotImplementedError

    async def test_sdk_client_gets_our_timeout_and_no_retries_of_its_own(
        self, wire_factory: Wire
    ) -> None:
        llm = self.make(wire_factory(self.kind), timeout=7.5)
        assert self.sdk_read_timeout(llm.client) == pytest.approx(7.5)
        await llm.aclose()

    # -- faults --------------------------------------------------------------------
    async def test_rejected_key_is_authentication_error_naming_the_variable(
        self, wire_factory: Wire
    ) -> None:
        server = wire_factory(self.kind)
        server.push(Fault.unauthorized())
        llm = self.make(server)
        with pytest.raises(AuthenticationError) as info:
            await asyncio.wait_for(llm.generate("hi"), BOUND)
        assert type(llm).env_key and type(llm).env_key in str(info.value)
        assert len(server.requests) == 1  # never retried
        await llm.aclose()

    async def test_rate_limit_honours_retry_after_then_succeeds(self, wire_factory: Wire) -> None:
        server = wire_factory(self.kind)
        server.push(Fault.rate_limited(retry_after=0.2), Reply("after the wait"))
        llm = self.make(server)
        resp = await asyncio.wait_for(llm.generate("hi"), BOUND)
        assert resp.content == "after the wait"
        assert len(server.requests) == 2
        await llm.aclose()

    async def test_rate_limit_carries_retry_after(self, wire_factory: Wire) -> None:
        server = wire_factory(self.kind)
        server.push(Fault.rate_limited(retry_after=0.2))
        llm = self.make(server, max_retries=0)
        with pytest.raises(RateLimitError) as info:
            await asyncio.wait_for(llm.generate("hi"), BOUND)
        assert info.value.retry_after == pytest.approx(0.2)
        await llm.aclose()

    async def test_server_error_is_retried_then_raised(self, wire_factory: Wire) -> None:
        server = wire_factory(self.kind)
        server.push(Fault.server_error(), Fault.server_error(), Fault.server_error())
        llm = self.make(server, max_retries=2)
        with pytest.raises(ProviderServerError):
            await asyncio.wait_for(llm.generate("hi"), BOUND)
        assert len(server.requests) == 3  # one call + our two retries, none by the SDK
        await llm.aclose()

    async def test_server_error_then_success(self, wire_factory: Wire) -> None:
        server = wire_factory(self.kind)
        server.push(Fault.server_error(503), Reply("recovered"))
        llm = self.make(server)
        assert (await asyncio.wait_for(llm.generate("hi"), BOUND)).content == "recovered"
        await llm.aclose()

    async def test_hang_past_timeout_is_provider_timeout(self, wire_factory: Wire) -> None:
        server = wire_factory(self.kind)
        server.push(Fault.hang(seconds=BOUND - 2))
        llm = self.make(server, timeout=FAULT_TIMEOUT, max_retries=0)
        with pytest.raises(ProviderTimeout):
            await asyncio.wait_for(llm.generate("hi"), BOUND - 3)
        await llm.aclose()

    async def test_per_call_timeout(self, wire_factory: Wire) -> None:
        server = wire_factory(self.kind)
        server.push(Fault.hang(seconds=BOUND - 2))
        llm = self.make(server, timeout=BOUND, max_retries=0)
        with pytest.raises(ProviderTimeout, match=r"0\.4 s"):
            await asyncio.wait_for(llm.generate("hi", timeout=FAULT_TIMEOUT), BOUND - 3)
        assert (await asyncio.wait_for(llm.generate("again"), BOUND)).content
        await llm.aclose()

    async def test_stream_hang_mid_way_times_out_and_keeps_partial_text(
        self, wire_factory: Wire
    ) -> None:
        server = wire_factory(self.kind)
        server.push(Fault.hang(seconds=BOUND - 2, after=self.cut_after))
        llm = self.make(server, timeout=FAULT_TIMEOUT, max_retries=0)
        with pytest.raises(ProviderTimeout) as info:
            await asyncio.wait_for(self.events(llm), BOUND - 3)
        partial = info.value.partial
        assert partial is not None and partial.content
        assert server.default.text.startswith(partial.content)
        assert partial.finish_reason == "error"
        await llm.aclose()

    async def test_cut_stream_raises_and_keeps_partial_text(self, wire_factory: Wire) -> None:
        server = wire_factory(self.kind)
        server.push(Fault.cut(after=self.cut_after))
        llm = self.make(server)
        with pytest.raises(ProviderServerError) as info:
            await self.events(llm)
        partial = info.value.partial
        assert partial is not None and partial.content
        assert server.default.text.startswith(partial.content)
        assert partial.content != server.default.text
        assert len(server.requests) == 1  # text was delivered: never retried
        await llm.aclose()

    async def test_error_event_inside_a_stream_keeps_partial_text(self, wire_factory: Wire) -> None:
        server = wire_factory(self.kind)
        fmt = server.formats[self.kind]
        original = fmt.stream_events

        def with_error(reply: Reply, request: Any) -> list[bytes]:
            return [*original(reply, request)[: self.cut_after], self.error_event]

        fmt.stream_events = with_error  # type: ignore[method-assign]
        try:
            llm = self.make(server)
            with pytest.raises(ProviderServerError, match=r"(?i)overloaded") as info:
                await self.events(llm)
        finally:
            del fmt.stream_events
        partial = info.value.partial
        assert partial is not None and server.default.text.startswith(partial.content)
        assert partial.content
        assert len(server.requests) == 1
        await llm.aclose()

    @pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
    async def test_malformed_json_is_server_error(self, wire_factory: Wire, stream: bool) -> None:
        server = wire_factory(self.kind)
        server.push(Fault.malformed())
        llm = self.make(server, max_retries=0)
        with pytest.raises(ProviderServerError):
            if stream:
                await self.events(llm)
            else:
                await asyncio.wait_for(llm.generate("hi"), BOUND)
        await llm.aclose()

    async def test_bad_request_is_not_retried(self, wire_factory: Wire) -> None:
        server = wire_factory(self.kind)
        server.push(Fault.bad_request(), Fault.bad_request())
        llm = self.make(server)
        with pytest.raises(BadRequestError) as info:
            await asyncio.wait_for(llm.generate("hi"), BOUND)
        assert len(server.requests) == 1
        assert info.value.provider == self.kind
        assert isinstance(info.value.__cause__, Exception)  # translated with `from exc`
        await llm.aclose()

    async def test_json_answer_cut_mid_body(self, wire_factory: Wire) -> None:
        server = wire_factory(self.kind)
        server.push(Fault.cut())
        llm = self.make(server, max_retries=0)
        with pytest.raises(ProviderServerError):
            await asyncio.wait_for(llm.generate("hi"), BOUND)
        await llm.aclose()

    async def test_stream_error_before_any_text_is_retried(self, wire_factory: Wire) -> None:
        server = wire_factory(self.kind)
        server.push(Fault.server_error(), Reply(chunks=["fine"], usage=(3, 1)))
        llm = self.make(server)
        events = await self.events(llm)
        assert [e.text for e in events if not e.final] == ["fine"]
        assert len(server.requests) == 2
        await llm.aclose()

    async def test_context_length_error(self, wire_factory: Wire) -> None:
        server = wire_factory(self.kind)
        server.push(Fault.context_length())
        llm = self.make(server)
        with pytest.raises(ContextLengthError) as info:
            await asyncio.wait_for(llm.generate("hi"), BOUND)
        assert "ContextWindowManager" in str(info.value)
        assert len(server.requests) == 1
        await llm.aclose()

    def test_sync_facade_on_the_background_loop(self, wire_factory: Wire) -> None:
        from nbinfra.llm.sync import SyncLLM

        server = wire_factory(self.kind)
        server.push(Reply("sync answer", usage=(4, 2)), Reply(chunks=["x", "y"]))
        llm = SyncLLM(self.make(server))
        try:
            assert llm.generate("hi").content == "sync answer"
            assert list(llm.stream("hi")) == ["x", "y"]
        finally:
            llm.close()

    def test_shipped_configuration_builds_the_provider(self, nbinfra_session: Any) -> None:
        from nbinfra.config import load_settings
        from nbinfra.llm import LLMFactory

        conf = load_settings(environ={})
        llm = LLMFactory.get_llm(self.kind, settings=conf, session=nbinfra_session)
        assert llm.provider == self.kind and llm.model
        assert llm.timeout > 0 and llm.retry.max_retries >= 0

    # -- secrets and imports -------------------------------------------------------
    async def test_key_never_in_errors_logs_or_reprs(
        self, wire_factory: Wire, caplog: pytest.LogCaptureFixture
    ) -> None:
        server = wire_factory(self.kind)
        caplog.set_level(logging.DEBUG)
        llm = self.make(server, key=SENTINEL, max_retries=1)
        seen: list[str] = [repr(llm), str(llm), repr(llm.settings)]
        for fault in (Fault.unauthorized(), Fault.server_error(), Fault.server_error()):
            server.push(fault)
        for _ in range(2):
            try:
                await asyncio.wait_for(llm.generate("hi"), BOUND)
            except LLMError as exc:
                seen += [str(exc), repr(exc), *exc._render_traceback_()]
        server.push(Fault.cut(after=self.cut_after))
        try:
            await self.events(llm)
        except LLMError as exc:
            seen += [str(exc), repr(exc)]
        sent = [r for r in server.requests if SENTINEL in str(r.headers)]
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
        out = run_python(code, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "False"
