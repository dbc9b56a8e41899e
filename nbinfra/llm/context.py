"""Keep a conversation inside a model's context window.

``ContextWindowManager`` holds the messages of one conversation and fits them into
``budget = context_window - max_output_tokens - margin`` with one of three strategies:

- ``recent``: the newest turns that fit;
- ``sliding_window``: the last ``max_turns`` turns, then trimmed to the budget like ``recent``;
- ``summarization``: the turns that fall out are replaced by one summary message written by
  ``summarizer`` (anything with ``async generate(messages) -> LLMResponse``); the summary is
  kept and extended incrementally, each call only summarising the turns that newly fell out.
  It gets up to ``summary_tokens``, but never more than the budget leaves beside the newest
  turn; only when not even a short summary fits there are the older turns dropped.

Always: the leading system message(s) are kept, a turn (a user message with the assistant
and tool messages that answer it) is kept or dropped whole, and the newest turn is kept; if
it cannot fit, ``fit()`` raises ``ContextLengthError`` rather than send a clipped prompt.

Per-message token counts are cached and ``recent`` fits incrementally after appends (the
window only moves forward), so re-fitting a long conversation costs microseconds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from nbinfra.errors import ContextLengthError
from nbinfra.llm.context_preview import ContextPreview, PreviewEntry, Status
from nbinfra.llm.tokens import TOKENS_REPLY_PRIMING, TokenCounter, get_counter
from nbinfra.llm.types import LLMResponse, Message, MessagesLike, as_messages
from nbinfra.llm.windows import DEFAULT_WINDOW, known_context_window
from nbinfra.logs import get_logger

__all__ = [
    "STRATEGIES",
    "ContextPreview",
    "ContextWindowManager",
    "PreviewEntry",
    "Strategy",
    "Summarizer",
    "known_context_window",
]

log = get_logger(__name__)

Strategy = Literal["recent", "sliding_window", "summarization"]
STRATEGIES: tuple[str, ...] = ("recent", "sliding_window", "summarization")

SUMMARY_PREFIX = "Summary of the earlier conversation:\n"
_MIN_SUMMARY_TOKENS = 16  # a shorter summary is not worth a call: the turns are dropped
_SUMMARY_INSTRUCTIONS = (
    "You maintain a running summary of a conversation. Merge the previous summary with the "
    "new messages into one updated summary of at most {words} words. Keep facts, names, "
    "numbers, decisions and open questions; drop pleasantries. Answer with the summary only."
)


class Summarizer(Protocol):
    """Anything that can write the summary: an LLM provider, the fake provider, a test double."""

    def generate(self, messages: list[Message], /) -> Awaitable[LLMResponse]: ...


@dataclass
class _Plan:
    """A fit: system prefix, then (optionally) the summary, then messages[cut:]."""

    cut: int  # first kept non-system message
    summarise_to: int  # messages[sys_end:summarise_to] are covered by the summary
    tokens: int  # kept messages (system prefix + messages[cut:]) + priming, no summary
    summary_room: int = 0  # tokens the summary message may take (0: no summary)


@dataclass
class _Window:
    """Incremental ``recent`` state for one unit budget: units[start:] fill ``total``."""

    seen: int  # number of messages included
    start: int  # first kept unit
    total: int


@dataclass
class _Summary:
    text: str | None = None
    upto: int = 0  # messages[sys_end:upto] are summarised
    message: Message | None = None
    calls: int = field(default=0)


class ContextWindowManager:
    """One conversation kept inside a token budget (see the module docstring)."""

    def __init__(
        self,
        model: str | None = None,
        context_window: int | None = None,
        max_output_tokens: int = 1024,
        margin: int = 64,
        strategy: Strategy = "recent",
        max_turns: int = 20,
        summarizer: Summarizer | None = None,
        summary_tokens: int = 256,
        *,
        system: str | None = None,
        messages: MessagesLike | None = None,
        counter: TokenCounter | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"Unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}.")
        if strategy == "summarization" and summarizer is None:
            raise ValueError("The summarization strategy needs summarizer=<an LLM provider>.")
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns}.")
        self.model = model
        window = context_window or known_context_window(model)
        if window is None:
            log.info("Unknown context window for %s; assuming %d tokens", model, DEFAULT_WINDOW)
            window = DEFAULT_WINDOW
        self.context_window = window
        self.max_output_tokens = max_output_tokens
        self.margin = margin
        if self.budget <= 0:
            raise ValueError(
                f"No room for a prompt: context_window {window} - max_output_tokens "
                f"{max_output_tokens} - margin {margin} = {self.budget}; lower max_output_tokens."
            )
        self.strategy: Strategy = strategy
        self.max_turns = max_turns
        self.summarizer = summarizer
        self.summary_tokens = summary_tokens
        self.counter = counter or get_counter(model)
        self._messages: list[Message] = []
        self._tokens: list[int] = []  # per message, -1 until counted
        self._sys_end = 0  # messages[:sys_end] are the pinned system prompt
        self._sys_tokens = 0
        self._units: list[int] = []  # start index of each turn after the system prompt
        self._windows: dict[int, _Window] = {}
        self._summary = _Summary()
        if system is not None:
            self.add(Message("system", system))
        if messages is not None:
            self.extend(as_messages(messages))

    # -- building the conversation ---------------------------------------------------------

    @property
    def budget(self) -> int:
        return self.context_window - self.max_output_tokens - self.margin

    @property
    def messages(self) -> list[Message]:
        return list(self._messages)

    def __len__(self) -> int:
        return len(self._messages)

    def add(self, message: Message | MessagesLike) -> None:
        """Append one message (a ``Message``, a dict, or a string for a user message)."""
        for msg in [message] if isinstance(message, Message) else as_messages(message):
            self._append(msg)

    def extend(self, messages: Iterable[Message]) -> None:
        """Append many messages (the loop of ``add``, inlined: 100k messages in ~10 ms)."""
        stored, units = self._messages, self._units
        for msg in messages:
            if not isinstance(msg, Message):
                raise TypeError(f"extend() takes Message objects, got {type(msg).__name__}.")
            index = len(stored)
            if msg.role == "system" and index == self._sys_end:
                self._tokens.extend([-1] * (index - len(self._tokens)))
                self._append(msg)
                continue
            stored.append(msg)
            if not units or msg.role in ("user", "system"):
                units.append(index)
        self._tokens.extend([-1] * (len(stored) - len(self._tokens)))

    def _append(self, msg: Message) -> None:
        index = len(self._messages)
        self._messages.append(msg)
        self._tokens.append(-1)
        if msg.role == "system" and index == self._sys_end:
            self._sys_end += 1
            self._sys_tokens += self._count(index)
            self._windows.clear()  # the unit budget changed
        elif not self._units or msg.role in ("user", "system"):
            self._units.append(index)
        # assistant and tool messages join the turn they answer

    def pop(self) -> Message:
        """Remove and return the newest message (e.g. a prompt whose call failed)."""
        if not self._messages:
            raise IndexError("pop from an empty conversation")
        index = len(self._messages) - 1
        msg = self._messages.pop()
        self._tokens.pop()
        if index < self._sys_end:
            self._sys_end -= 1
            self._sys_tokens = sum(self._count(i) for i in range(self._sys_end))
        elif self._units and self._units[-1] == index:
            self._units.pop()
        if self._summary.upto > len(self._messages):
            self._summary = _Summary()
        self._windows.clear()
        return msg

    def clear(self, keep_system: bool = True) -> None:
        """Forget the conversation (and its summary), keeping the system prompt by default."""
        system = self._messages[: self._sys_end] if keep_system else []
        self._messages, self._tokens, self._units = [], [], []
        self._sys_end = self._sys_tokens = 0
        self._windows.clear()
        self._summary = _Summary()
        self.extend(system)

    @property
    def summary(self) -> str | None:
        return self._summary.text

    # -- counting ------------------------------------------------------------------------

    def _count(self, index: int) -> int:
        tokens = self._tokens[index]
        if tokens < 0:
            tokens = self._tokens[index] = self.counter.message_tokens(self._messages[index])
        return tokens

    def _unit_tokens(self, unit: int) -> int:
        units = self._units
        end = units[unit + 1] if unit + 1 < len(units) else len(self._messages)
        return sum(self._count(i) for i in range(units[unit], end))

    def count(self) -> int:
        """Tokens of the whole conversation as a request (nothing dropped)."""
        return TOKENS_REPLY_PRIMING + sum(self._count(i) for i in range(len(self._messages)))

    # -- fitting -------------------------------------------------------------------------

    def _recent(self, room: int) -> int | None:
        """First unit of the longest run of newest units within ``room`` tokens.

        None when the newest unit alone does not fit. Incremental: after appends the
        window only moves forward, so we add the new messages and drop units from the front.
        """
        n_units = len(self._units)
        if n_units == 0:
            return 0
        n = len(self._messages)
        last = n_units - 1
        state = self._windows.get(room)
        if state is not None and state.seen <= n:
            total = state.total + sum(self._count(i) for i in range(state.seen, n))
            start = state.start
            while total > room and start < last:
                total -= self._unit_tokens(start)
                start += 1
        else:
            total = self._unit_tokens(last)
            start = last
            while start > 0:
                tokens = self._unit_tokens(start - 1)
                if total + tokens > room:
                    break
                total += tokens
                start -= 1
        if len(self._windows) > 8:  # previews at many budgets must not grow this forever
            self._windows.clear()
        self._windows[room] = _Window(n, start, total)
        return start if total <= room else None

    @property
    def min_budget(self) -> int:
        """The smallest budget that fits: system prompt, newest turn and reply priming.

        Every strategy keeps these; with a smaller budget ``fit()`` and ``preview()`` raise
        ``ContextLengthError``.
        """
        newest = self._unit_tokens(len(self._units) - 1) if self._units else 0
        return self._sys_tokens + newest + TOKENS_REPLY_PRIMING

    def _unit_room(self, budget: int) -> int:
        return budget - self._sys_tokens - TOKENS_REPLY_PRIMING

    def _too_long(self, budget: int) -> ContextLengthError:
        newest = self._unit_tokens(len(self._units) - 1) if self._units else 0
        return ContextLengthError(
            f"The newest turn needs {newest} tokens and the system prompt {self._sys_tokens}, "
            f"but the budget is {budget} (context_window {self.context_window} - "
            f"max_output_tokens {self.max_output_tokens} - margin {self.margin}); "
            "shorten the message or the system prompt, or lower max_output_tokens."
        )

    def _plan(self, strategy: str, budget: int) -> _Plan:
        n = len(self._messages)
        room = self._unit_room(budget)
        sys_end, units = self._sys_end, self._units
        if not units:
            if room < 0:
                raise self._too_long(budget)
            return _Plan(n, sys_end, budget - room)
        start = self._recent(room)
        if start is None:
            raise self._too_long(budget)
        summarise_to = sys_end
        summary_room = 0
        if strategy == "sliding_window":
            start = max(start, len(units) - self.max_turns)
        elif strategy == "summarization" and (start > 0 or self._summary.upto > sys_end):
            reserve = self._summary_room(room)
            narrowed = None if reserve is None else self._recent(room - reserve)
            if reserve is not None and narrowed is not None:
                start = narrowed
                summarise_to = max(units[start] if start < len(units) else n, self._summary.upto)
                start = _unit_at(units, summarise_to)
                summary_room = reserve
        cut = units[start] if start < len(units) else n
        cut = max(cut, summarise_to)
        kept = sum(self._count(i) for i in range(cut, n))
        tokens = self._sys_tokens + kept + TOKENS_REPLY_PRIMING
        return _Plan(cut, summarise_to, tokens, summary_room if summarise_to > sys_end else 0)

    def _prefix_tokens(self) -> int:
        return self.counter.message_tokens(Message("system", SUMMARY_PREFIX))

    def _summary_reserve(self) -> int:
        return self._prefix_tokens() + self.summary_tokens

    def _summary_room(self, room: int) -> int | None:
        """Tokens for the summary message: ``summary_tokens`` if the budget has them beside
        the newest turn, else what it leaves there; None when not even a short one fits."""
        left = room - self._unit_tokens(len(self._units) - 1)
        reserve = min(self._summary_reserve(), left)
        least = self._prefix_tokens() + min(_MIN_SUMMARY_TOKENS, self.summary_tokens)
        return reserve if reserve >= least else None

    def _summary_message(self, room: int) -> Message | None:
        """The stored summary as sent within ``room`` tokens (cut when the budget shrank)."""
        message = self._summary.message
        if message is None or self.counter.message_tokens(message) <= room:
            return message
        return self._summary_within(self._summary.text or "", room)

    def _summary_within(self, text: str, room: int) -> Message:
        cap = max(0, room - self._prefix_tokens())
        text = self.counter.encoder.truncate(text, min(cap, self.summary_tokens))
        message = Message("system", SUMMARY_PREFIX + text)
        while text and self.counter.message_tokens(message) > room:
            text = text[:-1]
            message = Message("system", SUMMARY_PREFIX + text)
        return message

    def _assemble(self, plan: _Plan) -> list[Message]:
        head = self._messages[: self._sys_end]
        summary = self._summary_message(plan.summary_room) if plan.summary_room else None
        if summary is not None:
            head.append(summary)
        return head + self._messages[plan.cut :]

    def fit(self) -> list[Message]:
        """The messages to send now. Summarization may call the summarizer (synchronously)."""
        plan = self._plan(self.strategy, self.budget)
        if plan.summarise_to > max(self._summary.upto, self._sys_end):
            from nbinfra._loop import run_sync

            run_sync(self._summarise(plan.summarise_to, plan.summary_room))
        return self._assemble(plan)

    async def afit(self) -> list[Message]:
        """``fit()`` for async code: awaits the summarizer when turns fell out."""
        plan = self._plan(self.strategy, self.budget)
        if plan.summarise_to > max(self._summary.upto, self._sys_end):
            await self._summarise(plan.summarise_to, plan.summary_room)
        return self._assemble(plan)

    async def _summarise(self, upto: int, room: int) -> None:
        """Extend the summary with messages[previous upto:upto] (only the new ones).

        ``room`` bounds the summary message (prefix included) in tokens.
        """
        assert self.summarizer is not None
        state = self._summary
        first = max(state.upto, self._sys_end)
        new = "\n".join(f"{m.role}: {m.content}" for m in self._messages[first:upto])
        previous = state.text or "(none yet)"
        cap = min(self.summary_tokens, room - self._prefix_tokens())
        words = max(10, cap * 3 // 4)
        prompt = [
            Message("system", _SUMMARY_INSTRUCTIONS.format(words=words)),
            Message("user", f"Previous summary:\n{previous}\n\nNew messages:\n{new}"),
        ]
        response = await self.summarizer.generate(prompt)
        message = self._summary_within(response.content.strip(), room)
        text = message.content[len(SUMMARY_PREFIX) :]
        self._summary = _Summary(text, upto, message, state.calls + 1)
        tokens = self.counter.count_text(text).tokens
        log.info("Summarised messages %d-%d into %d tokens", first, upto - 1, tokens)

    def preview(self, strategy: str | None = None, budget: int | None = None) -> ContextPreview:
        """Which messages ``fit()`` keeps, drops or summarises (never calls the summarizer)."""
        strategy = strategy or self.strategy
        if strategy not in STRATEGIES:
            raise ValueError(f"Unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}.")
        budget = self.budget if budget is None else budget
        plan = self._plan(strategy, budget)
        entries: list[PreviewEntry] = []
        for i, msg in enumerate(self._messages):
            status: Status
            if i < self._sys_end or i >= plan.cut:
                status = "kept"
            elif i < plan.summarise_to:
                status = "summarised"
            else:
                status = "dropped"
            entries.append(PreviewEntry(i, msg.role, self._count(i), status, msg.content))
        total = plan.tokens
        if plan.summary_room:
            summary = self._summary_message(plan.summary_room)
            if summary is not None and self._summary.upto >= plan.summarise_to:
                total += self.counter.message_tokens(summary)
            else:  # a summary still to be (re)written is counted at its cap
                total += plan.summary_room
        return ContextPreview(
            entries, total, budget, strategy, self._summary.text, self.counter.exact
        )

    def __repr__(self) -> str:
        return (
            f"ContextWindowManager(model={self.model!r}, strategy={self.strategy!r}, "
            f"messages={len(self._messages)}, budget={self.budget})"
        )


def _unit_at(units: list[int], index: int) -> int:
    """The unit starting at message ``index`` (len(units) when past the last one)."""
    from bisect import bisect_left

    return bisect_left(units, index)


def __getattr__(name: str) -> Any:
    # ``from nbinfra.llm.context import Chat`` still works: Chat lives in nbinfra.llm.chat.
    if name == "Chat":
        from nbinfra.llm.chat import Chat

        return Chat
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
