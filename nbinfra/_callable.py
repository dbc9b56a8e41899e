"""Packages that are also functions: ``nbinfra.session()``, ``nbinfra.cache("ns")``.

``nbinfra.session`` must be importable as a module (``from nbinfra.session import
Session``) and callable as the facade. Once a submodule is imported, Python sets it as an
attribute of its parent package, hiding any function of the same name; making the module
object itself callable removes the ambiguity.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

__all__ = ["make_module_callable"]


class _CallableModule(types.ModuleType):
    __facade__: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__facade__(*args, **kwargs)


def make_module_callable(module_name: str, facade: Callable[..., Any]) -> None:
    """Calling module ``module_name`` now calls ``facade``."""
    module = sys.modules[module_name]
    module.__class__ = _CallableModule
    module.__facade__ = facade  # type: ignore[attr-defined]
