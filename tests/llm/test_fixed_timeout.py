"""Hugging Face and Ollama clients take their timeout when built: a call with its own
``timeout`` runs on a twin client with it, closed when the call ends (local wire servers)."""

from __future__ import annotations

from typing import Any

import pytest

from nbinfra.testing.llm_wire_contract import LLMWireContract
from tests.llm.conftest import Wire

pytest.importorskip("huggingface_hub")
pytest.importorskip("ollama")


def contract(kind: str) -> LLMWireContract:
    # Through the modules, so their Test* classes are not collected here a second time.
    if kind == "huggingface":
        from tests.llm import test_huggingface

        return test_huggingface.TestHuggingFaceWire()
    from tests.llm import test_ollama

    return test_ollama.TestOllamaWire()


@pytest.mark.parametrize("kind", ["huggingface", "ollama"])
async def test_per_call_timeout_runs_on_a_twin_client_closed_after_the_call(
    kind: str, wire_factory: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire = contract(kind)
    llm: Any = wire.make(wire_factory(kind), timeout=30.0)
    closed: list[float] = []

    def closing_records(client: Any, timeout: float) -> Any:
        close = client.close

        async def recorded() -> None:
            closed.append(timeout)
            await close()

        client.close = recorded
        return client

    shared = closing_records(llm.client, 30.0)
    built: list[float] = []
    new_client = llm._new_client

    def tracked(timeout: float) -> Any:
        client = closing_records(new_client(timeout), timeout)
        built.append(wire.sdk_read_timeout(client))
        return client

    monkeypatch.setattr(llm, "_new_client", tracked)

    assert (await llm.generate("hi", timeout=5.0)).content
    assert (built, closed) == ([5.0], [5.0])
    events = [e async for e in llm.stream_events("hi", timeout=6.0)]
    assert events[-1].final and (built, closed) == ([5.0, 6.0], [5.0, 6.0])
    assert (await llm.generate("hi")).content  # the provider's own timeout: shared client
    assert (await llm.generate("hi", timeout=30.0)).content
    assert built == [5.0, 6.0] and llm.client is shared
    await llm.aclose()
    assert closed == [5.0, 6.0, 30.0]
