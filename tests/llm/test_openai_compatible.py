"""``initialize()`` against OpenAI-compatible servers that lack ``GET /models/{id}``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nbinfra.errors import BadRequestError
from nbinfra.llm.sync import SyncLLM
from nbinfra.testing.llm_wire_contract import provider_for as wire_provider
from nbinfra.testing_llm import LLMWireServer, OpenAIFormat
from tests.llm.conftest import provider_for


class CompatFormat(OpenAIFormat):
    """Chat completions, and only the model routes ``serves`` names (vLLM: list only)."""

    def __init__(self, serves: tuple[str, ...]) -> None:
        self.serves = serves

    def routes(self) -> list[tuple[str, str, str]]:
        return [r for r in super().routes() if r[2] in ("chat", *self.serves)]


@pytest.fixture(params=[("models",), ()], ids=["lists-models", "no-model-routes"])
def server(request: pytest.FixtureRequest) -> Iterator[LLMWireServer]:
    with LLMWireServer(CompatFormat(request.param)) as wire:
        wire.models = {"my-local-model": {"max_model_len": 32768}, "other": {}}
        yield wire


def test_initialize_falls_back_to_listing_then_to_no_check(server: LLMWireServer) -> None:
    provider = provider_for("openai", server, model="my-local-model")
    llm = SyncLLM(provider)
    try:
        llm.initialize()
        paths = [r.path for r in server.requests]
        assert paths[0] == "/v1/models/my-local-model"  # asked first, answered 404
        lists = "models" in server.formats["openai"].serves  # type: ignore[attr-defined]
        assert paths[1:] == ["/v1/models"]
        assert provider.context_window == (32768 if lists else None)
        assert llm.generate("hi").content == server.default.text
    finally:
        llm.close()


def test_a_listed_server_without_the_model_names_what_it_serves() -> None:
    with LLMWireServer(CompatFormat(("models",))) as server:
        server.models = {"qwen2.5-7b": {}, "llama-3.1-8b": {}}
        llm = SyncLLM(provider_for("openai", server, model="gpt-4o-mini"))
        try:
            with pytest.raises(BadRequestError, match=r"serves llama-3\.1-8b, qwen2\.5-7b"):
                llm.initialize()
        finally:
            llm.close()


def test_the_vendor_api_still_reports_an_unknown_model(monkeypatch: pytest.MonkeyPatch) -> None:
    # No base_url configured: a 404 on /models/{id} means "no such model", not "no route".
    with LLMWireServer(CompatFormat(("models",))) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url("openai"))  # read by the SDK
        llm = SyncLLM(wire_provider("openai", server, model="gpt-4o-mini", base_url=""))
        try:
            with pytest.raises(BadRequestError, match="404"):
                llm.initialize()
            assert [r.path for r in server.requests] == ["/v1/models/gpt-4o-mini"]
        finally:
            llm.close()
