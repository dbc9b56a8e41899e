"""``fake``: a deterministic, offline stand-in for a real LLM.

It is what a notebook gets when nothing is configured (announced by one line on stdout,
once per process, so once per kernel), and what tests and demos script::

    llm = FakeLLMProvider(responses=["first answer", "second answer"])
    llm = FakeLLMProvider(respond=lambda messages, opts: messages[-1].content.upper())
    llm = FakeLLMProvider(responses=[RateLimitError("slow down", retry_after=0)])

Without a script it answers with a fixed sentence that names itself a stand-in and
echoes the prompt; asked for a ``schema=``, with a value generated from the schema
(``nbinfra.llm.schema_example``: deterministic per prompt, and valid). Streams split the
answer into word chunks. Usage is counted, so it is labelled estimated. Scripted
exceptions go through the same retry and error path as a real provider's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

from nbinfra.llm import LLMProvider, LLMRegistry
from nbinfra.llm.base import BaseLLMProvider, CallOptions, Completion, Delta
from nbinfra.llm.types import LLMResponse, Message
from nbinfra.logs import get_logger

__all__ = ["ANNOUNCEMENT", "FakeLLMProvider"]

log = get_logger(__name__)

ANNOUNCEMENT = (
    "nbinfra: using the offline 'fake' LLM, a stand-in that gives canned answers. "
    "For a real model set OPENAI_API_KEY (or GROQ_API_KEY, ANTHROPIC_API_KEY, ...), "
    "start Ollama, or set llm.default in resources/application-llm.yaml."
)

Script = str | LLMResponse | BaseException
Responder = Callable[[list[Message], CallOptions], "str | LLMResponse"]

_WORDS = re.compile(r"\S+\s*|\s+")

# Processes that printed ANNOUNCEMENT (a forked child is a new process: it prints again).
_ANNOUNCED_IN: set[int] = set()
_announce_lock = threading.Lock()


@LLMRegistry.register(LLMProvider.FAKE)
class FakeLLMProvider(BaseLLMProvider):
    """Deterministic answers: scripted (``responses`` / ``respond``) or a canned echo."""

    kind = "fake"
    needs_key = False
    default_model = "fake-echo"
    default_embedding_model = "fake-embed"
    stand_in = True

    def __init__(
        self,
        model: str | None = None,
        *,
        responses: Iterable[Script] | None = None,
        respond: Responder | None = None,
        chunk_words: int = 1,
        chunk_delay: float = 0.0,
        embedding_dim: int = 16,
        announce: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self._script: list[Script] = list(responses or [])
        self._respond = respond
        self.chunk_words = max(1, int(chunk_words))
        self.chunk_delay = float(chunk_delay)
        self.embedding_dim = int(embedding_dim)
        self._announce = announce
        self._announced = False
        self.calls: list[tuple[list[Message], CallOptions]] = []  # what it was asked

    def script(self, *items: Script) -> None:
        """Queue more answers (strings, responses or exceptions), used in order."""
        self._script.extend(items)

    # -- hooks ---------------------------------------------------------------------
    def _create_client(self) -> Any:
        self._announce_once()
        return object()

    async def _close_client(self, client: Any) -> None:
        return None

    async def _check_model(self) -> int | None:
        return self.model_info().context_window or 8192

    async def _complete(self, messages: list[Message], opts: CallOptions) -> Completion:
        answer = self._next(messages, opts)
        if isinstance(answer, LLMResponse):
            return Completion(answer.content, answer.model, answer.finish_reason, answer.usage)
        return Completion(answer, opts.model, "stop", None, {"stand_in": True})

    async def _stream(
        self, messages: list[Message], opts: CallOptions
    ) -> AsyncIterator[str | Delta]:
        answer = self._next(messages, opts)
        text = answer.content if isinstance(answer, LLMResponse) else answer
        words = _WORDS.findall(text)
        for i in range(0, len(words), self.chunk_words):
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            yield Delta("".join(words[i : i + self.chunk_words]))
        if isinstance(answer, LLMResponse):
            yield Delta(finish_reason=answer.finish_reason or "stop", usage=answer.usage)
        else:
            yield Delta(finish_reason="stop", raw={"stand_in": True})

    async def _embed(self, texts: list[str], model: str) -> list[list[float]]:
        return [_vector(t, self.embedding_dim) for t in texts]

    # -- internals -----------------------------------------------------------------
    def _next(self, messages: list[Message], opts: CallOptions) -> str | LLMResponse:
        self.calls.append((messages, opts))
        if self._script:
            item = self._script.pop(0)
            if isinstance(item, BaseException):
                raise item
            return item
        if self._respond is not None:
            return self._respond(messages, opts)
        return _canned(messages, opts)

    def _announce_once(self) -> None:
        """One neutral line on stdout (stderr shows as an error box in JupyterLab)."""
        if not self._announce or self._announced:
            return
        self._announced = True
        log.info("llm %s: offline stand-in in use", self.name)
        with _announce_lock:
            if os.getpid() in _ANNOUNCED_IN:
                return
            _ANNOUNCED_IN.add(os.getpid())
        print(ANNOUNCEMENT, flush=True)


def _canned(messages: Sequence[Message], opts: CallOptions) -> str:
    prompt = next((m.content for m in reversed(messages) if m.role == "user"), "")
    short = " ".join(prompt.split())
    if len(short) > 200:
        short = short[:197] + "..."
    if opts.schema is not None:  # a schema-valid answer, the same for the same prompt
        from nbinfra.llm.schema_example import example

        return json.dumps(example(opts.schema.json_schema, seed=prompt))
    if opts.json:
        return json.dumps({"stand_in": True, "echo": short})
    return f"[offline stand-in, no LLM configured] You asked: {short}"


def _vector(text: str, dim: int) -> list[float]:
    """A unit vector derived from the text's hash: equal texts, equal vectors."""
    values: list[float] = []
    counter = 0
    while len(values) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    values = values[:dim]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
