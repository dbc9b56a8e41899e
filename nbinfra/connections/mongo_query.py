"""MongoDB queries as text or objects, and documents as tables (no driver needed to import).

``parse_query`` reads ``collection {filter}``, ``[pipeline]`` or Python objects (Extended
JSON through ``bson.json_util``); ``documents_table`` turns documents into a ``QueryResult``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from nbinfra.connections.types import QueryResult
from nbinfra.errors import QueryError

__all__ = ["Documents", "documents_table", "parse_query", "update_document", "update_summary"]

_PREFIXED = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(.*)$", re.DOTALL)


class Documents:
    """Keeps the raw documents of a query (``result.native.documents``)."""

    def __init__(self, documents: list[dict[str, Any]]) -> None:
        self.documents = documents


def parse_query(query: Any, collection: str | None = None) -> tuple[str | None, Any]:
    """``(collection, filter_or_pipeline)`` from text, a dict or a list."""
    if isinstance(query, Mapping):
        spec = dict(query)
        if "collection" in spec and ("filter" in spec or "pipeline" in spec):
            body = spec.get("pipeline", spec.get("filter")) or {}
            return str(spec["collection"]), body
        return collection, spec
    if isinstance(query, list):
        return collection, query
    if not isinstance(query, str):
        raise QueryError(
            f"A MongoDB query is a JSON filter or pipeline, not {type(query).__name__}."
        )
    text = query.strip()
    if not text.startswith(("{", "[")):
        match = _PREFIXED.match(text)
        if match is None:
            raise QueryError("Write a MongoDB query as 'collection {filter}' or '[pipeline]'.")
        collection, text = match.group(1), match.group(2).strip()
        if not text:
            return collection, {}
    from bson import json_util

    try:
        body = json_util.loads(text)
    except ValueError as exc:
        raise QueryError(f"The MongoDB query is not valid JSON: {exc}") from exc
    if not isinstance(body, (dict, list)):
        raise QueryError("A MongoDB query is a JSON object (filter) or array (pipeline).")
    return collection, body


def documents_table(documents: Sequence[Mapping[str, Any]]) -> QueryResult:
    """Documents as a table: columns in first-seen order, ObjectIds as text."""
    columns: dict[str, None] = {}
    for doc in documents:
        for key in doc:
            columns.setdefault(str(key), None)
    names = list(columns)
    rows = [tuple(_cell(doc.get(name)) for name in names) for doc in documents]
    return QueryResult(columns=names, rows=rows)


def _cell(value: Any) -> Any:
    if type(value).__name__ == "ObjectId":
        return str(value)
    return value


def update_document(update: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Any:
    if isinstance(update, Mapping):
        if not any(str(k).startswith("$") for k in update):
            raise QueryError(
                "An update needs operators such as {'$set': {...}}; to replace a whole "
                "document use replace semantics explicitly."
            )
        return dict(update)
    return [dict(stage) for stage in update]


def update_summary(answer: Any) -> dict[str, Any]:
    return {
        "matched": int(answer.matched_count),
        "modified": int(answer.modified_count),
        "upserted_id": answer.upserted_id,
    }
