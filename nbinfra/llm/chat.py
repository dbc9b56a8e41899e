"""``Chat``: a conversation with one LLM, kept inside its context window.

Each turn adds the prompt to a ``ContextWindowManager``, sends the fitted history, checks
that the provider did not silently cut the prompt (``check_prompt_tokens``) and adds the
reply. ``ask`` waits for the whole answer; ``stream`` yields it as it arrives (``%%llm
--chat`` uses it). A turn that fails or is interrupted leaves no trace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol

from nbinfra.errors import LLMError
from nbinfra.llm.context import ContextPreview, ContextWindowManager
from nbinfra.llm.truncation import check_prompt_tokens
from nbinfra.llm.types import LLMResponse, Message, StreamChunk

__all__ = ["Chat"]


class _ChatLLM(Protocol):
    @property
    def model(self) -> str: ...

    def generate(self, messages: list[Message], /, **options: Any) -> Awaitable[LLMResponse]: ...

    def stream_events(
        self, messages: list[Message], /, **options: Any
    ) -> AsyncIterator[StreamChunk]: ...


class Chat:
    """A conversation with one LLM, kept inside its context window by a manager."""

    def __init__(
        self,
        llm: _ChatLLM,
        manager: ContextWindowManager | None = None,
        *,
        system: str | None = None,
        **manager_options: Any,
    ) -> None:
        self.llm = llm
        if manager is None:
            manager_options.setdefault("context_window", getattr(llm, "context_window", None))
            manager_options.setdefault("model", llm.model)
            manager = ContextWindowManager(system=system, **manager_options)
        elif system is not None or manager_options:
            raise ValueError("Pass system and manager options to the manager, not to Chat.")
        self.manager = manager
        self.last_sent: list[Message] = []  # the fitted messages of the latest turn

    async def ask(self, prompt: str | Message, **options: Any) -> LLMResponse:
        """Send ``prompt`` with the fitted history; the reply joins the conversation."""
        messages = await self._begin(prompt, options)
        try:
            response = await self.llm.generate(messages, **options)
        except BaseException:
            self.manager.pop()  # nothing half-written: the failed prompt leaves no trace
            raise
        return self._end(messages, response)

    async def stream(self, prompt: str | Message, **options: Any) -> AsyncIterator[StreamChunk]:
        """``ask``, streamed: text chunks, then one ``final`` chunk with the response.

        The reply joins the conversation once the stream is complete; an error, an
        interrupt or a consumer that stops early leaves no trace of the turn.
        """
        messages = await self._begin(prompt, options)
        response: LLMResponse | None = None
        try:
            async for chunk in self.llm.stream_events(messages, **options):
                if chunk.final:
                    response = chunk.response
                    continue
                yield chunk
            if response is None:
                raise LLMError("The stream ended without a final response; ask again.")
        except BaseException:
            self.manager.pop()
            raise
        yield StreamChunk(final=True, response=self._end(messages, response))

    async def _begin(self, prompt: str | Message, options: dict[str, Any]) -> list[Message]:
        """Add ``prompt`` and fit the history (``options`` gain the output budget)."""
        self.manager.add(prompt if isinstance(prompt, Message) else Message("user", prompt))
        try:
            messages = await self.manager.afit()
        except BaseException:
            self.manager.pop()
            raise
        options.setdefault("max_tokens", self.manager.max_output_tokens)
        self.last_sent = messages
        return messages

    def _end(self, messages: list[Message], response: LLMResponse) -> LLMResponse:
        """Check the provider did not cut the prompt; the reply joins the conversation."""
        if response.usage.exact and not response.cached and response.usage.input_tokens:
            sent = self.manager.counter.count_messages(messages)
            check_prompt_tokens(sent, response.usage.input_tokens, response=response)
        self.manager.add(Message("assistant", response.content))
        return response

    def ask_sync(self, prompt: str | Message, **options: Any) -> LLMResponse:
        """``ask`` for synchronous code (runs on nbinfra's background loop)."""
        from nbinfra._loop import run_sync

        return run_sync(self.ask(prompt, **options))

    def preview(self) -> ContextPreview:
        return self.manager.preview()

    @property
    def history(self) -> list[Message]:
        return self.manager.messages
