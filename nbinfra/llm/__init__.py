"""LLM providers behind one registry, with the seed's names.

``LLMFactory.get_llm(LLMProvider.GROQ)`` (async API) and ``nbinfra.llm("groq")``
(a ``SyncLLM`` for notebooks; this module is callable). Importing this package imports
no SDK: provider modules load through ``LLMRegistry`` on first use.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

from nbinfra._callable import make_module_callable
from nbinfra._lazy import lazy_attributes
from nbinfra.registry import Registry

if TYPE_CHECKING:
    from nbinfra.llm.base import BaseLLMProvider
    from nbinfra.llm.chat import Chat
    from nbinfra.llm.context import ContextWindowManager
    from nbinfra.llm.factory import LLMFactory, ProviderStatus, get_llm, provider_statuses
    from nbinfra.llm.replay import ResponseStore, use_response_store
    from nbinfra.llm.sync import SyncLLM
    from nbinfra.llm.types import LLMResponse, Message

__all__ = [
    "BaseLLMProvider",
    "Chat",
    "ContextWindowManager",
    "LLMFactory",
    "LLMProvider",
    "LLMRegistry",
    "LLMResponse",
    "Message",
    "ProviderStatus",
    "ResponseStore",
    "SyncLLM",
    "get_llm",
    "provider_statuses",
    "use_response_store",
]


class LLMProvider(str, Enum):
    """Provider kinds: the seed's seven, plus the offline ``fake`` stand-in."""

    OPENAI = "openai"
    AZURE_OPENAI = "azure"
    ANTHROPIC = "anthropic"
    GROQ = "groq"
    GOOGLE = "google"
    HUGGINGFACE = "huggingface"
    OLLAMA = "ollama"
    FAKE = "fake"

    def __str__(self) -> str:
        return self.value


LLMRegistry: Registry[BaseLLMProvider] = Registry(
    "LLM provider",
    group="nbinfra.llms",
    base="nbinfra.llm.base:BaseLLMProvider",
    aliases={"azure_openai": "azure", "gemini": "google", "hf": "huggingface"},
)

_LAZY = {
    "BaseLLMProvider": "nbinfra.llm.base:BaseLLMProvider",
    "Chat": "nbinfra.llm.chat:Chat",
    "ContextWindowManager": "nbinfra.llm.context:ContextWindowManager",
    "LLMFactory": "nbinfra.llm.factory:LLMFactory",
    "LLMResponse": "nbinfra.llm.types:LLMResponse",
    "Message": "nbinfra.llm.types:Message",
    "ProviderStatus": "nbinfra.llm.factory:ProviderStatus",
    "ResponseStore": "nbinfra.llm.replay:ResponseStore",
    "SyncLLM": "nbinfra.llm.sync:SyncLLM",
    "get_llm": "nbinfra.llm.factory:get_llm",
    "provider_statuses": "nbinfra.llm.factory:provider_statuses",
    "use_response_store": "nbinfra.llm.replay:use_response_store",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


def _facade(
    provider_or_name: str | LLMProvider | None = None,
    model: str | None = None,
    **options: Any,
) -> SyncLLM:
    """``nbinfra.llm("groq:llama-3.1-8b-instant")`` -> a ``SyncLLM`` from the session."""
    from nbinfra.llm.sync import llm

    return llm(provider_or_name, model, **options)


make_module_callable(__name__, _facade)
