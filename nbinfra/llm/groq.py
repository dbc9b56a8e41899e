"""Groq on its official ``groq`` SDK (an OpenAI-shaped API under ``/openai/v1``)."""

from __future__ import annotations

from typing import Any

from nbinfra.llm import LLMProvider, LLMRegistry
from nbinfra.llm._openai_compat import OpenAICompatibleProvider
from nbinfra.llm.types import Usage

__all__ = ["GroqProvider"]


@LLMRegistry.register(LLMProvider.GROQ)
class GroqProvider(OpenAICompatibleProvider):
    """Groq chat completions. Groq reports a model's ``context_window`` itself."""

    kind = "groq"
    sdk_name = "groq"
    env_key = "GROQ_API_KEY"
    default_rank = 30
    default_model = "llama-3.1-8b-instant"
    # The groq SDK has no stream_options parameter; Groq reports stream usage in
    # ``x_groq.usage`` on the last chunk anyway.
    ask_stream_usage = False
    # Groq's json_schema response format exists on a few models only (not the default
    # llama-3.1-8b-instant): schema= uses JSON mode with the schema in the prompt.
    json_schema_mode = False

    def _create_client(self) -> Any:
        import groq

        return groq.AsyncGroq(
            api_key=self.api_key(),
            base_url=self.base_url or None,
            timeout=self._sdk_timeout(),
            max_retries=0,  # our RetryPolicy retries; the SDK's would multiply them
        )

    def _usage(self, obj: Any) -> Usage | None:
        found = super()._usage(obj)
        if found is not None:
            return found
        x_groq = getattr(obj, "x_groq", None)
        usage = getattr(x_groq, "usage", None) if x_groq is not None else None
        if usage is None and isinstance(x_groq, dict):
            usage = x_groq.get("usage")
        if usage is None:
            return None
        if isinstance(usage, dict):
            return Usage(
                int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            )
        return Usage(int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0))
