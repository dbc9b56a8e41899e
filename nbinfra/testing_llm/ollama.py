"""Ollama's native API wire format (NDJSON streams)."""

from __future__ import annotations

import json
from typing import Any

from nbinfra.testing import Request, Response
from nbinfra.testing_llm import Fault, Reply, WireFormat, embedding_for

__all__ = ["OllamaFormat"]

_JSON = {"Content-Type": "application/json"}


def _body(request: Request) -> dict[str, Any]:
    try:
        data = request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class OllamaFormat(WireFormat):
    """Ollama's ``/api/chat`` (JSON, and NDJSON streams whose last line has ``done``,
    ``prompt_eval_count`` and ``eval_count``), ``/api/show``, ``/api/tags``, ``/api/embed``.

    ``server.models`` lists the pulled models (``{"llama3.2": {"num_ctx": 4096}}``);
    a model not listed answers 404 "not found, try pulling it first". With no models
    listed, every model counts as pulled."""

    name = "ollama"
    stream_content_type = "application/x-ndjson"

    def routes(self) -> list[tuple[str, str, str]]:
        return [
            ("POST", "/api/chat", "chat"),
            ("POST", "/api/show", "show"),
            ("GET", "/api/tags", "tags"),
            ("POST", "/api/embed", "embed"),
        ]

    def is_stream(self, request: Request) -> bool:
        return bool(_body(request).get("stream", True))  # Ollama streams unless told not to

    def _model(self, reply: Reply, request: Request) -> str:
        return reply.model or str(_body(request).get("model") or "llama-test")

    def _pulled(self, name: str) -> bool:
        if not self.server.models:
            return True
        base = name.removesuffix(":latest")
        return base in self.server.models or name in self.server.models

    def _line(self, model: str, text: str, done: bool, reply: Reply | None = None) -> bytes:
        line: dict[str, Any] = {
            "model": model,
            "created_at": "2025-01-01T00:00:00.000000Z",
            "message": {"role": "assistant", "content": text},
            "done": done,
        }
        if done and reply is not None:
            line["done_reason"] = reply.finish_reason
            line.update(self._counts(reply))
        return json.dumps(line).encode() + b"\n"

    def _counts(self, reply: Reply) -> dict[str, int]:
        out = {"total_duration": 5_000_000, "load_duration": 1_000_000}
        if reply.usage is not None:
            i, o = reply.usage
            out.update(
                prompt_eval_count=i,
                prompt_eval_duration=1_000_000,
                eval_count=o,
                eval_duration=2_000_000,
            )
        return out

    def handle(self, endpoint: str, request: Request) -> Response:
        model = str(_body(request).get("model") or "")
        fault_next = bool(self.server._queue) and isinstance(self.server._queue[0], Fault)
        missing = bool(model) and not fault_next and not self._pulled(model)
        if endpoint in ("chat", "show", "embed") and missing:
            return Response(404, {"error": f'model "{model}" not found, try pulling it first'})
        return super().handle(endpoint, request)

    def answer_schema(self, request: Request) -> dict[str, Any] | None:
        """``format`` given as a JSON schema (``"json"`` is schema-free JSON mode)."""
        found = _body(request).get("format")
        return found if isinstance(found, dict) else None

    def chat(self, reply: Reply, request: Request, stream: bool) -> Response:
        if stream:
            return Response(
                200, headers=self._stream_headers(), chunks=self.stream_events(reply, request)
            )
        model = self._model(reply, request)
        body = json.loads(self._line(model, reply.text, True, reply))
        return Response(200, body)

    def stream_events(self, reply: Reply, request: Request) -> list[bytes]:
        model = self._model(reply, request)
        out = [self._line(model, c, False) for c in reply.stream_chunks()]
        out.append(self._line(model, "", True, reply))
        return out

    def error(self, fault: Fault) -> Response:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        message = "unauthorized" if fault.status == 401 else fault.message
        return Response(fault.status, {"error": message}, headers=headers)

    def malformed(self, stream: bool) -> Response:
        if stream:
            return Response(
                200, headers=self._stream_headers(), chunks=[b'{"model": "x", "message": {\n']
            )
        return Response(200, b'{"model": "x", "message": {', headers=_JSON)

    def other(self, endpoint: str, request: Request) -> Response:
        data = _body(request)
        if endpoint == "show":
            facts = dict(
                self.server.models.get(str(data.get("model", "")).removesuffix(":latest"), {})
            )
            num_ctx = facts.pop("num_ctx", None)
            length = facts.pop("context_length", 131072)
            params = 'stop "<|eot_id|>"'
            if num_ctx:
                params += f"\nnum_ctx {num_ctx}"
            return Response(
                200,
                {
                    "modelfile": "FROM llama3.2",
                    "parameters": params,
                    "template": "{{ .Prompt }}",
                    "details": {"family": "llama", "parameter_size": "3.2B"},
                    "model_info": {"general.architecture": "llama", "llama.context_length": length},
                    "capabilities": ["completion"],
                    "modified_at": "2025-01-01T00:00:00Z",
                },
            )
        if endpoint == "tags":
            names = sorted(self.server.models) or ["llama3.2"]
            return Response(
                200,
                {
                    "models": [
                        {"name": f"{n}:latest", "model": f"{n}:latest", "size": 1, "digest": "0"}
                        for n in names
                    ]
                },
            )
        if endpoint == "embed":
            inputs = data.get("input")
            texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
            return Response(
                200,
                {
                    "model": data.get("model"),
                    "embeddings": [embedding_for(t) for t in texts],
                    "prompt_eval_count": sum(max(1, len(t) // 4) for t in texts),
                },
            )
        return super().other(endpoint, request)
