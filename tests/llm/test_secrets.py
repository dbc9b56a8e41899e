"""API keys never appear in errors, reprs or logs, even when a server echoes them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from nbinfra.config import Settings
from nbinfra.errors import AuthenticationError, ProviderServerError
from nbinfra.llm import LLMFactory, factory
from nbinfra.testing_llm import Fault, LLMWireServer

SENTINEL = "sk-SENTINEL-do-not-leak-8f3a9c"


@pytest.mark.parametrize("kind", ["openai", "groq", "azure"])
async def test_key_from_environment_never_leaks(
    kind: str,
    wire_factory: Callable[..., LLMWireServer],
    caplog: pytest.LogCaptureFixture,
    nbinfra_session: object,
) -> None:
    server = wire_factory(kind)
    env_var = {"openai": "OPENAI_API_KEY", "groq": "GROQ_API_KEY", "azure": "AZURE_OPENAI_API_KEY"}
    provider: dict[str, object] = {"api_key": f"${{{env_var[kind]}:}}", "max_retries": 1}
    if kind == "azure":
        provider["endpoint"] = server.base_url("azure")
        provider["model"] = "dep"
    else:
        provider["base_url"] = server.base_url(kind)
    conf = Settings.from_dict(
        {"llm": {"retry_backoff": 0.0, "providers": {kind: provider}}},
        environ={env_var[kind]: SENTINEL},
    )
    llm = LLMFactory.get_llm(kind, settings=conf, session=nbinfra_session)  # type: ignore[arg-type]
    # The server echoes the key back, as some providers do in their 401 messages.
    server.push(Fault.unauthorized(f"Incorrect API key provided: {SENTINEL}."))
    server.push(Fault.server_error(), Fault("status", 502, f"upstream saw {SENTINEL}"))
    caplog.set_level(logging.DEBUG, logger="nbinfra")
    with pytest.raises(AuthenticationError) as auth:
        await asyncio.wait_for(llm.generate("hi"), 10)
    with pytest.raises(ProviderServerError) as server_error:
        await asyncio.wait_for(llm.generate("hi"), 10)
    texts = [
        str(auth.value),
        repr(auth.value),
        *auth.value._render_traceback_(),
        str(server_error.value),
        repr(server_error.value),
        repr(llm),
        repr(llm.settings),
        repr(factory.provider_statuses(conf)),
        repr(conf.as_dict()),
        caplog.text,
    ]
    assert "upstream saw ********" in str(server_error.value)  # redacted, not dropped
    for text in texts:
        assert SENTINEL not in text
    assert env_var[kind] in str(auth.value)
    assert caplog.records  # the retry was logged, without the key
    await llm.aclose()


def test_key_passed_directly_is_masked(nbinfra_session: object) -> None:
    llm = LLMFactory.get_llm("openai", api_key=SENTINEL + "-direct", session=nbinfra_session)  # type: ignore[arg-type]
    assert SENTINEL not in repr(llm) and SENTINEL not in repr(llm.settings)
    assert llm.api_key() == SENTINEL + "-direct"  # the one place that hands it on
