"""``within(awaitable, seconds)``: await under a time limit without starting a task.

``asyncio.wait_for`` wraps its awaitable in a new task on Python 3.11 (one more task to
schedule and one more loop iteration per call); ``asyncio.timeout`` (3.11+) cancels the
current task at the deadline instead. Both raise ``TimeoutError`` when time runs out.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["within"]

T = TypeVar("T")

if sys.version_info >= (3, 11):

    async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
        """``await awaitable``, raising ``TimeoutError`` after ``seconds`` (None: no limit)."""
        async with asyncio.timeout(seconds):
            return await awaitable

else:  # pragma: no cover - Python 3.10

    async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
        """``await awaitable``, raising ``TimeoutError`` after ``seconds`` (None: no limit)."""
        return await asyncio.wait_for(awaitable, seconds)
