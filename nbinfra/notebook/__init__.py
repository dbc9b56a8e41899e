"""IPython extension: ``%load_ext nbinfra`` registers ``%llm``, ``%cache``, ``%conn`` and more.

The magics are ``%llm``/``%%llm``, ``%cache``, ``%conn``/``%%conn`` and ``%nbinfra reload``.

It also binds ``nbinfra`` in the user namespace when that name is free, so
``nbinfra.widgets.results_table(_conn)`` works without an ``import nbinfra`` cell.

Loading imports only IPython pieces that are already loaded in a running shell plus
nbinfra's own small modules; providers, drivers, pandas and ipywidgets load on first use.
"""

from __future__ import annotations

import re
import sys
from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]

_KEY = "_nbinfra_magics"
_BOUND = "_nbinfra_bound_package"  # set when load_ipython_extension bound the name
_NAME = "nbinfra"
_MAGICS = (
    ("line", "llm"),
    ("cell", "llm"),
    ("line", "cache"),
    ("line", "conn"),
    ("cell", "conn"),
    ("line", "nbinfra"),
)


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics, display formatters and completers (a second load is a no-op)."""
    if getattr(ipython, _KEY, None) is not None:
        return
    from nbinfra.notebook import display, questions
    from nbinfra.notebook.magics import NbinfraMagics
    from nbinfra.notebook.nbinfra_magic import AdminMagics

    magics = NbinfraMagics(shell=ipython)
    ipython.register_magics(magics)
    ipython.register_magics(AdminMagics(shell=ipython))
    if magics not in ipython.configurables:
        ipython.configurables.append(magics)
    display.register(ipython, limit=lambda: magics.display_limit)
    _register_completers(ipython, magics)
    questions.register(ipython)
    _bind_package(ipython)
    from nbinfra import progress
    from nbinfra.notebook.progress_display import factory

    progress.set_display(factory(ipython))
    setattr(ipython, _KEY, magics)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove what ``load_ipython_extension`` added."""
    magics = getattr(ipython, _KEY, None)
    if magics is None:
        return
    from nbinfra.notebook import display, questions

    table = ipython.magics_manager.magics
    for kind, name in _MAGICS:
        table[kind].pop(name, None)
    registry = ipython.magics_manager.registry
    for key, value in list(registry.items()):
        if value is magics:
            registry.pop(key)
    registry.pop("AdminMagics", None)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)
    display.unregister(ipython)
    _unbind_package(ipython)
    _unregister_completers(ipython)
    questions.unregister(ipython)
    from nbinfra import progress

    progress.set_display(None)
    delattr(ipython, _KEY)


def _bind_package(ipython: Any) -> None:
    """``nbinfra`` in the user namespace, hidden from ``%who``, unless the name is taken."""
    ns = ipython.user_ns
    if _NAME in ns:
        return
    package = sys.modules[_NAME]
    ns[_NAME] = package
    ipython.user_ns_hidden[_NAME] = package
    setattr(ipython, _BOUND, package)


def _unbind_package(ipython: Any) -> None:
    """Remove the binding ``_bind_package`` made, if the user has not rebound the name."""
    package = getattr(ipython, _BOUND, None)
    if package is None:
        return
    delattr(ipython, _BOUND)
    if ipython.user_ns.get(_NAME) is package:
        del ipython.user_ns[_NAME]
    if ipython.user_ns_hidden.get(_NAME) is package:
        del ipython.user_ns_hidden[_NAME]


class _Matcher:
    """IPython completion matcher (API v2) for the magics' lines; ``complete`` does the work.

    Cheap on every other line (one regular expression), and imports nothing until Tab is
    pressed on a magic's line.
    """

    matcher_api_version = 2
    matcher_priority = 1.0  # before Jedi and file names, which it suppresses on a match
    matcher_identifier = "nbinfra.magics"

    def __init__(self, magics: Any) -> None:
        self.magics = magics
        self.__qualname__ = self.matcher_identifier  # IPython reads it, even when unused

    def __call__(self, context: Any) -> dict[str, Any]:
        text: str = context.text_until_cursor
        if context.cursor_line != 0 and _CONN_CELL.match(context.full_text):
            from nbinfra.notebook import complete

            return complete.match_cell(self.magics, context)
        found = _MAGIC_LINE.match(text)
        if found is None or (found.group(1) == "%%" and context.cursor_line != 0):
            return {"completions": [], "suppress": False}
        from nbinfra.notebook import complete

        return complete.match(self.magics, context)


_MAGIC_LINE = re.compile(r"\s*(%%?)(?:llm|cache|conn)\s")
_CONN_CELL = re.compile(r"\s*%%conn\b")


def _register_completers(ipython: Any, magics: Any) -> None:
    completer = getattr(ipython, "Completer", None)
    if completer is not None:
        completer.custom_matchers.append(_Matcher(magics))


def _unregister_completers(ipython: Any) -> None:
    completer = getattr(ipython, "Completer", None)
    if completer is not None:
        completer.custom_matchers[:] = [
            m for m in completer.custom_matchers if not isinstance(m, _Matcher)
        ]
