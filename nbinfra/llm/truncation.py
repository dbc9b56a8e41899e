"""Detect prompts a provider silently cut: it reports fewer prompt tokens than we sent.

Ollama, for one, truncates a prompt longer than ``num_ctx`` without an error; the only trace
is a ``prompt_eval_count`` smaller than the prompt. Providers (and ``Chat``) call
:func:`check_prompt_tokens` with what they counted and what the provider reported.
"""

from __future__ import annotations

import threading

from nbinfra.llm.types import LLMResponse, TokenCount
from nbinfra.logs import get_logger

__all__ = ["TRUNCATION_WARNING", "check_prompt_tokens", "reset_truncation_warnings"]

log = get_logger(__name__)

TRUNCATION_WARNING = "prompt_truncated"

# An exact count may still differ from the provider's by a few tokens of chat framing;
# an estimate (another model's tokenizer) can be off by a quarter either way.
_EXACT_SLACK = (0.02, 8)
_ESTIMATED_SLACK = (0.25, 8)

_warned: set[tuple[str, str]] = set()
_lock = threading.Lock()


def check_prompt_tokens(
    sent: int | TokenCount,
    reported: int,
    *,
    response: LLMResponse | None = None,
    provider: str | None = None,
    model: str | None = None,
) -> bool:
    """True when ``reported`` is clearly below ``sent``: the prompt was probably truncated.

    A ``reported`` of 0 or less means the provider did not say, and is never flagged.

    Flags ``response`` (``"prompt_truncated"`` in ``response.warnings``) and logs one
    WARNING per provider and model, not one per call.
    """
    if isinstance(sent, TokenCount):
        count, exact = sent.tokens, sent.exact
    else:
        count, exact = int(sent), True
    share, floor = _EXACT_SLACK if exact else _ESTIMATED_SLACK
    if reported <= 0 or reported >= count - max(floor, count * share):
        return False
    if response is not None:
        if TRUNCATION_WARNING not in response.warnings:
            response.warnings.append(TRUNCATION_WARNING)
        provider = provider or response.provider
        model = model or response.model
    key = (provider or "?", model or "?")
    with _lock:
        first = key not in _warned
        _warned.add(key)
    if first:
        log.warning(
            "%s/%s reported %d prompt tokens but %d were sent: the prompt was probably "
            "truncated (raise the model's context size, e.g. Ollama's num_ctx, or shorten it)",
            key[0],
            key[1],
            reported,
            count,
        )
    return True


def reset_truncation_warnings() -> None:
    """Forget which providers were warned about (tests)."""
    with _lock:
        _warned.clear()
