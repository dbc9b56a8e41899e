"""One SDK client per provider, living on nbinfra's loop, whoever awaits the call."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

from nbinfra import _loop
from nbinfra.llm.calls import CallOptions, Completion, Delta
from nbinfra.llm.fake import FakeLLMProvider
from nbinfra.llm.openai import OpenAIProvider
from nbinfra.llm.settings import ProviderSettings
from nbinfra.llm.sync import SyncLLM
from nbinfra.llm.types import Message
from nbinfra.testing_llm import LLMWireServer


class WhereFake(FakeLLMProvider):
    """Records the thread each hook runs on."""

    threads: list[str]

    async def _complete(self, messages: list[Message], opts: CallOptions) -> Completion:
        self.threads.append(threading.current_thread().name)
        return await super()._complete(messages, opts)

    async def _stream(
        self, messages: list[Message], opts: CallOptions
    ) -> AsyncIterator[str | Delta]:
        self.threads.append(threading.current_thread().name)
        async for piece in super()._stream(messages, opts):
            yield piece


async def test_calls_from_any_loop_run_on_nbinfras_loop() -> None:
    llm = WhereFake(settings=ProviderSettings(), announce=False)
    llm.threads = []
    assert not _loop.in_loop_thread()  # the test's own loop, like a notebook's await
    await llm.generate("hi")
    assert [c async for c in llm.stream_generate("hi")]
    events = [e async for e in llm.stream_events("hi")]
    assert events[-1].final and events[-1].response is not None
    await asyncio.to_thread(SyncLLM(llm).generate, "from a thread")
    assert llm.threads == ["nbinfra-loop"] * 4
    assert llm._client_loop is _loop.get_loop()


async def test_one_client_serves_the_notebook_loop_and_the_facade() -> None:
    with LLMWireServer("openai") as server:
        llm = OpenAIProvider(
            "gpt-4o-mini",
            settings=ProviderSettings(api_key=_secret(), base_url=server.base_url("openai")),
        )
        server.push("one", "two", "three")
        assert (await llm.generate("hi")).content == "one"
        first = llm._client
        assert SyncLLM(llm).generate("hi").content == "two"
        assert "".join([c async for c in llm.stream_generate("hi")]) == "three"
        assert llm._client is first  # not one client per loop
        await llm.aclose()
        assert llm._client is None
        server.push("after close")
        assert (await llm.generate("hi")).content == "after close"  # a new client
        await llm.aclose()


async def test_cancelling_the_awaiting_task_cancels_the_call_on_the_loop() -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []
    caller_loop = asyncio.get_running_loop()

    class Slow(FakeLLMProvider):
        async def _complete(self, messages: Any, opts: Any) -> Completion:
            caller_loop.call_soon_threadsafe(started.set)
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
            raise AssertionError("not reached")

    llm = Slow(settings=ProviderSettings(), announce=False)
    task = asyncio.create_task(llm.generate("hi"))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for _ in range(100):
        if cancelled:
            break
        await asyncio.sleep(0.01)
    assert cancelled == [True]


def _secret() -> Any:
    from nbinfra._secrets import Secret

    return Secret("sk-one-client-0123456789")
