"""A pydantic model importable by name (cached values rebuild it in any process)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from pydantic import BaseModel


class Order(BaseModel):
    id: uuid.UUID
    items: list[tuple[str, int]]
    total: Decimal
