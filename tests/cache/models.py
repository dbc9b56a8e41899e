"""A pydantic model another process can rebuild from the cache once it registers it."""

from __future__ import annotations

import uuid
from decimal import Decimal

from pydantic import BaseModel


class Order(BaseModel):
    id: uuid.UUID
    items: list[tuple[str, int]]
    total: Decimal
