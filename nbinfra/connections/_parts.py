"""What the mixins of a manager (COPY, scripts, texts) use of the manager they join."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

__all__ = ["ManagerParts"]

T = TypeVar("T")


class ManagerParts:
    """Typing only: the manager supplies these (see ``ConnectionManager``)."""

    if TYPE_CHECKING:
        name: str

        async def _call(
            self,
            fn: Callable[[], Awaitable[T]],
            *,
            what: str,
            idempotent: bool,
            timeout: float | None = None,
        ) -> T: ...
