"""``SyncLLM``: the synchronous facade behind ``nbinfra.llm("groq")``.

Every call runs on nbinfra's background loop; streams pull one chunk at a time, so text
is printed on the caller's thread (in a notebook, the running cell).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from nbinfra import _loop
from nbinfra._secrets import is_secret_key
from nbinfra.llm.types import LLMResponse, MessagesLike, StreamChunk, TokenCount

if TYPE_CHECKING:
    from nbinfra.llm import LLMProvider
    from nbinfra.llm.base import BaseLLMProvider
    from nbinfra.session import Session

__all__ = ["SyncLLM", "llm"]


class SyncLLM:
    """Blocking twin of a ``BaseLLMProvider`` (``.llm`` is the async object).

    Made by ``nbinfra.llm(...)``, it asks the session for its provider on every use, so a
    provider rebuilt after its settings changed (a key set later) is the one called.
    """

    def __init__(
        self,
        provider: BaseLLMProvider,
        resolve: Callable[[BaseLLMProvider], BaseLLMProvider] | None = None,
    ) -> None:
        self._llm = provider
        self._resolve = resolve

    @property
    def llm(self) -> BaseLLMProvider:
        if self._resolve is not None:
            self._llm = self._resolve(self._llm)
        return self._llm

    @property
    def provider(self) -> str:
        return self.llm.provider

    @property
    def model(self) -> str:
        return self.llm.model

    @property
    def context_window(self) -> int | None:
        return self.llm.context_window

    def initialize(self) -> SyncLLM:
        _loop.run_sync(self.llm.initialize())
        return self

    def generate(self, prompt: MessagesLike, **options: Any) -> LLMResponse:
        return _loop.run_sync(self.llm.generate(prompt, **options))

    def stream(self, prompt: MessagesLike, **options: Any) -> Iterator[str]:
        """Text deltas; ``for t in llm.stream(p): print(t, end="")``."""
        return _loop.iterate_sync(self.llm.stream_generate(prompt, **options))

    def stream_events(self, prompt: MessagesLike, **options: Any) -> Iterator[StreamChunk]:
        """Text chunks, then one final chunk whose ``response`` has usage."""
        return _loop.iterate_sync(self.llm.stream_events(prompt, **options))

    def map(self, data: Any, template: str | None = None, **options: Any) -> Any:
        """One prompt per row of ``data`` (a list, a DataFrame with a ``{column}`` template,
        or a Series); returns a DataFrame aligned to its index. See ``nbinfra.llm.map``."""
        from nbinfra.llm.map import run_map

        return run_map(self.llm, data, template, **options)

    def embed(self, texts: str | Sequence[str], *, model: str | None = None) -> list[list[float]]:
        return _loop.run_sync(self.llm.embed(texts, model=model))

    def count_tokens(self, messages: MessagesLike) -> TokenCount:
        return self.llm.count_tokens(messages)

    def close(self) -> None:
        _loop.run_sync(self.llm.aclose())

    def __call__(self, prompt: MessagesLike, **options: Any) -> LLMResponse:
        return self.generate(prompt, **options)

    def __repr__(self) -> str:
        return f"SyncLLM({self.llm!r})"


def llm(
    provider_or_name: str | LLMProvider | None = None,
    model: str | None = None,
    *,
    session: Session | None = None,
    **options: Any,
) -> SyncLLM:
    """The session's ``SyncLLM`` for this spec (created once per spec and options)."""
    from nbinfra.llm.factory import get_llm
    from nbinfra.session import session as default_session

    current = session if session is not None else default_session()
    spec = str(getattr(provider_or_name, "value", provider_or_name) or "")
    key = spec + (f"|{model}" if model else "")
    if options:
        # The key shows in Session reprs: never put a secret value in it.
        shown = {k: ("<secret>" if is_secret_key(k) else v) for k, v in options.items()}
        key += "|" + repr(sorted(shown.items()))
        if any(is_secret_key(k) for k in options):
            key += "|" + hashlib.sha256(repr(sorted(options.items())).encode()).hexdigest()[:12]

    def create() -> BaseLLMProvider:
        return get_llm(provider_or_name, model, session=current, **options)

    def resolve(last: BaseLLMProvider | None = None) -> BaseLLMProvider:
        if last is not None and current.closed:
            return last
        return current.get("llm", key or "<default>", create)

    return SyncLLM(resolve(), resolve)
