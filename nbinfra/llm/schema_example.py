"""A deterministic value that satisfies a JSON schema: what the offline ``fake`` provider
and the test wire servers answer when a request carries a schema.

``example(schema, seed)`` walks the schema: local ``$ref`` / ``$defs``, ``const``,
``enum`` (a choice hashed from the seed and the field's path, so the same prompt gets
the same answer and different fields differ), ``anyOf``/``oneOf`` (the first non-null
branch), ``allOf`` (merged), objects (every property, so OpenAI's strict form is met),
arrays (``minItems``, at least one item, at most ``maxItems``), strings (common
``format``\\ s, ``minLength``/``maxLength``), integers and numbers within their bounds,
booleans and null. Gemini's upper-case type names (``OBJECT``) are understood too.
Pure Python.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = ["broken_example", "example"]

_MAX_DEPTH = 6  # below this, optional structure is left empty (recursive schemas end)
_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "duration": "P1D",
}


def example(schema: Mapping[str, Any], seed: str = "") -> Any:
    """A value valid against ``schema``, the same for the same schema and seed."""
    return _Walker(schema, seed).value(schema, "$", 0)


def broken_example(schema: Mapping[str, Any], seed: str = "") -> Any:
    """``example`` without its first required property: valid JSON that does not match."""
    value = example(schema, seed)
    required = schema.get("required") or []
    if isinstance(value, dict) and required:
        value.pop(required[0], None)
        return value
    return {"unexpected": True} if value != {"unexpected": True} else {}


class _Walker:
    def __init__(self, root: Mapping[str, Any], seed: str) -> None:
        self.root = root
        self.seed = seed

    def pick(self, path: str, n: int) -> int:
        digest = hashlib.sha256(f"{self.seed}|{path}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % n

    def resolve(self, node: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(node)
        seen = 0
        while "$ref" in out and seen < 32:
            seen += 1
            target: Any = self.root
            for part in str(out.pop("$ref")).lstrip("#").strip("/").split("/"):
                if part:
                    target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
            out = {**dict(target), **out}
        all_of = out.pop("allOf", None)
        if isinstance(all_of, list):
            merged: dict[str, Any] = {}
            for part in all_of:
                sub = self.resolve(part)
                props = {**merged.get("properties", {}), **sub.get("properties", {})}
                required = [*merged.get("required", []), *sub.get("required", [])]
                merged.update(sub)
                if props:
                    merged["properties"] = props
                if required:
                    merged["required"] = required
            out = {**merged, **out}
        return out

    def value(self, node: Any, path: str, depth: int) -> Any:
        if not isinstance(node, Mapping):
            return None if node is False else {}
        node = self.resolve(node)
        if "const" in node:
            return node["const"]
        enum = node.get("enum")
        if isinstance(enum, list) and enum:
            return enum[self.pick(path, len(enum))]
        for key in ("anyOf", "oneOf"):
            branches = node.get(key)
            if isinstance(branches, list) and branches:
                real = [b for b in branches if self._type(self.resolve(b)) != "null"]
                if not real or (depth >= _MAX_DEPTH and len(real) < len(branches)):
                    return None
                return self.value({**_without(node, key), **self.resolve(real[0])}, path, depth)
        kind = self._type(node)
        if kind == "object":
            return self._object(node, path, depth)
        if kind == "array":
            return self._array(node, path, depth)
        if kind == "integer":
            return int(self._number(node, path, integer=True))
        if kind == "number":
            return self._number(node, path, integer=False)
        if kind == "boolean":
            return self.pick(path, 2) == 0
        if kind == "null":
            return None
        return self._string(node, path)

    def _type(self, node: Mapping[str, Any]) -> str:
        kind = node.get("type")
        if isinstance(kind, list):
            real = [k for k in kind if str(k).lower() != "null"]
            kind = real[0] if real else "null"
        if kind is None:
            if "properties" in node or "additionalProperties" in node:
                return "object"
            if "items" in node or "prefixItems" in node:
                return "array"
            return "string"
        return str(kind).lower()

    def _object(self, node: Mapping[str, Any], path: str, depth: int) -> dict[str, Any]:
        props = node.get("properties") or {}
        required = set(node.get("required") or [])
        out: dict[str, Any] = {}
        for name, sub in props.items():
            if depth >= _MAX_DEPTH and name not in required:
                continue
            out[name] = self.value(sub, f"{path}.{name}", depth + 1)
        extra = node.get("additionalProperties")
        if not props and isinstance(extra, Mapping) and depth < _MAX_DEPTH:
            out["key"] = self.value(extra, f"{path}.key", depth + 1)
        return out

    def _array(self, node: Mapping[str, Any], path: str, depth: int) -> list[Any]:
        low = int(node.get("minItems") or 0)
        high = node.get("maxItems")
        count = max(low, 1 if depth < _MAX_DEPTH else 0)
        if isinstance(high, int):
            count = min(count, high)
        prefix = node.get("prefixItems") or []
        items = node.get("items", {})
        out: list[Any] = []
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            out.append(self.value(sub, f"{path}[{i}]", depth + 1))
        return out

    def _number(self, node: Mapping[str, Any], path: str, *, integer: bool) -> float:
        low = node.get("minimum")
        high = node.get("maximum")
        if node.get("exclusiveMinimum") is not None:
            low = node["exclusiveMinimum"] + (1 if integer else 0.5)
        if node.get("exclusiveMaximum") is not None:
            high = node["exclusiveMaximum"] - (1 if integer else 0.5)
        if low is None:
            low = 0 if high is None or high >= 0 else high - 10
        if high is None:
            high = low + 100
        if high < low:
            high = low
        span = int(high - low)
        value = low + (self.pick(path, span + 1) if span > 0 else 0)
        if not integer:
            value = float(value) if value + 0.5 > high else value + 0.5
        step = node.get("multipleOf")
        if isinstance(step, (int, float)) and step > 0:
            value = step * max(1, round(value / step))
        return float(value) if not integer else value

    def _string(self, node: Mapping[str, Any], path: str) -> str:
        fmt = str(node.get("format") or "").lower()
        if fmt == "uuid":
            text = str(
                uuid.UUID(bytes=hashlib.sha256(f"{self.seed}|{path}".encode()).digest()[:16])
            )
        elif fmt in _FORMATS:
            text = _FORMATS[fmt]
        else:
            name = path.rsplit(".", 1)[-1].split("[", 1)[0]
            name = "" if name == "$" else name.replace("_", " ")
            text = f"{name or 'text'} {self.pick(path, 1000):03d}"
        low = int(node.get("minLength") or 0)
        high = node.get("maxLength")
        if len(text) < low:
            text += "x" * (low - len(text))
        if isinstance(high, int):
            text = text[:high]
        return text


def _without(node: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k != key}
