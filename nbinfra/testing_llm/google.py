"""Google Gemini's generativelanguage wire format."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from nbinfra.testing import Request, Response
from nbinfra.testing_llm import Fault, Reply, WireFormat, embedding_for

__all__ = ["GoogleFormat"]

_JSON = {"Content-Type": "application/json"}


def _body(request: Request) -> dict[str, Any]:
    try:
        data = request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class GoogleFormat(WireFormat):
    """Gemini's ``/v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``,
    ``:batchEmbedContents`` and ``GET /v1beta/models/{model}``. A rejected key is HTTP 400
    with reason ``API_KEY_INVALID`` (what Gemini really answers), not 401."""

    name = "google"
    api_version = "v1beta"
    STATUS: ClassVar[dict[int, str]] = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }
    FINISH: ClassVar[dict[str, str]] = {"stop": "STOP", "length": "MAX_TOKENS"}

    def routes(self) -> list[tuple[str, str, str]]:
        p = f"/{self.api_version}/models/"
        return [("POST", p + "*", "action"), ("GET", p + "*", "model")]

    def handle(self, endpoint: str, request: Request) -> Response:
        if endpoint == "action":
            action = request.path.rpartition(":")[2]
            endpoint = {"generateContent": "chat", "streamGenerateContent": "chat"}.get(
                action, action
            )
        return super().handle(endpoint, request)

    def is_stream(self, request: Request) -> bool:
        return request.path.endswith(":streamGenerateContent")

    def _model(self, reply: Reply, request: Request) -> str:
        if reply.model:
            return reply.model
        return request.path.split("/models/", 1)[-1].partition(":")[0] or "gemini-test"

    def _response(self, reply: Reply, request: Request, text: str, *, last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
        if last:
            candidate["finishReason"] = self.FINISH.get(reply.finish_reason, reply.finish_reason)
        candidate["index"] = 0
        out: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": self._model(reply, request),
        }
        if last and reply.usage is not None:
            i, o = reply.usage
            out["usageMetadata"] = {
                "promptTokenCount": i,
                "candidatesTokenCount": o,
                "totalTokenCount": i + o,
            }
        out["responseId"] = "resp-test"
        return out

    def answer_schema(self, request: Request) -> dict[str, Any] | None:
        """``generationConfig.responseSchema`` (or ``responseJsonSchema``)."""
        config = _body(request).get("generationConfig") or {}
        found = config.get("responseSchema") or config.get("responseJsonSchema")
        return _camel(found) if isinstance(found, dict) else None

    def chat(self, reply: Reply, request: Request, stream: bool) -> Response:
        if stream:
            return Response(
                200, headers=self._stream_headers(), chunks=self.stream_events(reply, request)
            )
        return Response(200, self._response(reply, request, reply.text, last=True))

    def stream_events(self, reply: Reply, request: Request) -> list[bytes]:
        chunks = reply.stream_chunks() or [""]
        out = []
        for n, text in enumerate(chunks):
            event = self._response(reply, request, text, last=n == len(chunks) - 1)
            out.append(b"data: " + json.dumps(event).encode() + b"\r\n\r\n")
        return out

    def error(self, fault: Fault) -> Response:
        headers = dict(fault.headers)
        status, message = fault.status, fault.message
        details: list[dict[str, Any]] = []
        if status == 401:
            status, message = 400, "API key not valid. Please pass a valid API key."
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            )
        if fault.code == "context_length_exceeded":
            message = (
                "The input token count (9000) exceeds the maximum number of tokens allowed (8192)."
            )
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{fault.retry_after:g}s",
                }
            )
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": self.STATUS.get(status, "UNKNOWN"),
        }
        if details:
            error["details"] = details
        return Response(status, {"error": error}, headers=headers)

    def malformed(self, stream: bool) -> Response:
        if stream:
            return Response(
                200, headers=self._stream_headers(), chunks=[b"data: {not json\r\n\r\n"]
            )
        return Response(200, b'{"candidates": [', headers=_JSON)

    def other(self, endpoint: str, request: Request) -> Response:
        if endpoint == "model":
            model_id = request.path.split("/models/", 1)[-1]
            obj: dict[str, Any] = {
                "name": f"models/{model_id}",
                "version": "001",
                "displayName": model_id,
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 8192,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            }
            obj.update(self.server.models.get(model_id, {}))
            return Response(200, obj)
        if endpoint == "batchEmbedContents":
            requests = _body(request).get("requests") or []
            texts = [
                "".join(p.get("text", "") for p in r.get("content", {}).get("parts", []))
                for r in requests
            ]
            return Response(200, {"embeddings": [{"values": embedding_for(t)} for t in texts]})
        return super().other(endpoint, request)


def _camel(node: Any) -> Any:
    """Schema keys as JSON schema spells them: like Gemini (proto JSON), the server takes
    the SDK's snake_case (``min_items``, ``any_of``) as well as camelCase."""
    if isinstance(node, list):
        return [_camel(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        head, *rest = key.split("_")
        name = head + "".join(part.title() for part in rest)
        out[name] = (
            {k: _camel(v) for k, v in value.items()} if name == "properties" else (_camel(value))
        )
    return out
