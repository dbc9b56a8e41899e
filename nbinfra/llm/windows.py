"""Context windows of well-known models, for when a provider does not report its own."""

from __future__ import annotations

__all__ = ["DEFAULT_WINDOW", "known_context_window"]

# Context windows of common models (tokens); providers report their own when they know.
_WINDOWS: tuple[tuple[str, int], ...] = (
    ("gpt-3.5-turbo", 16_385),
    ("gpt-4-turbo", 128_000),
    ("gpt-4.1", 1_047_576),
    ("gpt-4o", 128_000),
    ("gpt-4-32k", 32_768),
    ("gpt-4", 8_192),
    ("gpt-5", 400_000),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4", 200_000),
    ("claude", 200_000),
    ("gemini", 1_048_576),
    ("llama-3", 131_072),
    ("llama3", 131_072),
    ("mixtral", 32_768),
    ("mistral", 32_768),
    ("gemma", 8_192),
)
DEFAULT_WINDOW = 8_192


def known_context_window(model: str | None) -> int | None:
    """The context window of a well-known model, or None."""
    if not model:
        return None
    bare = model.rsplit("/", 1)[-1].lower()
    if ":" in bare:
        bare = bare.split(":", 1)[1]
    for prefix, window in _WINDOWS:
        if bare.startswith(prefix):
            return window
    return None
