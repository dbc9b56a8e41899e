"""What a context fit would send: ``ContextPreview`` (shown by ``%llm history`` and the
context-preview widget)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ContextPreview", "PreviewEntry", "Status"]

Status = Literal["kept", "dropped", "summarised"]


@dataclass(frozen=True)
class PreviewEntry:
    index: int
    role: str
    tokens: int
    status: Status
    text: str


@dataclass(frozen=True)
class ContextPreview:
    """What ``fit()`` would send: every message with its status and token count."""

    entries: list[PreviewEntry]
    total_tokens: int  # of the fitted request (summary and reply priming included)
    budget: int
    strategy: str
    summary: str | None = None  # the summary as last produced (None before the first one)
    exact: bool = True

    def count(self, status: Status) -> int:
        return sum(1 for entry in self.entries if entry.status == status)

    def __str__(self) -> str:
        label = "exact" if self.exact else "estimated"
        head = (
            f"{self.strategy}: {self.total_tokens}/{self.budget} tokens ({label}); "
            f"kept {self.count('kept')}, dropped {self.count('dropped')}, "
            f"summarised {self.count('summarised')}"
        )
        lines = [head]
        for e in self.entries:
            text = e.text if len(e.text) <= 60 else e.text[:57] + "..."
            lines.append(f"{e.index:>5} {e.status:<10} {e.role:<9} {e.tokens:>6}  {text!r}")
        return "\n".join(lines)
