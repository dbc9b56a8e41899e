"""Cache fixtures: a fresh session (the contract's providers are in test_contract.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from nbinfra.config import Settings
from nbinfra.session import Session, use_session


def settings_for(**cache: Any) -> Settings:
    """Settings whose ``cache:`` section is ``cache`` (instances keep the shipped ones)."""
    return Settings.from_dict({"cache": cache})


@pytest.fixture
def session() -> Iterator[Session]:
    fresh = Session(settings_for(backend="memory", default_ttl=300))
    with use_session(fresh):
        yield fresh
    fresh.close()
