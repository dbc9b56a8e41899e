"""The values a provider call is made of, for provider authors and the base class.

``CallOptions`` (checked per-call options), ``Completion`` / ``Delta`` (what provider
hooks return), ``RetryPolicy``, the ``ResponseStore`` protocol, and token estimates used
until ``nbinfra.llm.tokens`` is available. Pure Python.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

from nbinfra.errors import (
    InvalidOptionError,
    LLMError,
    ProviderServerError,
    ProviderTimeout,
    RateLimitError,
)
from nbinfra.llm.types import LLMResponse, Message, TokenCount, Usage

if TYPE_CHECKING:
    from nbinfra.llm.schema import OutputSchema

__all__ = [
    "CALL_ONLY",
    "OPTION_NAMES",
    "CallOptions",
    "Completion",
    "Delta",
    "ResponseStore",
    "RetryPolicy",
    "check_option",
    "count_messages",
    "count_text",
    "estimate_messages",
    "estimate_text",
]

OPTION_NAMES = ("model", "temperature", "max_tokens", "top_p", "stop", "seed", "response_format")
CALL_ONLY = ("system", "timeout", "schema", "repair")


# -- token estimates (replaced by nbinfra.llm.tokens when it is installed) ------------
def estimate_text(text: str) -> TokenCount:
    """An *estimated* count: about four characters per token."""
    return TokenCount(math.ceil(len(text) / 4), exact=False)


def estimate_messages(messages: Sequence[Message]) -> TokenCount:
    """An *estimated* count for a chat: the texts plus a few tokens of framing each."""
    total = sum(math.ceil(len(m.content) / 4) + 4 for m in messages) + 3
    return TokenCount(total, exact=False)


_NO_TOKENS: Any = object()
_tokens_module: Any = None


def _tokens() -> Any:
    """``nbinfra.llm.tokens`` when present (exact counts), else None (estimates)."""
    global _tokens_module
    if _tokens_module is None:
        try:
            _tokens_module = importlib.import_module("nbinfra.llm.tokens")
        except ModuleNotFoundError as exc:
            if exc.name != "nbinfra.llm.tokens":
                raise
            _tokens_module = _NO_TOKENS
    return None if _tokens_module is _NO_TOKENS else _tokens_module


def count_messages(messages: Sequence[Message], model: str | None) -> TokenCount:
    tokens = _tokens()
    if tokens is None:
        return estimate_messages(messages)
    return tokens.count_messages(list(messages), model)  # type: ignore[no-any-return]


def count_text(text: str, model: str | None) -> TokenCount:
    tokens = _tokens()
    if tokens is None:
        return estimate_text(text)
    return tokens.count_text(text, model)  # type: ignore[no-any-return]


# -- value types for provider authors -------------------------------------------------
@dataclass(frozen=True)
class CallOptions:
    """The checked options of one call. ``to_dict`` is what a response store keys on."""

    model: str
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    response_format: str | None = None  # "json" or "text"
    timeout: float | None = None
    schema: OutputSchema | None = None  # structured output (nbinfra.llm.schema)
    repair: int | None = None  # repair rounds for schema= (None: the settings' value)

    def to_dict(self) -> dict[str, Any]:
        """The options that shape the answer (a schema as ``Name:digest``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("model", "timeout", "repair") or value is None:
                continue
            if f.name == "schema":
                value = value.key
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @property
    def json(self) -> bool:
        """A JSON answer is asked for (``response_format="json"`` or a schema)."""
        return self.response_format == "json" or self.schema is not None


@dataclass
class Completion:
    """What a provider's ``_complete`` returns; the base fills in the rest."""

    content: str
    model: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None  # None: the provider did not say; the base estimates
    raw: Any = None


@dataclass(slots=True)
class Delta:
    """One item of a provider's ``_stream``: text and/or end-of-stream facts."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    raw: Any = field(default=None, repr=False)


class ResponseStore(Protocol):
    """The hook of interfaces.md: cache, record or replay responses."""

    mode: str

    async def get(self, request: dict[str, Any]) -> LLMResponse | None: ...

    async def put(self, request: dict[str, Any], response: LLMResponse) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of rate limits, server errors and timeouts, with an explicit stop.

    At most ``max_retries`` retries; waits double from ``backoff`` up to ``max_wait``.
    A rate limit waits what the provider's ``Retry-After`` said; when that is longer than
    ``max_wait``, we stop instead of sleeping for minutes.
    """

    max_retries: int = 2
    backoff: float = 0.5
    max_wait: float = 30.0

    def delay(self, attempt: int, error: LLMError) -> float | None:
        """Seconds to wait before retry ``attempt`` (1-based); ``None`` means give up."""
        if attempt > self.max_retries:
            return None
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_wait else None
        if not isinstance(error, (RateLimitError, ProviderServerError, ProviderTimeout)):
            return None
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_wait))


def check_option(key: str, value: Any) -> Any:
    if key in ("model", "system"):
        if not isinstance(value, str) or not value.strip():
            raise InvalidOptionError(f"{key} must be a non-empty string, got {value!r}.")
        return value.strip() if key == "model" else value
    if key == "temperature":
        number = _number(key, value)
        if not 0.0 <= number <= 2.0:
            raise InvalidOptionError(f"temperature must be between 0 and 2, got {value!r}.")
        return number
    if key == "top_p":
        number = _number(key, value)
        if not 0.0 <= number <= 1.0:
            raise InvalidOptionError(f"top_p must be between 0 and 1, got {value!r}.")
        return number
    if key == "schema":
        from nbinfra.llm.schema import as_schema

        return as_schema(value)
    if key in ("max_tokens", "seed", "repair"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidOptionError(f"{key} must be an integer, got {value!r}.")
        if key == "max_tokens" and value < 1:
            raise InvalidOptionError(f"max_tokens must be at least 1, got {value!r}.")
        if key == "repair" and value < 0:
            raise InvalidOptionError(f"repair must be 0 or more rounds, got {value!r}.")
        return value
    if key == "timeout":
        number = _number(key, value)
        if number <= 0:
            raise InvalidOptionError(f"timeout must be positive (seconds), got {value!r}.")
        return number
    if key == "stop":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(s, str) for s in items):
            raise InvalidOptionError(f"stop must be a string or a list of strings, got {value!r}.")
        return tuple(items)
    # response_format
    if isinstance(value, Mapping):
        value = value.get("type")
    text = str(value).lower()
    if text in ("json", "json_object"):
        return "json"
    if text == "text":
        return "text"
    raise InvalidOptionError(f"response_format must be 'json' or 'text', got {value!r}.")


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOptionError(f"{key} must be a number, got {value!r}.")
    return float(value)
