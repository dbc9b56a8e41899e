"""Values and input checks shared by the vector stores (no driver, no numpy at import).

``SearchHit``, ``VectorRecord``, ``CollectionInfo``; the portable filter dialect
(``parse_filter`` -> ``Condition`` terms); ids, vectors and payloads checked before any
write (``normalise_ids``, ``as_matrix``, ``as_vector``); search hits as a ``QueryResult``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from nbinfra.connections.types import QueryResult

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DISTANCES",
    "CollectionInfo",
    "Condition",
    "Distance",
    "Ids",
    "Progress",
    "SearchHit",
    "VectorRecord",
    "as_matrix",
    "as_vector",
    "check_unique",
    "hits_to_result",
    "is_json",
    "normalise_ids",
    "parse_filter",
    "portable_name",
]

Distance = Literal["cosine", "dot", "euclid"]
DISTANCES: tuple[str, ...] = ("cosine", "dot", "euclid")
Progress = Callable[[int, int], object]
Ids = Sequence[str | int]

_OPS = ("$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte")
_SCALARS = (str, int, float, bool)
_PORTABLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$")


def portable_name(name: str) -> bool:
    """True for names every store accepts: 3-63 of ``[A-Za-z0-9._-]``, alnum at both ends."""
    return bool(_PORTABLE_NAME.match(name))


@dataclass(frozen=True)
class SearchHit:
    """One search result: ``score`` is higher-is-better (cosine similarity by default)."""

    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


_new = object.__new__


def make_hit(id: str, score: float, payload: dict[str, Any]) -> SearchHit:
    """``SearchHit(id, score, payload)`` for the stores' search loops.

    A search builds ``top_k`` hits; the frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__`` and costs three times this. Same object, same
    equality and hash.
    """
    hit = _new(SearchHit)
    fields = hit.__dict__
    fields["id"] = id
    fields["score"] = score
    fields["payload"] = payload
    return hit


@dataclass(frozen=True)
class VectorRecord:
    """A stored point as returned by ``get``; ``vector`` is ``None`` unless asked for."""

    id: str
    payload: dict[str, Any] = field(default_factory=dict)
    vector: list[float] | None = None


@dataclass(frozen=True)
class Condition:
    """One filter term: ``key op value`` with ``op`` in ``eq ne in nin gt gte lt lte``."""

    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    dim: int
    distance: str


def parse_filter(filter: Mapping[str, Any] | None) -> list[Condition]:
    """Check a portable filter and flatten it into ANDed ``Condition`` terms."""
    if filter is None:
        return []
    if not isinstance(filter, Mapping):
        raise ValueError(
            f"A filter is a mapping like {{'lang': 'en', 'year': {{'$gte': 2020}}}}, "
            f"got {type(filter).__name__}."
        )
    conditions: list[Condition] = []
    for key, spec in filter.items():
        if not isinstance(key, str) or not key or key.startswith("$"):
            raise ValueError(
                f"Filter keys are payload field names, got {key!r}; operators go inside: "
                "{'year': {'$gte': 2020}}."
            )
        terms = spec.items() if isinstance(spec, Mapping) else [("$eq", spec)]
        for op, value in terms:
            conditions.append(_condition(key, op, value))
    return conditions


def _condition(key: str, op: Any, value: Any) -> Condition:
    if op not in _OPS:
        allowed = ", ".join(_OPS)
        raise ValueError(f"Unknown filter operator {op!r} on '{key}'; use one of {allowed}.")
    name = op[1:]
    if name in ("in", "nin"):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
            raise ValueError(f"'{key}': {op} takes a non-empty list of values, got {value!r}.")
        if not all(isinstance(v, _SCALARS) for v in value):
            raise ValueError(f"'{key}': {op} values must be strings, numbers or booleans.")
        return Condition(key, name, list(value))
    if name in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"'{key}': {op} takes a number, got {value!r}.")
        return Condition(key, name, value)
    if not isinstance(value, _SCALARS):
        raise ValueError(
            f"'{key}': {op} takes a string, number or boolean, got {type(value).__name__}."
        )
    return Condition(key, name, value)


def normalise_ids(ids: Ids) -> list[str]:
    """Ids as strings; integers become their decimal form."""
    if isinstance(ids, (str, bytes)):
        raise TypeError("ids is a list of ids; wrap a single id in a list.")
    out: list[str] = []
    for i, item in enumerate(ids):
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise TypeError(f"ids must be strings or integers; item {i} is {item!r}.")
        text = str(item)
        if not text:
            raise ValueError(f"ids must not be empty (item {i}).")
        out.append(text)
    return out


def check_unique(keys: list[str]) -> None:
    if len(set(keys)) == len(keys):
        return
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"ids must be unique; '{key}' appears more than once.")
        seen.add(key)


def is_json(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, _SCALARS):
        return not (isinstance(value, float) and not math.isfinite(value))
    if depth > 32:
        return False
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and is_json(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(is_json(v, depth + 1) for v in value)
    return False


def as_matrix(vectors: Any, dim: int, distance: str, what: str = "vectors") -> np.ndarray[Any, Any]:
    """``vectors`` as a float32 matrix, checked: shape, finite, non-zero for cosine."""
    import numpy as np

    try:
        matrix = np.asarray(vectors, dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{what} must be a list of equal-length lists of numbers (or a 2-D array)."
        ) from exc
    if matrix.ndim != 2:
        raise ValueError(f"{what} must be 2-D (one row per id), got shape {matrix.shape}.")
    if matrix.shape[1] != dim:
        raise ValueError(f"{what} have {matrix.shape[1]} dimensions; the collection has {dim}.")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{what} contain NaN or infinite values.")
    if distance == "cosine" and matrix.shape[0]:
        norms = np.einsum("ij,ij->i", matrix, matrix)
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            raise ValueError(
                f"{what}: row {int(zero[0])} is all zeros; cosine similarity is undefined for it."
            )
    return matrix


def as_vector(vector: Any, dim: int, distance: str) -> np.ndarray[Any, Any]:
    """One query vector as float32, checked like ``as_matrix`` (cheap: one dot product)."""
    import numpy as np

    try:
        row = np.asarray(vector, dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise ValueError("the query vector must be a list of numbers (or a 1-D array).") from exc
    if row.ndim != 1:
        raise ValueError(f"the query vector must be 1-D, got shape {row.shape}.")
    if row.shape[0] != dim:
        raise ValueError(
            f"the query vector has {row.shape[0]} dimensions; the collection has {dim}."
        )
    with np.errstate(over="ignore", invalid="ignore"):
        squared = float(row @ row)
    if not math.isfinite(squared) and not np.isfinite(row).all():
        raise ValueError("the query vector contains NaN or infinite values.")
    if squared == 0.0 and distance == "cosine":
        raise ValueError("the query vector is all zeros; cosine similarity is undefined for it.")
    return row


def hits_to_result(hits: list[SearchHit], elapsed: float, statement: str) -> QueryResult:
    """Search hits as a table: ``id``, ``score``, then payload keys in order of appearance."""
    keys: dict[str, None] = {}
    for hit in hits:
        for key in hit.payload:
            keys.setdefault(key, None)
    columns = ["id", "score", *keys]
    rows = [(hit.id, hit.score, *(hit.payload.get(k) for k in keys)) for hit in hits]
    return QueryResult(columns=columns, rows=rows, elapsed=elapsed, statement=statement)
