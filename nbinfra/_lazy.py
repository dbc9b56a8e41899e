"""Lazy package attributes (PEP 562): a name is imported on first access, then cached.

::

    _LAZY = {"SyncLLM": "nbinfra.llm.sync:SyncLLM", "widgets": "nbinfra.notebook.widgets"}
    __getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    module_name: str, table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for module ``module_name``.

    ``table`` maps a name to ``"package.module:attribute"``, or to ``"package.module"``
    for the module itself. The value found is stored in the module's namespace, so only
    the first access goes through ``__getattr__``.
    """
    namespace = vars(sys.modules[module_name])

    def __getattr__(name: str) -> Any:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        path, _, attribute = target.partition(":")
        module = importlib.import_module(path)
        value = getattr(module, attribute) if attribute else module
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
