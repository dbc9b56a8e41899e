"""OpenAI, and any OpenAI-compatible server through ``base_url`` (vLLM, LM Studio, ...)."""

from __future__ import annotations

from typing import Any

from nbinfra.llm import LLMProvider, LLMRegistry
from nbinfra.llm._openai_compat import OpenAICompatibleProvider

__all__ = ["OpenAIProvider"]


@LLMRegistry.register(LLMProvider.OPENAI)
class OpenAIProvider(OpenAICompatibleProvider):
    """OpenAI chat completions and embeddings on the official ``openai`` SDK."""

    kind = "openai"
    env_key = "OPENAI_API_KEY"
    default_rank = 10
    default_model = "gpt-4o-mini"
    extra_settings = frozenset({"organization", "project"})
    default_embedding_model = "text-embedding-3-small"

    @property
    def max_tokens_param(self) -> str:  # type: ignore[override]
        # api.openai.com wants max_completion_tokens (reasoning models refuse max_tokens);
        # compatible servers mostly know only max_tokens.
        return "max_tokens" if self.base_url else "max_completion_tokens"

    def _create_client(self) -> Any:
        import openai

        return openai.AsyncOpenAI(
            api_key=self.api_key(),
            base_url=self.base_url or None,
            timeout=self._sdk_timeout(),
            max_retries=0,  # our RetryPolicy retries; the SDK's would multiply them
            organization=self.settings.extra.get("organization") or None,
            project=self.settings.extra.get("project") or None,
        )
