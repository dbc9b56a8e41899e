"""Structured output (``schema=``): the schema module, the generator, the fake provider,
the OpenAI family's native mode over the wire server, repair rounds and the store key."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from nbinfra.errors import InvalidOptionError, SchemaError
from nbinfra.llm.fake import FakeLLMProvider
from nbinfra.llm.replay import MemoryKeyValueStore, ResponseStore
from nbinfra.llm.schema import SchemaMismatch, as_schema, strict_schema
from nbinfra.llm.schema_example import broken_example, example
from nbinfra.llm.settings import ProviderSettings
from nbinfra.testing_llm import LLMWireServer, Reply
from tests.llm.conftest import provider_for


class Priority(str, enum.Enum):
    low = "low"
    medium = "medium"
    high = "high"


class Person(BaseModel):
    name: str
    email: str | None = None


class Ticket(BaseModel):
    title: str
    priority: Priority
    tags: list[str]
    owner: Person
    watchers: list[Person] = Field(default_factory=list)
    estimate: float = Field(ge=1, le=5)
    status: Literal["open", "closed"] = "open"
    note: str | None = None


TICKET_DICT: dict[str, Any] = {
    "title": "Ticket",
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 3},
        "priority": {"enum": ["low", "high"]},
        "count": {"type": "integer", "minimum": 10, "maximum": 12},
        "labels": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "owner": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "id": {"type": "string", "format": "uuid"}},
            "required": ["name"],
        },
    },
    "required": ["title", "priority", "count"],
}


# -- the schema module ------------------------------------------------------------------
def test_as_schema_takes_a_model_class_or_a_dict_and_names_it() -> None:
    model = as_schema(Ticket)
    assert model.name == "Ticket" and model.model is Ticket
    assert model.json_schema == Ticket.model_json_schema()
    plain = as_schema(TICKET_DICT)
    assert plain.name == "Ticket" and plain.model is None
    assert as_schema({"type": "object", "properties": {}}).name == "response"
    assert as_schema({"title": "a b/c", "type": "object"}).name == "a_b_c"  # API-safe
    assert model.key.startswith("Ticket:") and model.key != plain.key


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Ticket", "pydantic model class or a JSON-schema dict"),
        (Ticket(title="x", priority="low", tags=[], owner={"name": "a"}, estimate=1), "pydantic"),
        ({"type": "array", "items": {}}, "must describe a JSON object"),
        ({"type": "object", "properties": {"a": {"type": "nope"}}}, "not a valid JSON schema"),
    ],
)
def test_a_bad_schema_is_a_one_line_error_before_any_request(value: Any, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message) as info:
        as_schema(value)
    assert "\n" not in str(info.value)


def _objects(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found += _objects(value)
    elif isinstance(node, list):
        for value in node:
            found += _objects(value)
    return found


def test_strict_schema_closes_every_object_and_requires_every_property() -> None:
    strict = as_schema(Ticket).strict_schema
    objects = _objects(strict)
    assert len(objects) == 2  # Ticket and Person (in $defs)
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])
    assert "note" in strict["required"] and "email" in strict["$defs"]["Person"]["required"]
    # the original is untouched: validation uses it, optional fields stay optional
    assert "note" not in Ticket.model_json_schema()["required"]


class Inner(BaseModel):
    x: int = 3


class Outer(BaseModel):
    """A docstring becomes the description."""

    a: Inner = Field(description="an inner with a description: a $ref with a sibling")
    b: Inner | None = None
    c: list[Inner | str]
    d: dict[str, int] = Field(default_factory=dict)


@pytest.mark.parametrize("model", [Ticket, Person, Outer, Inner])
def test_strict_schema_is_what_the_openai_sdk_makes(model: type[BaseModel]) -> None:
    from openai.lib._pydantic import to_strict_json_schema

    assert strict_schema(model.model_json_schema()) == to_strict_json_schema(model)


def test_strict_schema_inlines_a_ref_with_siblings_and_flattens_one_allof() -> None:
    schema = {
        "type": "object",
        "$defs": {"P": {"type": "object", "properties": {"n": {"type": "string"}}}},
        "properties": {
            "a": {"$ref": "#/$defs/P", "description": "the owner"},
            "b": {"allOf": [{"$ref": "#/$defs/P"}]},
            "c": {"type": "string", "default": None},
        },
    }
    strict = strict_schema(schema)
    a = strict["properties"]["a"]
    assert "$ref" not in a and a["description"] == "the owner"
    assert a["properties"] == {"n": {"type": "string"}} and a["additionalProperties"] is False
    assert strict["properties"]["b"] == {"$ref": "#/$defs/P"}
    assert "default" not in strict["properties"]["c"]
    assert schema["properties"]["c"] == {"type": "string", "default": None}  # a copy


def test_parse_validates_into_the_model_and_names_the_first_error() -> None:
    schema = as_schema(Ticket)
    good = example(Ticket.model_json_schema(), seed="s")
    ticket = schema.parse("```json\n" + json.dumps(good) + "\n```")  # fences are stripped
    assert isinstance(ticket, Ticket) and isinstance(ticket.owner, Person)
    bad = {**good, "priority": "urgent"}
    with pytest.raises(SchemaMismatch, match=r"^priority: Input should be 'low'"):
        schema.parse(json.dumps(bad))
    missing = {k: v for k, v in good.items() if k != "title"}
    with pytest.raises(SchemaMismatch, match=r"^title: a required field is missing$"):
        schema.parse(json.dumps(missing))
    with pytest.raises(SchemaMismatch, match="Invalid JSON"):
        schema.parse("not json")


def test_parse_checks_a_dict_schema_with_jsonschema() -> None:
    schema = as_schema(TICKET_DICT)
    good = {"title": "abc", "priority": "low", "count": 11}
    assert schema.parse(json.dumps(good)) == good
    with pytest.raises(SchemaMismatch, match=r"^count: 13 is greater than the maximum of 12$"):
        schema.parse(json.dumps({**good, "count": 13}))
    with pytest.raises(SchemaMismatch, match="'priority' is a required property"):
        schema.parse('{"title": "abc", "count": 11}')
    with pytest.raises(SchemaMismatch, match=r"^not valid JSON \(Expecting property name"):
        schema.parse("{oops")


# -- the generator ----------------------------------------------------------------------
SCHEMAS: list[dict[str, Any]] = [
    Ticket.model_json_schema(),
    Outer.model_json_schema(),
    TICKET_DICT,
    strict_schema(Ticket.model_json_schema()),
    {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "mail": {"type": "string", "format": "email", "maxLength": 40},
            "odd": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "step": {"type": "integer", "multipleOf": 5, "minimum": 3},
            "flag": {"type": "boolean"},
            "nothing": {"type": "null"},
            "either": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 7}]},
            "fixed": {"const": "v1"},
            "pair": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
            "none": {"type": "array", "maxItems": 0},
            "map": {"type": "object", "additionalProperties": {"type": "integer"}},
            "both": {"allOf": [{"properties": {"x": {"type": "string"}}, "required": ["x"]}]},
            "typed": {"type": ["string", "null"], "minLength": 30},
        },
        "required": ["when", "odd", "step", "either", "pair", "both", "typed"],
    },
    {  # recursive: a tree ends
        "type": "object",
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                },
                "required": ["name", "children"],
            }
        },
        "properties": {"root": {"$ref": "#/$defs/Node"}},
        "required": ["root"],
    },
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
@pytest.mark.parametrize("seed", ["", "a prompt", "another prompt"])
def test_example_is_valid_and_deterministic(schema: dict[str, Any], seed: str) -> None:
    value = example(schema, seed)
    jsonschema.validate(value, schema)
    assert example(schema, seed) == value
    assert set(value) >= set(schema.get("required", []))
    broken = broken_example(schema, seed)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


@pytest.mark.parametrize("model", [Ticket, Outer, Person])
def test_example_of_a_model_validates_into_it(model: type[BaseModel]) -> None:
    for seed in ("", "x", "y"):
        model.model_validate(example(model.model_json_schema(), seed))
        model.model_validate(example(strict_schema(model.model_json_schema()), seed))


def test_example_enums_follow_the_seed() -> None:
    schema = {"type": "object", "properties": {"p": {"enum": list(range(20))}}}
    picks = {example(schema, f"prompt {i}")["p"] for i in range(30)}
    assert len(picks) > 5  # hashed, not always the first


# -- the fake provider ------------------------------------------------------------------
def fake(**kwargs: Any) -> FakeLLMProvider:
    return FakeLLMProvider(settings=ProviderSettings(), announce=False, **kwargs)


async def test_fake_answers_a_valid_instance_deterministically() -> None:
    llm = fake()
    first = await llm.generate("File a ticket about the login page", schema=Ticket)
    again = await llm.generate("File a ticket about the login page", schema=Ticket)
    assert isinstance(first.parsed, Ticket) and first.parsed == again.parsed
    assert first.content == again.content and json.loads(first.content)
    assert first.options["schema"] == as_schema(Ticket).key and first.repairs == 0
    other = await llm.generate("Another ticket", schema=TICKET_DICT)
    assert isinstance(other.parsed, dict) and 10 <= other.parsed["count"] <= 12
    plain = await llm.generate("no schema")
    assert plain.parsed is None


def test_the_sync_facade_takes_schema_too() -> None:
    from nbinfra.llm.sync import SyncLLM

    llm = SyncLLM(fake())
    response = llm.generate("a ticket", schema=Ticket)
    assert isinstance(response.parsed, Ticket)
    assert llm("a dict", schema=TICKET_DICT).parsed["priority"] in ("low", "high")
    with pytest.raises(InvalidOptionError, match="not with streams"):
        list(llm.stream("x", schema=Ticket))


async def test_streams_refuse_a_schema_in_one_line() -> None:
    llm = fake()
    with pytest.raises(InvalidOptionError, match=r"schema= works with generate\(\)") as info:
        async for _ in llm.stream_generate("x", schema=Ticket):
            pass
    assert "\n" not in str(info.value)


async def test_repair_sends_the_answer_back_with_the_error_quoted() -> None:
    good = json.dumps(example(Ticket.model_json_schema()))
    bad = json.dumps({**json.loads(good), "priority": "urgent"})
    llm = fake(responses=[bad, good])
    response = await llm.generate("ticket please", schema=Ticket)
    assert isinstance(response.parsed, Ticket) and response.repairs == 1
    assert len(llm.calls) == 2
    second = llm.calls[1][0]
    assert [m.role for m in second] == ["user", "assistant", "user"]
    assert second[1].content == bad
    assert "priority: Input should be 'low', 'medium' or 'high'" in second[2].content


# -- OpenAI, Azure, Groq over their wire servers ----------------------------------------
@pytest.mark.parametrize("kind", ["openai", "azure"])
async def test_openai_and_azure_send_strict_json_schema(
    kind: str, wire_factory: Callable[..., LLMWireServer]
) -> None:
    server = wire_factory(kind)
    llm = provider_for(kind, server)
    response = await llm.generate("a ticket", schema=Ticket)
    body = server.last("chat/completions").json()
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "Ticket",
            "schema": as_schema(Ticket).strict_schema,
            "strict": True,
        },
    }
    assert isinstance(response.parsed, Ticket)
    assert (
        response.content
        == server.formats[kind]
        .chat(  # what the server answered
            server.schema_reply(as_schema(Ticket).strict_schema, server.last("chat")),
            server.last("chat"),
            False,
        )
        .body["choices"][0]["message"]["content"]
    )
    await llm.aclose()


async def test_groq_uses_json_mode_with_the_schema_in_a_system_message(
    wire_factory: Callable[..., LLMWireServer],
) -> None:
    server = wire_factory("groq")
    server.push(Reply(json.dumps({"title": "abc", "priority": "high", "count": 10})))
    llm = provider_for("groq", server)
    response = await llm.generate("a ticket", schema=TICKET_DICT)
    body = server.last("chat/completions").json()
    assert body["response_format"] == {"type": "json_object"}
    system = body["messages"][0]
    assert (
        system["role"] == "system"
        and json.dumps(TICKET_DICT, separators=(",", ":")) in (system["content"])
    )
    assert response.parsed == {"title": "abc", "priority": "high", "count": 10}
    await llm.aclose()


async def test_repair_succeeds_after_a_broken_first_answer(
    wire_factory: Callable[..., LLMWireServer],
) -> None:
    server = wire_factory("openai")
    server.broken_schema_answers = 1
    llm = provider_for("openai", server)
    response = await llm.generate("a ticket", schema=Ticket)
    chats = [r for r in server.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 2 and server.schema_answers == 2
    first, second = (r.json()["messages"] for r in chats)
    assert second[: len(first)] == first
    assert second[-2]["role"] == "assistant" and "title" not in json.loads(second[-2]["content"])
    assert second[-1]["role"] == "user"
    assert "title: a required field is missing" in second[-1]["content"]
    assert isinstance(response.parsed, Ticket) and response.repairs == 1
    assert response.usage.input_tokens == 20 and response.usage.output_tokens == 14  # 2 rounds
    await llm.aclose()


async def test_repair_gives_up_after_n_rounds_with_one_line(
    wire_factory: Callable[..., LLMWireServer],
) -> None:
    server = wire_factory("openai")
    server.broken_schema_answers = 5
    llm = provider_for("openai", server)
    with pytest.raises(SchemaError) as info:
        await llm.generate("a ticket", schema=Ticket)
    error = info.value
    assert server.schema_answers == 3  # the answer and repair=2 rounds
    assert str(error) == (
        "openai:gpt-4o-mini answered 3 times without matching Ticket: title: a required "
        "field is missing; loosen the schema, raise repair= or try another model (the raw "
        "answer is error.raw)."
    )
    assert error.schema == "Ticket" and "title" not in json.loads(error.raw)
    assert error.response is not None and error.response.repairs == 2
    server.broken_schema_answers = 5
    with pytest.raises(SchemaError, match="answered once without"):
        await llm.generate("a ticket", schema=Ticket, repair=0)
    assert server.schema_answers == 4
    # the settings' repair applies when the call does not say
    llm.settings = replace(llm.settings, repair=1)
    with pytest.raises(SchemaError, match="answered 2 times"):
        await llm.generate("a ticket", schema=Ticket)
    await llm.aclose()


async def test_the_store_key_includes_the_schema(
    wire_factory: Callable[..., LLMWireServer],
) -> None:
    class TicketV2(BaseModel):
        title: str
        severity: int

    server = wire_factory("openai")
    store = ResponseStore("cache", MemoryKeyValueStore())
    llm = provider_for("openai", server, response_store=store)
    first = await llm.generate("a ticket", schema=Ticket)
    again = await llm.generate("a ticket", schema=Ticket)
    assert again.cached and again.parsed == first.parsed and len(server.requests) == 1
    changed = await llm.generate("a ticket", schema=TicketV2)
    assert not changed.cached and isinstance(changed.parsed, TicketV2)
    assert len(server.requests) == 2
    text = await llm.generate("a ticket")  # no schema: another key again
    assert not text.cached and len(server.requests) == 3
    await llm.aclose()


def test_schema_modules_import_no_pydantic_or_jsonschema() -> None:
    from tests.test_package import fresh_modules

    loaded = fresh_modules(
        "import nbinfra, nbinfra.llm.schema, nbinfra.llm.schema_example, nbinfra.llm.fake"
    )
    top = {name.split(".")[0] for name in loaded}
    assert not top & {"pydantic", "jsonschema", "openai"}, sorted(top)


async def test_a_repaired_call_is_stored_once_and_replayed_parsed(
    wire_factory: Callable[..., LLMWireServer],
) -> None:
    server = wire_factory("openai")
    server.broken_schema_answers = 1
    kv = MemoryKeyValueStore()
    recorder = provider_for("openai", server, response_store=ResponseStore("record", kv))
    first = await recorder.generate("a ticket", schema=Ticket)
    assert first.repairs == 1 and len(kv) == 1  # one entry: the validated answer
    replayer = provider_for("openai", server, response_store=ResponseStore("replay", kv))
    again = await replayer.generate("a ticket", schema=Ticket)
    assert again.cached and again.parsed == first.parsed and len(server.requests) == 2
    await recorder.aclose()
    await replayer.aclose()


async def test_a_stored_answer_the_model_now_refuses_is_asked_again() -> None:
    from pydantic import field_validator

    class Strict(BaseModel):
        title: str

        @field_validator("title")
        @classmethod
        def _no_numbers(cls, value: str) -> str:
            if any(c.isdigit() for c in value):
                raise ValueError("no digits")
            return value

    class Loose(BaseModel):
        title: str

    Strict.__name__ = Loose.__name__ = "T"  # the same name and JSON schema: the same key
    assert as_schema(Strict).key == as_schema(Loose).key
    kv = MemoryKeyValueStore()
    llm = fake(response_store=ResponseStore("cache", kv), responses=['{"title": "v2"}'])
    assert (await llm.generate("t", schema=Loose)).parsed.title == "v2"
    llm.script('{"title": "two"}')
    fixed = await llm.generate("t", schema=Strict)
    assert fixed.parsed.title == "two" and not fixed.cached and len(llm.calls) == 2
    replay = fake(response_store=ResponseStore("replay", kv))
    assert (await replay.generate("t", schema=Strict)).parsed.title == "two"
    kv2 = MemoryKeyValueStore()
    await fake(response_store=ResponseStore("record", kv2), responses=['{"title": "v2"}']).generate(
        "t", schema=Loose
    )
    with pytest.raises(SchemaError, match="title: Value error, no digits"):
        await fake(response_store=ResponseStore("replay", kv2)).generate("t", schema=Strict)
