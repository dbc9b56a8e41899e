"""Structured output: ``generate(prompt, schema=Ticket)`` answers with a ``Ticket``.

``schema=`` takes a pydantic model class (anything with ``model_json_schema``, so pydantic
is imported only when one is given) or a JSON-schema dict describing an object. This
module holds what every provider shares:

- ``OutputSchema``: the schema's name, its JSON schema, a digest (part of the response
  store's key, so a changed schema is never served an old answer) and OpenAI's strict
  form (``strict_schema``: ``additionalProperties: false`` and every property required
  on every object, ``$ref`` with siblings inlined, single ``allOf`` flattened);
- ``OutputSchema.parse``: the answer's text (code fences stripped) validated into the
  model (``model_validate_json``) or, for a dict schema, checked with ``jsonschema``;
  a mismatch raises ``SchemaMismatch`` with the first error as one line;
- the repair turn (``repair_messages``): the previous answer and the error, quoted, so
  the model can correct itself;
- ``instruction``: the schema as text, for providers whose JSON mode takes no schema.

How each provider sends the schema (OpenAI's ``response_format`` json_schema, Anthropic's
forced tool, Gemini's ``response_schema``, Ollama's ``format``, Hugging Face's
``response_format``) lives on the provider classes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbinfra.errors import InvalidOptionError, MissingDependencyError
from nbinfra.llm.types import Message

__all__ = [
    "OutputSchema",
    "SchemaMismatch",
    "as_schema",
    "instruction",
    "repair_messages",
    "strict_schema",
]

_FENCE = re.compile(r"^\s*```[\w+-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)
_NAME = re.compile(r"[^A-Za-z0-9_-]+")


class SchemaMismatch(ValueError):
    """An answer that does not match its schema; ``detail`` is the first error, one line."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, eq=False)
class OutputSchema:
    """A checked ``schema=``: its name, JSON schema and, for a pydantic class, the class."""

    name: str
    json_schema: dict[str, Any]
    model: Any = None  # the pydantic model class, or None for a dict schema
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON schema."""
        found = self._cache.get("digest")
        if found is None:
            text = json.dumps(self.json_schema, sort_keys=True, separators=(",", ":"))
            found = self._cache["digest"] = hashlib.sha256(text.encode()).hexdigest()
        return str(found)

    @property
    def key(self) -> str:
        """What the response store and ``response.options`` see: ``Name:digest``."""
        return f"{self.name}:{self.digest[:16]}"

    @property
    def strict_schema(self) -> dict[str, Any]:
        """The schema in the form OpenAI's strict mode requires (see ``strict_schema``)."""
        found = self._cache.get("strict")
        if found is None:
            found = self._cache["strict"] = strict_schema(self.json_schema)
        return dict(found)

    def parse(self, text: str) -> Any:
        """The answer as a model instance (or a dict); ``SchemaMismatch`` when it is not."""
        body = _unfence(text)
        if self.model is not None:
            return _parse_model(self.model, body)
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            raise SchemaMismatch(
                f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            ) from None
        problem = self._validator_error(data)
        if problem is not None:
            raise SchemaMismatch(problem)
        return data

    def _validator_error(self, data: Any) -> str | None:
        validator = self._cache.get("validator")
        if validator is None:
            validator = self._cache["validator"] = _validator(self.json_schema)
        from jsonschema.exceptions import best_match

        error = best_match(validator.iter_errors(data))
        if error is None:
            return None
        where = ".".join(str(p) for p in error.absolute_path)
        message = " ".join(error.message.split())
        if len(message) > 200:
            message = message[:197] + "..."
        return f"{where}: {message}" if where else message

    def __repr__(self) -> str:
        kind = "pydantic" if self.model is not None else "JSON schema"
        return f"<OutputSchema {self.name} ({kind}) {self.digest[:12]}>"


def as_schema(value: Any) -> OutputSchema:
    """``value`` (a pydantic model class, a JSON-schema dict, or an ``OutputSchema``) checked."""
    if isinstance(value, OutputSchema):
        return value
    make = getattr(value, "model_json_schema", None)
    if isinstance(value, type) and callable(make):
        schema = make()
        name = value.__name__
        model: Any = value
    elif isinstance(value, Mapping):
        schema = json.loads(json.dumps(value))  # a private, JSON-only copy
        name = str(schema.get("title") or "response")
        model = None
    else:
        raise InvalidOptionError(
            f"schema must be a pydantic model class or a JSON-schema dict, got "
            f"{type(value).__name__}."
        )
    if not _is_object(schema):
        raise InvalidOptionError(
            f"schema {name} must describe a JSON object (type 'object'); wrap a list or a "
            "value in an object's field."
        )
    if model is None:
        _validator(schema)  # a broken schema fails now, before any request
    return OutputSchema(_NAME.sub("_", name).strip("_")[:64] or "response", schema, model)


def _is_object(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "object" or (kind is None and "properties" in schema)


def _validator(schema: dict[str, Any]) -> Any:
    try:
        from jsonschema import validators
        from jsonschema.exceptions import SchemaError as BadSchema
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            "Checking answers against a JSON-schema dict needs jsonschema: "
            "pip install 'nbinfra[schema]' (or pass a pydantic model class).",
            hint="pip install 'nbinfra[schema]'",
        ) from exc
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except BadSchema as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise InvalidOptionError(
            f"schema is not a valid JSON schema ({exc.message}"
            f"{f' at {where}' if where else ''}); fix it or pass a pydantic model class."
        ) from None
    return cls(schema)


def _parse_model(model: Any, body: str) -> Any:
    from pydantic import ValidationError

    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = " ".join(str(first.get("msg", "")).split())
        if first.get("type") == "missing":
            message = "a required field is missing"
        count = exc.error_count()
        more = f" (and {count - 1} more)" if count > 1 else ""
        raise SchemaMismatch(f"{where}: {message}{more}" if where else f"{message}{more}") from None


def _unfence(text: str) -> str:
    match = _FENCE.match(text)
    return match.group(1) if match else text.strip()


def instruction(schema: OutputSchema) -> str:
    """The schema as an instruction, for a JSON mode that takes no schema itself."""
    body = json.dumps(schema.json_schema, separators=(",", ":"))
    return (
        f"Answer with one JSON object and nothing else. It must match this JSON schema "
        f"({schema.name}): {body}"
    )


def repair_messages(
    messages: Sequence[Message], answer: str, detail: str, schema: OutputSchema
) -> list[Message]:
    """The conversation for a repair round: the bad answer, then what was wrong with it."""
    return [
        *messages,
        Message("assistant", answer),
        Message(
            "user",
            f"That answer does not match the JSON schema {schema.name}: {detail}. "
            "Reply again with only the corrected JSON object.",
        ),
    ]


# -- OpenAI's strict mode ----------------------------------------------------------------
def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` as OpenAI's strict structured outputs require it.

    On every object: ``additionalProperties: false`` (unless the schema says otherwise,
    which the API then refuses) and every property listed in ``required``. A ``$ref``
    with sibling keys is inlined, a one-element ``allOf`` flattened, ``default: null``
    dropped. What the API accepts beyond that is its to say.
    """
    root: dict[str, Any] = json.loads(json.dumps(schema))
    strict: dict[str, Any] = _strict(root, root)
    return strict


def _strict(node: Any, root: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_strict(item, root) for item in node]
    if not isinstance(node, dict):
        return node
    for defs in ("$defs", "definitions"):
        if isinstance(node.get(defs), dict):
            node[defs] = {k: _strict(v, root) for k, v in node[defs].items()}
    if "$ref" in node and len(node) > 1:
        target = _pointer(root, str(node.pop("$ref")))
        node = {**target, **node}
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        node.pop("allOf")
        node = {**_strict(all_of[0], root), **node}
    if node.get("default", 0) is None:
        node.pop("default")
    kind = node.get("type")
    if kind == "object" or (kind is None and "properties" in node):
        node.setdefault("additionalProperties", False)
        props = node.get("properties")
        if isinstance(props, dict):
            node["properties"] = {k: _strict(v, root) for k, v in props.items()}
            node["required"] = list(props)
    for key in ("items", "anyOf", "oneOf", "allOf", "prefixItems", "not"):
        if key in node:
            node[key] = _strict(node[key], root)
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _strict(node["additionalProperties"], root)
    return node


def _pointer(root: Mapping[str, Any], ref: str) -> dict[str, Any]:
    """The schema a local ``#/...`` reference points at."""
    if not ref.startswith("#"):
        raise InvalidOptionError(f"schema uses a remote $ref ({ref}); inline it or use $defs.")
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/") if ref.strip("#/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            raise InvalidOptionError(f"schema's $ref {ref} points at nothing.")
        node = node[part]
    if not isinstance(node, Mapping):
        raise InvalidOptionError(f"schema's $ref {ref} is not a schema.")
    return dict(node)
