"""``schema=`` on Anthropic, Gemini, Ollama and Hugging Face: each provider's native
mechanism, on its official SDK, as the local wire server received it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from nbinfra.errors import SchemaError
from nbinfra.llm.google import gemini_schema
from nbinfra.llm.schema import as_schema
from nbinfra.testing_llm import LLMWireServer, Reply
from tests.llm.conftest import provider_for
from tests.llm.test_schema import SCHEMAS, TICKET_DICT, Person, Ticket

CHAT_PATH = {
    "anthropic": "/v1/messages",
    "google": ":generateContent",
    "ollama": "/api/chat",
    "huggingface": "/v1/chat/completions",
}


def sent_schema(kind: str, body: dict[str, Any]) -> Any:
    """The schema as the request carried it, in the provider's own wire format."""
    if kind == "anthropic":
        assert body["tool_choice"] == {"type": "tool", "name": "Ticket"}
        (tool,) = body["tools"]
        assert tool["name"] == "Ticket" and tool["description"]
        return tool["input_schema"]
    if kind == "google":
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        return config["responseSchema"]
    if kind == "ollama":
        return body["format"]
    assert body["response_format"]["type"] == "json"  # TGI's grammar on a base_url server
    return body["response_format"]["value"]


def _without_none(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_none(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_without_none(v) for v in node]
    return node


@pytest.mark.parametrize("kind", sorted(CHAT_PATH))
@pytest.mark.parametrize("schema", [Ticket, TICKET_DICT], ids=["pydantic", "dict"])
async def test_native_mode_is_sent_and_the_answer_parsed(
    kind: str, schema: Any, wire_factory: Callable[..., LLMWireServer]
) -> None:
    server = wire_factory(kind)
    llm = provider_for(kind, server)
    response = await llm.generate("File a ticket", schema=schema)
    request = server.last(CHAT_PATH[kind])
    wanted = as_schema(schema).json_schema
    carried = sent_schema(kind, request.json())
    if kind == "google":  # the SDK inlines $defs and writes Gemini's type names
        assert carried["type"] == "OBJECT" and "$defs" not in json.dumps(carried)
        assert set(carried["properties"]) == set(wanted["properties"])
        assert carried["required"] == wanted["required"]
    elif kind == "huggingface":  # huggingface_hub drops None values from the payload
        assert carried == _without_none(wanted)
    else:
        assert carried == wanted
    assert server.schema_answers == 1  # the server saw the schema and answered from it
    if schema is Ticket:
        assert isinstance(response.parsed, Ticket) and isinstance(response.parsed.owner, Person)
        assert response.parsed.priority.value in ("low", "medium", "high")
    else:
        assert set(response.parsed) >= {"title", "priority", "count"}
    assert json.loads(response.content) == json.loads(
        response.parsed.model_dump_json() if schema is Ticket else json.dumps(response.parsed)
    )
    await llm.aclose()


async def test_anthropic_answer_is_the_tool_input_and_repair_works(
    wire_factory: Callable[..., LLMWireServer],
) -> None:
    server = wire_factory("anthropic")
    server.broken_schema_answers = 1
    llm = provider_for("anthropic", server)
    response = await llm.generate("File a ticket", schema=Ticket)
    assert response.repairs == 1 and response.finish_reason == "stop"
    first, second = (r.json() for r in server.requests if r.path == "/v1/messages")
    assert "system" not in first  # no JSON instruction: the tool carries the schema
    assert second["messages"][-2]["role"] == "assistant"
    assert "title: a required field is missing" in second["messages"][-1]["content"]
    assert second["tool_choice"] == first["tool_choice"]
    await llm.aclose()


@pytest.mark.parametrize("kind", ["google", "ollama", "huggingface"])
async def test_repair_gives_up_in_one_line_on_every_provider(
    kind: str, wire_factory: Callable[..., LLMWireServer]
) -> None:
    server = wire_factory(kind)
    server.broken_schema_answers = 9
    llm = provider_for(kind, server)
    with pytest.raises(SchemaError, match=r"answered 2 times without matching Ticket: title:"):
        await llm.generate("File a ticket", schema=Ticket, repair=1)
    assert server.schema_answers == 2
    await llm.aclose()


def test_huggingface_without_base_url_sends_openai_json_schema() -> None:
    from nbinfra.llm.huggingface import HuggingFaceProvider
    from nbinfra.llm.settings import ProviderSettings

    llm = HuggingFaceProvider(settings=ProviderSettings())
    assert llm._schema_format(as_schema(Ticket)) == {
        "type": "json_schema",
        "json_schema": {
            "name": "Ticket",
            "schema": as_schema(Ticket).strict_schema,
            "strict": True,
        },
    }


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
def test_gemini_schema_is_accepted_by_the_sdk(schema: dict[str, Any]) -> None:
    from google.genai import _transformers, types

    converted = gemini_schema(schema)
    assert "additionalProperties" not in json.dumps(converted)
    result = _transformers.t_schema(None, json.loads(json.dumps(converted)))
    assert isinstance(result, types.Schema)


def test_gemini_schema_rewrites_what_gemini_lacks() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "v": {"const": "x"},
            "n": {"type": ["integer", "null"], "exclusiveMinimum": 0},
            "o": {"oneOf": [{"type": "string"}]},
            "a": {"allOf": [{"type": "string", "description": "d"}]},
        },
    }
    assert gemini_schema(schema) == {
        "type": "object",
        "properties": {
            "v": {"enum": ["x"]},
            "n": {"type": "integer", "nullable": True, "minimum": 0},
            "o": {"anyOf": [{"type": "string"}]},
            "a": {"type": "string", "description": "d"},
        },
    }


async def test_a_scripted_reply_wins_over_the_schema_answer(
    wire_factory: Callable[..., LLMWireServer],
) -> None:
    server = wire_factory("ollama")
    server.push(Reply(json.dumps({"title": "scripted", "priority": "low", "count": 11})))
    llm = provider_for("ollama", server)
    response = await llm.generate("x", schema=TICKET_DICT)
    assert response.parsed["title"] == "scripted" and server.schema_answers == 0
    await llm.aclose()
