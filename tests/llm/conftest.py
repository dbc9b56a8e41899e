"""LLM test helpers: local wire servers and providers pointed at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nbinfra.llm.base import BaseLLMProvider
from nbinfra.llm.settings import ModelInfo
from nbinfra.testing.llm_wire_contract import TEST_KEY
from nbinfra.testing.llm_wire_contract import provider_for as wire_provider
from nbinfra.testing_llm import LLMWireServer

__all__ = ["MODELS", "TEST_KEY", "Wire", "provider_for"]

Wire = Callable[..., LLMWireServer]


@pytest.fixture(scope="session")
def _wire_servers() -> Iterator[dict[tuple[str, ...], LLMWireServer]]:
    # Shared across tests: stopping a server costs half a second (serve_forever's poll).
    servers: dict[tuple[str, ...], LLMWireServer] = {}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def wire_factory(_wire_servers: dict[tuple[str, ...], LLMWireServer]) -> Wire:
    """An ``LLMWireServer`` for the given formats, with an empty script and history."""

    def make(*formats: str) -> LLMWireServer:
        server = _wire_servers.get(formats)
        if server is None:
            server = _wire_servers[formats] = LLMWireServer(*formats).start()
        server.reset()
        return server

    return make


PRICES = {
    "gpt-4o-mini": ModelInfo(128000, None, 0.15, 0.60),
    "llama-3.1-8b-instant": ModelInfo(131072, None, 0.05, 0.08),
}
MODELS = {"azure": "my-deployment", "groq": "llama-3.1-8b-instant", "openai": "gpt-4o-mini"}


def provider_for(
    kind: str,
    server: LLMWireServer,
    *,
    key: str = TEST_KEY,
    model: str | None = None,
    extra: dict[str, Any] | None = None,
    **overrides: Any,
) -> BaseLLMProvider:
    """``nbinfra.testing.llm_wire_contract.provider_for`` with this suite's models and
    prices; Azure takes the server's URL as ``endpoint``."""
    more: dict[str, Any] = dict(extra or {})
    base_url: str | None = None
    if kind == "azure":
        more.setdefault("endpoint", server.base_url(kind))
        more.setdefault("api_version", "2024-10-21")
        base_url = ""
    return wire_provider(
        kind,
        server,
        key=key,
        model=model or MODELS.get(kind, "test-model"),
        base_url=base_url,
        extra=more,
        models=PRICES,
        **overrides,
    )
