"""Allowed ranges of numeric settings, declared on the settings dataclasses.

A field says its range in its type, ``socket_timeout: PositiveFloat = 0.5``, and
``nbinfra.config`` checks it when the section is validated, so a bad value fails at load
with one line naming the file, the key path, the value and the allowed range, instead of
hanging or failing later with a message about something else.

The aliases below cover the usual cases; ``Annotated[int, Range(ge=1, le=65535)]`` any
other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

__all__ = [
    "AtLeastOne",
    "NonNegativeFloat",
    "NonNegativeInt",
    "Port",
    "PositiveFloat",
    "Range",
]


@dataclass(frozen=True)
class Range:
    """Bounds of a number (``ge``/``gt`` below, ``le`` above); ``note`` explains a special value."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    note: str = ""

    def allows(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.ge is not None and value < self.ge:
            return False
        if self.gt is not None and value <= self.gt:
            return False
        return not (self.le is not None and value > self.le)

    def describe(self, kind: str) -> str:
        """The allowed range in words: ``an integer >= 1``, ``a number from 0 to 1``."""
        if self.ge is not None and self.le is not None:
            text = f"{kind} from {self.ge:g} to {self.le:g}"
        else:
            parts = [f">= {self.ge:g}"] if self.ge is not None else []
            parts += [f"> {self.gt:g}"] if self.gt is not None else []
            parts += [f"<= {self.le:g}"] if self.le is not None else []
            text = f"{kind} {' and '.join(parts)}"
        return f"{text} ({self.note})" if self.note else text


NonNegativeInt = Annotated[int, Range(ge=0)]
AtLeastOne = Annotated[int, Range(ge=1)]
Port = Annotated[int, Range(ge=1, le=65535)]
PositiveFloat = Annotated[float, Range(gt=0)]
NonNegativeFloat = Annotated[float, Range(ge=0)]
