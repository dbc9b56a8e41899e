"""Local test doubles for the LLM tests (the shared fake provider lives on another branch).

``ScriptedLLM`` answers from a script (or a function of the prompt) and records every call;
it is a stand-in, not a provider.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nbinfra.llm.types import LLMResponse, Message, Usage


class ScriptedLLM:
    """``async generate(messages, **options)`` answering from ``replies`` in turn."""

    provider = "scripted"

    def __init__(
        self,
        replies: list[str] | Callable[[list[Message]], str] | None = None,
        *,
        model: str = "scripted-model",
        report_input_tokens: Callable[[list[Message]], int] | None = None,
        fail_with: BaseException | None = None,
    ) -> None:
        self.replies = replies if replies is not None else ["ok"]
        self.model = model
        self.context_window: int | None = None
        self.report_input_tokens = report_input_tokens
        self.fail_with = fail_with
        self.calls: list[tuple[list[Message], dict[str, Any]]] = []

    async def generate(self, messages: list[Message], /, **options: Any) -> LLMResponse:
        self.calls.append((list(messages), dict(options)))
        if self.fail_with is not None:
            raise self.fail_with
        if callable(self.replies):
            text = self.replies(messages)
        else:
            text = self.replies[min(len(self.calls), len(self.replies)) - 1]
        reported = self.report_input_tokens(messages) if self.report_input_tokens else 0
        return LLMResponse(
            text,
            self.model,
            self.provider,
            finish_reason="stop",
            usage=Usage(reported, len(text.split()), exact=reported > 0),
        )
