"""OpenAI-shaped wire formats: OpenAI, Groq (under ``/openai/v1``) and Azure OpenAI."""

from __future__ import annotations

import json
import re
from typing import Any

from nbinfra.testing import Request, Response
from nbinfra.testing_llm import Fault, Reply, WireFormat, embedding_for

__all__ = ["AzureFormat", "GroqFormat", "OpenAIFormat"]


class OpenAIFormat(WireFormat):
    """OpenAI's ``/v1/chat/completions`` (JSON and SSE), ``/v1/models``, ``/v1/embeddings``."""

    name = "openai"
    prefix = "/v1"

    def routes(self) -> list[tuple[str, str, str]]:
        p = self.prefix
        return [
            ("POST", f"{p}/chat/completions", "chat"),
            ("POST", f"{p}/embeddings", "embeddings"),
            ("GET", f"{p}/models", "models"),
            ("GET", f"{p}/models/*", "model"),
        ]

    def base_url(self) -> str:
        return self.server.url + self.prefix

    def _model(self, reply: Reply, request: Request) -> str:
        if reply.model:
            return reply.model
        try:
            return str(request.json().get("model") or "test-model")
        except (ValueError, AttributeError):
            return "test-model"

    def _usage(self, reply: Reply) -> dict[str, int] | None:
        if reply.usage is None:
            return None
        i, o = reply.usage
        return {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o}

    def answer_schema(self, request: Request) -> dict[str, Any] | None:
        """``response_format``: ``{"type": "json_schema", "json_schema": {"schema": ...}}``
        (OpenAI), or ``{"type": "json", "value": ...}`` (TGI's grammar)."""
        try:
            wanted = request.json().get("response_format") or {}
        except (ValueError, AttributeError):
            return None
        if not isinstance(wanted, dict):
            return None
        if wanted.get("type") == "json_schema":
            found = (wanted.get("json_schema") or {}).get("schema")
        elif wanted.get("type") == "json":
            found = wanted.get("value")
        else:
            found = None
        return found if isinstance(found, dict) else None

    def chat(self, reply: Reply, request: Request, stream: bool) -> Response:
        if stream:
            return Response(
                200, headers=self._stream_headers(), chunks=self.stream_events(reply, request)
            )
        body: dict[str, Any] = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1700000000,
            "model": self._model(reply, request),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "finish_reason": reply.finish_reason,
                    "logprobs": None,
                }
            ],
        }
        usage = self._usage(reply)
        if usage is not None:
            body["usage"] = usage
        return Response(200, body)

    def chunk(self, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    def first_events(self, model: str) -> list[dict[str, Any]]:
        return [self.chunk(model, {"role": "assistant", "content": ""}, None)]

    def last_events(self, reply: Reply, model: str, include_usage: bool) -> list[dict[str, Any]]:
        events = [self.chunk(model, {}, reply.finish_reason)]
        usage = self._usage(reply)
        if include_usage and usage is not None:
            events.append({**self.chunk(model, {}, None), "choices": [], "usage": usage})
        return events

    def stream_events(self, reply: Reply, request: Request) -> list[bytes]:
        model = self._model(reply, request)
        try:
            options = request.json().get("stream_options") or {}
        except (ValueError, AttributeError):
            options = {}
        include_usage = bool(options.get("include_usage"))
        events = self.first_events(model)
        events += [self.chunk(model, {"content": c}, None) for c in reply.stream_chunks()]
        events += self.last_events(reply, model, include_usage)
        out = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
        out.append(b"data: [DONE]\n\n")
        return out

    def error(self, fault: Fault) -> Response:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        body = {
            "error": {
                "message": fault.message,
                "type": fault.code or "error",
                "param": None,
                "code": fault.code,
            }
        }
        return Response(fault.status, body, headers=headers)

    def other(self, endpoint: str, request: Request) -> Response:
        if endpoint == "model":
            model_id = request.path.rsplit("/models/", 1)[-1]
            return Response(200, self.model_object(model_id))
        if endpoint == "models":
            ids = sorted(self.server.models) or ["test-model"]
            return Response(200, {"object": "list", "data": [self.model_object(m) for m in ids]})
        if endpoint == "embeddings":
            data = request.json()
            inputs = data.get("input")
            texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
            tokens = sum(max(1, len(t) // 4) for t in texts)
            return Response(
                200,
                {
                    "object": "list",
                    "data": [
                        {"object": "embedding", "index": i, "embedding": embedding_for(t)}
                        for i, t in enumerate(texts)
                    ],
                    "model": data.get("model"),
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
            )
        return super().other(endpoint, request)

    def model_object(self, model_id: str) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": model_id,
            "object": "model",
            "created": 1700000000,
            "owned_by": "nbinfra-test",
        }
        obj.update(self.server.models.get(model_id, {}))
        return obj


class GroqFormat(OpenAIFormat):
    """Groq: OpenAI's shape under ``/openai/v1``; stream usage in ``x_groq.usage``."""

    name = "groq"
    prefix = "/openai/v1"

    def base_url(self) -> str:
        return self.server.url  # the groq SDK appends /openai/v1 itself

    def last_events(self, reply: Reply, model: str, include_usage: bool) -> list[dict[str, Any]]:
        last = self.chunk(model, {}, reply.finish_reason)
        usage = self._usage(reply)
        if usage is not None:
            last["x_groq"] = {"id": "req_test", "usage": usage}
        return [last]


class AzureFormat(OpenAIFormat):
    """Azure OpenAI: deployments in the path, ``api-version`` in the query, ``api-key``
    header, and a first stream chunk with empty ``choices`` (content-filter results)."""

    name = "azure"
    prefix = "/openai"

    def routes(self) -> list[tuple[str, str, str]]:
        return [
            ("POST", "/openai/deployments/*", "deployment"),
            ("GET", "/openai/models", "models"),
        ]

    def base_url(self) -> str:
        return self.server.url  # azure_endpoint

    def handle(self, endpoint: str, request: Request) -> Response:
        if endpoint == "deployment":
            endpoint = "chat" if request.path.endswith("/chat/completions") else "embeddings"
        return super().handle(endpoint, request)

    def _model(self, reply: Reply, request: Request) -> str:
        if reply.model:
            return reply.model
        match = re.match(r"/openai/deployments/([^/]+)/", request.path)
        return match.group(1) if match else "test-deployment"

    def first_events(self, model: str) -> list[dict[str, Any]]:
        empty = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [
                {"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False}}}
            ],
        }
        return [empty, *super().first_events(model)]
