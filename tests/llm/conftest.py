"""LLM test helpers: local wire servers and providers pointed at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nbinfra._secrets import Secret
from nbinfra.llm import LLMRegistry
from nbinfra.llm.base import BaseLLMProvider
from nbinfra.llm.settings import ModelInfo, ProviderSettings
from nbinfra.testing_llm import LLMWireServer

TEST_KEY = "sk-test-wire-0123456789"


@pytest.fixture(scope="session")
def _wire_servers() -> Iterator[dict[tuple[str, ...], LLMWireServer]]:
    # Shared across tests: stopping a server costs half a second (serve_forever's poll).
    servers: dict[tuple[str, ...], LLMWireServer] = {}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def wire_factory(
    _wire_servers: dict[tuple[str, ...], LLMWireServer],
) -> Callable[..., LLMWireServer]:
    """An ``LLMWireServer`` for the given formats, with an empty script and history."""

    def make(*formats: str) -> LLMWireServer:
        server = _wire_servers.get(formats)
        if server is None:
            server = _wire_servers[formats] = LLMWireServer(*formats).start()
        server.reset()
        return server

    return make


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
    """A provider of ``kind`` aimed at ``server`` with short timeouts and fast retries.

    The base URL is ``server.base_url(kind)`` (Azure takes it as ``endpoint``); other
    kinds pass their model and provider-specific settings through ``model``/``extra``.
    """
    more: dict[str, Any] = dict(extra or {})
    base_url = server.base_url(kind)
    if kind == "azure":
        more.setdefault("endpoint", base_url)
        more.setdefault("api_version", "2024-10-21")
        base_url = ""
    settings = ProviderSettings(
        api_key=Secret(key),
        base_url=base_url,
        model=model or MODELS.get(kind, "test-model"),
        timeout=overrides.pop("timeout", 2.0),
        connect_timeout=1.0,
        max_retries=overrides.pop("max_retries", 2),
        retry_backoff=0.01,
        retry_max_wait=overrides.pop("retry_max_wait", 1.0),
        models={
            "gpt-4o-mini": ModelInfo(128000, None, 0.15, 0.60),
            "llama-3.1-8b-instant": ModelInfo(131072, None, 0.05, 0.08),
        },
        extra=more,
    )
    return LLMRegistry.get(kind)(settings=settings, **overrides)
