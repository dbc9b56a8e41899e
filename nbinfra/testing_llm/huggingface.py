"""Hugging Face: TGI's OpenAI-compatible messages API, with TGI's error shape."""

from __future__ import annotations

from nbinfra.testing import Response
from nbinfra.testing_llm import Fault
from nbinfra.testing_llm.openai import OpenAIFormat

__all__ = ["HuggingFaceFormat"]


class HuggingFaceFormat(OpenAIFormat):
    """What ``InferenceClient(base_url=...)`` talks to: TGI's OpenAI-compatible
    ``/v1/chat/completions``; errors in TGI's shape ``{"error": ..., "error_type": ...}``."""

    name = "huggingface"

    def routes(self) -> list[tuple[str, str, str]]:
        return [("POST", "/v1/chat/completions", "chat")]

    def base_url(self) -> str:
        return self.server.url  # the client appends /v1/chat/completions

    def error(self, fault: Fault) -> Response:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        message = fault.message
        status = fault.status
        if fault.code == "context_length_exceeded":
            status = 422
            message = (
                "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8192. "
                "Given: 9000 `inputs` tokens and 100 `max_new_tokens`"
            )
        kind = {401: "authentication", 429: "overloaded", 422: "validation"}.get(status, "error")
        return Response(status, {"error": message, "error_type": kind}, headers=headers)
