"""YAML for configuration files: ``yaml.safe_load`` that refuses a key given twice.

PyYAML keeps the last of two equal keys in one mapping without a word, so a setting edited
in one place and left in another silently loses. ``load`` raises ``DuplicateKeyError``
naming the key and both lines instead. Merge keys (``<<: *base``) may still be overridden.
"""

from __future__ import annotations

from typing import IO, Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

__all__ = ["DuplicateKeyError", "load"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ConstructorError):
    """A mapping has the same key twice; ``first_line``/``line`` are 1-based."""

    def __init__(self, key: str, first: Node, again: Node) -> None:
        self.key = key
        self.first_line = first.start_mark.line + 1
        self.line = again.start_mark.line + 1
        super().__init__(
            None,
            None,
            f"duplicate key {key!r} at line {self.line} (first defined at line {self.first_line})",
            again.start_mark,
        )


class _UniqueKeyLoader(yaml.SafeLoader):
    """``SafeLoader`` whose mappings refuse duplicate keys."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[tuple[str, str], Node] = {}
        for key_node, _value in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            marker = (key_node.tag, key_node.value)
            if marker in seen:
                raise DuplicateKeyError(key_node.value, seen[marker], key_node)
            seen[marker] = key_node
        return super().construct_mapping(node, deep=deep)


def load(stream: str | bytes | IO[str] | IO[bytes]) -> Any:
    """Parse one YAML document like ``yaml.safe_load``; a repeated key is an error."""
    return yaml.load(stream, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
