"""``%%llm -f json --schema NAME`` in a real IPython shell: the fake provider and the OpenAI
SDK on a local wire server."""

from __future__ import annotations

import json

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from nbinfra.errors import SchemaError
from nbinfra.session import Session
from nbinfra.testing_llm import LLMWireServer
from tests.notebook import test_llm_magic
from tests.notebook.conftest import TestingShell

# The same server and session as test_llm_magic (the OpenAI SDK on a wire server, fake default).
wire = test_llm_magic.wire
llm_session = test_llm_magic.llm_session

TICKET = """
import enum
from pydantic import BaseModel

class Priority(str, enum.Enum):
    low = "low"
    high = "high"

class Person(BaseModel):
    name: str

class Ticket(BaseModel):
    title: str
    priority: Priority
    tags: list[str]
    owner: Person
    note: str | None = None
"""


def test_schema_binds_an_instance_of_the_model(
    ip: TestingShell, llm_session: Session, wire: LLMWireServer
) -> None:
    ip.run_cell(TICKET)
    with capture_output():
        value = ip.cell("%%llm -p openai -f json --schema Ticket -o t\nFile a ticket about {topic}")
    ticket = ip.user_ns["t"]
    assert type(ticket) is ip.user_ns["Ticket"]  # the notebook's own class
    assert ticket.owner.name and ticket.priority.value in ("low", "high")
    assert value == ticket  # the cell's value is the instance too
    assert ip.user_ns["_llm"].parsed is ticket
    body = wire.last("chat").json()
    assert "stream" not in body  # a schema's answer is not streamed
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "Ticket"
    assert body["messages"][-1]["content"] == "File a ticket about {topic}"  # {topic}: undefined


def test_schema_without_f_json_and_a_dict_schema_on_the_fake(
    ip: TestingShell, llm_session: Session
) -> None:
    ip.user_ns["shape"] = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}, "unit": {"enum": ["s", "ms"]}},
        "required": ["answer", "unit"],
    }
    with capture_output():
        value = ip.cell("%%llm --schema shape -o r\nHow long?")
    assert isinstance(value, dict) and value == ip.user_ns["r"]
    assert isinstance(value["answer"], int) and value["unit"] in ("s", "ms")
    assert ip.user_ns["_llm"].provider == "fake"


def test_repair_in_the_magic_and_giving_up_keeps_the_answer(
    ip: TestingShell, llm_session: Session, wire: LLMWireServer
) -> None:
    ip.run_cell(TICKET)
    wire.broken_schema_answers = 1
    with capture_output():
        ip.cell("%%llm -p openai --schema Ticket -o t\nA ticket")
    assert wire.schema_answers == 2 and ip.user_ns["_llm"].repairs == 1
    wire.broken_schema_answers = 9
    with capture_output(), pytest.raises(SchemaError) as info:
        ip.cell("%%llm -p openai --schema Ticket\nA ticket")
    assert "\n" not in str(info.value) and "Ticket: title:" in str(info.value)
    assert info.value._render_traceback_() == [f"SchemaError: {info.value}"]
    assert "title" not in json.loads(ip.user_ns["_llm"].content)  # the last answer is kept


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--schema Missing", "no variable 'Missing'"),
        ("--schema Ticket -f code", "--schema answers JSON; drop -f code"),
        ("--schema 'Ticket()'", "takes a variable name"),
        ("--schema Ticket.nope", "Ticket has no attribute 'nope'"),
        ("--schema number", "must be a pydantic model class or a JSON-schema dict"),
    ],
)
def test_bad_schema_names_are_usage_errors(
    ip: TestingShell, llm_session: Session, line: str, message: str
) -> None:
    ip.run_cell(TICKET)
    ip.user_ns["number"] = 3
    with pytest.raises(UsageError, match=message):
        ip.cell(f"%%llm {line}\nA ticket")
    assert "_llm" not in ip.user_ns  # nothing was sent
