"""Anthropic's Messages API wire format."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from nbinfra.testing import Request, Response
from nbinfra.testing_llm import Fault, Reply, WireFormat

__all__ = ["AnthropicFormat"]

_JSON = {"Content-Type": "application/json"}


def _body(request: Request) -> dict[str, Any]:
    try:
        data = request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _sse(event: str | None, data: dict[str, Any]) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(data).encode() + b"\n\n"


class AnthropicFormat(WireFormat):
    """Anthropic's ``/v1/messages`` (JSON and SSE events ``message_start``,
    ``content_block_delta``, ``message_delta`` with usage, ...) and ``/v1/models/{id}``."""

    name = "anthropic"
    ERROR_TYPES: ClassVar[dict[int, str]] = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        529: "overloaded_error",
    }
    STOP: ClassVar[dict[str, str]] = {"stop": "end_turn", "length": "max_tokens"}

    def routes(self) -> list[tuple[str, str, str]]:
        return [("POST", "/v1/messages", "chat"), ("GET", "/v1/models/*", "model")]

    def _model(self, reply: Reply, request: Request) -> str:
        return reply.model or str(_body(request).get("model") or "claude-test")

    def _message(self, reply: Reply, request: Request, content: list[Any]) -> dict[str, Any]:
        i, o = reply.usage or (0, 0)
        return {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": self._model(reply, request),
            "content": content,
            "stop_reason": self.STOP.get(reply.finish_reason, reply.finish_reason),
            "stop_sequence": None,
            "usage": {"input_tokens": i, "output_tokens": o},
        }

    def _forced_tool(self, request: Request) -> dict[str, Any] | None:
        """The tool a ``tool_choice: {"type": "tool", "name": N}`` request forces."""
        body = _body(request)
        choice = body.get("tool_choice") or {}
        if not isinstance(choice, dict) or choice.get("type") != "tool":
            return None
        for tool in body.get("tools") or []:
            if isinstance(tool, dict) and tool.get("name") == choice.get("name"):
                return tool
        return None

    def answer_schema(self, request: Request) -> dict[str, Any] | None:
        tool = self._forced_tool(request)
        found = tool.get("input_schema") if tool is not None else None
        return found if isinstance(found, dict) else None

    def chat(self, reply: Reply, request: Request, stream: bool) -> Response:
        if stream:
            return Response(
                200, headers=self._stream_headers(), chunks=self.stream_events(reply, request)
            )
        tool = self._forced_tool(request)
        if tool is not None:  # a forced tool is answered with a tool_use block
            try:
                given = json.loads(reply.text)
            except ValueError:
                given = {"text": reply.text}
            block = {"type": "tool_use", "id": "toolu_test", "name": tool["name"], "input": given}
            message = self._message(reply, request, [block])
            message["stop_reason"] = "tool_use"
            return Response(200, message)
        return Response(200, self._message(reply, request, [{"type": "text", "text": reply.text}]))

    def stream_events(self, reply: Reply, request: Request) -> list[bytes]:
        start = self._message(reply, request, [])
        start["stop_reason"] = None
        o = reply.usage[1] if reply.usage else 0
        start["usage"] = {**start["usage"], "output_tokens": 1}  # output counted in message_delta
        out = [
            _sse("message_start", {"type": "message_start", "message": start}),
            _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            _sse("ping", {"type": "ping"}),
        ]
        out += [
            _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": c},
                },
            )
            for c in reply.stream_chunks()
        ]
        stop = self.STOP.get(reply.finish_reason, reply.finish_reason)
        out += [
            _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": o},
                },
            ),
            _sse("message_stop", {"type": "message_stop"}),
        ]
        return out

    def error(self, fault: Fault) -> Response:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        message = fault.message
        if fault.code == "context_length_exceeded":
            message = "prompt is too long: 9000 tokens > 8192 maximum"
        kind = self.ERROR_TYPES.get(fault.status, "api_error" if fault.status >= 500 else "error")
        body = {"type": "error", "error": {"type": kind, "message": message}}
        return Response(fault.status, body, headers=headers)

    def malformed(self, stream: bool) -> Response:
        if stream:
            return Response(
                200,
                headers=self._stream_headers(),
                chunks=[b"event: message_start\ndata: {not json\n\n"],
            )
        return Response(200, b'{"id": "msg_x", "content": [', headers=_JSON)

    def other(self, endpoint: str, request: Request) -> Response:
        if endpoint == "model":
            model_id = request.path.rsplit("/models/", 1)[-1]
            obj: dict[str, Any] = {
                "type": "model",
                "id": model_id,
                "display_name": model_id,
                "created_at": "2025-01-01T00:00:00Z",
                "lifecycle": "active",
            }
            obj.update(self.server.models.get(model_id, {}))
            return Response(200, obj)
        return super().other(endpoint, request)
