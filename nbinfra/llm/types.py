"""Value types shared by every LLM provider, the context manager and the notebook layer.

Pure Python: importing this module imports no SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "LLMResponse",
    "Message",
    "MessagesLike",
    "Role",
    "StreamChunk",
    "TokenCount",
    "Usage",
    "as_messages",
]

Role = Literal["system", "user", "assistant", "tool"]
_ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True)
class Message:
    """One chat message. Frozen and hashable, so token counts can be cached per message."""

    role: Role
    content: str
    name: str | None = None

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ValueError(
                f"Unknown message role {self.role!r}; use one of system, user, assistant, tool."
            )
        if not isinstance(self.content, str):
            raise TypeError(f"Message content must be a string, got {type(self.content).__name__}.")

    def to_dict(self) -> dict[str, str]:
        data = {"role": self.role, "content": self.content}
        if self.name:
            data["name"] = self.name
        return data


MessagesLike = str | Message | Mapping[str, Any] | Sequence[Message | Mapping[str, Any]]


def as_messages(prompt: MessagesLike, system: str | None = None) -> list[Message]:
    """Normalise a prompt (string, message, dict or a list of them) into messages."""
    items: list[Message]
    if isinstance(prompt, str):
        items = [Message("user", prompt)]
    elif isinstance(prompt, Message):
        items = [prompt]
    elif isinstance(prompt, Mapping):
        items = [_from_mapping(prompt)]
    else:
        items = [m if isinstance(m, Message) else _from_mapping(m) for m in prompt]
    if system is not None:
        items = [Message("system", system), *(m for m in items if m.role != "system")]
    return items


def _from_mapping(data: Mapping[str, Any]) -> Message:
    try:
        return Message(data["role"], data["content"], data.get("name"))
    except KeyError as exc:
        raise ValueError(f"A message needs 'role' and 'content' keys, got {sorted(data)}.") from exc


@dataclass(frozen=True)
class TokenCount:
    """A token count and whether it is exact (the model's tokenizer) or estimated."""

    tokens: int
    exact: bool

    @property
    def label(self) -> str:
        return "exact" if self.exact else "estimated"

    def __add__(self, other: TokenCount) -> TokenCount:
        return TokenCount(self.tokens + other.tokens, self.exact and other.exact)

    def __str__(self) -> str:
        return f"{self.tokens} ({self.label})"


@dataclass(frozen=True)
class Usage:
    """Token usage of one call. ``exact`` is False when we counted instead of the provider."""

    input_tokens: int = 0
    output_tokens: int = 0
    exact: bool = True
    cached: bool = False  # served from the response cache / replay, no provider call

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class LLMResponse:
    """The result of ``generate`` (and the final event of ``stream_generate``)."""

    content: str
    model: str
    provider: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    latency: float = 0.0  # seconds, request sent -> last byte
    time_to_first_token: float | None = None  # seconds, for streams
    cost: float | None = None  # in the configured currency, when prices are configured
    raw: Any = field(default=None, repr=False)
    options: dict[str, Any] = field(default_factory=dict)  # the options the call used
    cached: bool = False
    warnings: list[str] = field(default_factory=list)  # e.g. "prompt_truncated"
    # schema= calls: the answer validated into the model (an instance, or a dict for a
    # JSON-schema dict), and how many repair rounds it took
    parsed: Any = None
    repairs: int = 0

    def __str__(self) -> str:
        return self.content


@dataclass(frozen=True)
class StreamChunk:
    """One piece of a stream: text deltas, then exactly one final chunk with the response.

    ``final`` chunks carry ``response`` (with usage); text chunks carry ``text``.
    Iterating ``stream_generate`` yields ``str`` deltas for the seed's
    ``print(chunk, end="")`` usage; ``stream_events`` yields these.
    """

    text: str = ""
    final: bool = False
    response: LLMResponse | None = None
