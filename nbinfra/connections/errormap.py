"""How a connection manager turns a driver's exception into a ``ConnError``: one place.

``ConnectionManager`` inherits this; a backend refines ``_translate``,
``_is_disconnect`` or ``_refused``, never the call paths that use them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, ClassVar

from nbinfra.connections.settings import one_line
from nbinfra.errors import ConnectionUnavailableError, ConnError, NbinfraError, QueryError

__all__ = ["ErrorMapping", "is_read_only_sql"]

_READ_ONLY = ("select", "with", "show", "explain", "values", "table", "describe", "pragma")
_WRITES = ("insert", "update", "delete", "merge", "create", "drop", "alter", "copy", "into")


def is_read_only_sql(query: str) -> bool:
    """True when ``query`` looks like a pure read (safe to retry after a lost connection)."""
    text = query.strip().lower()
    if not text.startswith(_READ_ONLY) or ";" in text.rstrip().rstrip(";"):
        return False
    if text.startswith("with"):
        words = set(text.replace("(", " ").replace(")", " ").split())
        return not words.intersection(_WRITES)
    return " into " not in text  # SELECT ... INTO creates a table


class ErrorMapping:
    """Exception -> ``ConnError`` for a manager (its ``kind``, ``name`` and ``target``)."""

    kind: ClassVar[str]
    name: str

    @property
    def target(self) -> str:
        raise NotImplementedError

    def _error(self, exc: BaseException, what: str, timeout: float | None) -> ConnError:
        if isinstance(exc, ConnError):
            return exc
        if isinstance(exc, NbinfraError):
            return QueryError(exc.message)
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError, concurrent.futures.TimeoutError)):
            return ConnectionUnavailableError(
                f"{self.kind} '{self.name}' at {self.target}: {what} did not finish within "
                f"{timeout} s; check the service or raise the timeout setting."
            )
        err = self._translate(exc, what)
        if not err.message:
            err = type(err)(f"{self.kind} '{self.name}': {what} failed ({type(exc).__name__})")
        return err

    def _translate(self, exc: BaseException, what: str) -> ConnError:
        """Map a driver exception to a ``ConnError``; backends refine this."""
        detail = one_line(str(exc)) or type(exc).__name__
        if self._is_disconnect(exc):
            return ConnectionUnavailableError(
                f"{self.kind} '{self.name}' at {self.target} is unavailable ({what}): {detail}"
            )
        return QueryError(f"{self.kind} '{self.name}' {what} failed: {detail}")

    def _is_disconnect(self, exc: BaseException) -> bool:
        """True when ``exc`` means the connection is gone (not a bad query)."""
        return isinstance(exc, (ConnectionError, OSError))

    def _is_idempotent(self, query: Any) -> bool:
        """Whether ``execute_query(query)`` may be retried after a lost connection."""
        return isinstance(query, str) and is_read_only_sql(query)

    def _refused(self, reason: str) -> ConnError:
        """The error for a connect whose every address refused TCP (backends refine it)."""
        return ConnectionUnavailableError(
            f"{self.kind} '{self.name}' at {self.target} refused the connection ({reason}); "
            f"start the server, or fix its address under connections.{self.name}."
        )
