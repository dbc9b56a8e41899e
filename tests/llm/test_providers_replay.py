"""Record real provider calls (OpenAI SDK against the wire server), replay them offline
in a fresh session from the exported file: identical outputs, zero HTTP requests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nbinfra.llm import LLMFactory
from nbinfra.llm.replay import use_response_store
from nbinfra.session import Session, use_session
from nbinfra.testing_llm import LLMWireServer, Reply


def test_record_export_replay_in_a_fresh_session(
    tmp_path: Path, wire_factory: Callable[..., LLMWireServer]
) -> None:
    import nbinfra.llm

    server = wire_factory("openai")
    server.push(Reply("first answer", usage=(7, 2)), Reply(chunks=["stre", "amed"]))
    spec = {"api_key": "sk-replay-0123456789", "base_url": server.base_url(), "max_retries": 0}
    recording = tmp_path / "calls.jsonl"

    with Session() as recorder, use_session(recorder):
        store = use_response_store("record")
        llm = nbinfra.llm("openai", **spec)
        first = llm.generate("What?", temperature=0)
        streamed = "".join(llm.stream("Stream it", temperature=0))
        assert store.export_jsonl(recording) == 2
    sent = len(server.requests)
    assert sent == 2

    with Session() as offline, use_session(offline):
        use_response_store("replay", path=recording)
        again = nbinfra.llm("openai", **spec)
        assert again.generate("What?", temperature=0).content == first.content
        assert "".join(again.stream("Stream it", temperature=0)) == streamed == "streamed"
        provider = LLMFactory.get_llm("openai", session=offline, **spec)
        assert provider.response_store is offline.state["llm.response_store"]
    assert len(server.requests) == sent  # nothing reached the server while replaying
