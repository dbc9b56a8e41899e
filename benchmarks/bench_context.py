"""Context fitting: nbinfra's ContextWindowManager vs LangChain's ``trim_messages``.

Workload: a conversation of N messages (about 50 tokens each, user/assistant turns after a
system prompt) fitted into 8,192 tokens, keeping the newest messages. Both sides count with
the same tiktoken ``cl100k_base`` encoding.

- ``langchain``: ``trim_messages(strategy="last", include_system=True, start_on="human")``
  with the list token counter from LangChain's trimming guide (tiktoken inside).
- ``langchain-per-msg``: the same with a per-message counter (LangChain's faster form).
- ``nbinfra-cold``: a new ``ContextWindowManager`` with an empty token cache, built from the
  N messages, then ``fit()``: every count it needs is tokenized in the timed region.
- ``nbinfra-warm``: ``fit()`` again on a manager that has fitted before.
- ``append+refit``: add one message, ``fit()``: the notebook-chat case (target < 1 ms).

Run: ``python -m benchmarks.bench_context`` (``--smoke`` for a quick pass).
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Callable
from typing import Any

from benchmarks.harness import Comparison, interleave
from nbinfra.llm.context import ContextWindowManager
from nbinfra.llm.tokens import (
    TOKENS_PER_MESSAGE,
    TOKENS_REPLY_PRIMING,
    TokenCounter,
    encoder_for,
)
from nbinfra.llm.types import Message

BUDGET = 8_192
AREA = "llm.context"
_TEXT = (
    "the of and to in is that for it as with was on be by this are from at or an have not "
    "which but they all can their more one has will would about there been if when model "
    "token context window budget cache replay notebook kernel server stream latency python "
    "conversation summary message assistant user system answer question data result value"
)
_VOCAB = re.findall(r"\w+", _TEXT)


def conversation(n: int, seed: int = 0) -> list[Message]:
    """A system prompt and ``n`` alternating user/assistant messages of ~50 tokens."""
    rng = random.Random(seed)
    messages = [Message("system", "You are a helpful assistant. Answer briefly.")]
    for i in range(n):
        words = " ".join(rng.choice(_VOCAB) for _ in range(44))
        messages.append(Message("user" if i % 2 == 0 else "assistant", f"{i}: {words}."))
    return messages


def _langchain(messages: list[Message]) -> tuple[Callable[[], object], Callable[[], object]]:
    from langchain_core.messages import (
        AIMessage,
        BaseMessage,
        HumanMessage,
        SystemMessage,
        trim_messages,
    )

    encoding = encoder_for(None)._encoding
    kinds: dict[str, Any] = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    lc_messages = [kinds[m.role](content=m.content) for m in messages]

    def list_counter(msgs: list[BaseMessage]) -> int:
        # LangChain's trimming guide: tiktoken per message plus the chat overhead
        total = TOKENS_REPLY_PRIMING
        for msg in msgs:
            total += TOKENS_PER_MESSAGE + len(encoding.encode(str(msg.content)))
        return total

    def message_counter(msg: BaseMessage) -> int:
        return TOKENS_PER_MESSAGE + len(encoding.encode(str(msg.content)))

    # LangChain spots a per-message counter by its annotation object (a string here)
    message_counter.__annotations__["msg"] = BaseMessage

    def trim(counter: Any) -> Callable[[], object]:
        return lambda: trim_messages(
            lc_messages,
            max_tokens=BUDGET,
            token_counter=counter,
            strategy="last",
            include_system=True,
            start_on="human",
        )

    return trim(list_counter), trim(message_counter)


def _manager(messages: list[Message]) -> ContextWindowManager:
    return ContextWindowManager(
        context_window=BUDGET,
        max_output_tokens=0,
        margin=0,
        messages=messages,
        counter=TokenCounter(None),
    )


def _fit_comparison(n: int, rounds: int) -> Comparison:
    messages = conversation(n)
    lc_list, lc_per_message = _langchain(messages)
    warm = _manager(messages)
    warm.fit()
    contenders: dict[str, Callable[[], object]] = {
        "nbinfra-cold": lambda: _manager(messages).fit(),
        "nbinfra-warm": warm.fit,
        "langchain": lc_list,
        "langchain-per-msg": lc_per_message,
    }
    samples = interleave(contenders, rounds=rounds)
    kept = len(warm.fit())
    return Comparison(
        AREA,
        f"fit recent @ {n:,} messages",
        f"{n:,} messages of ~50 tokens into {BUDGET:,} tokens (keeps {kept})",
        samples,
        nbinfra="nbinfra-cold",
        baseline="langchain",
        max_ratio=1 / 50 if n == 10_000 else None,
        unit="s/fit",
        notes="target >= 50x faster than trim_messages(strategy='last') at 10k messages",
        extra={"size": n},
    )


def _refit_comparison(n: int, rounds: int, ops: int) -> Comparison:
    messages = conversation(n)
    manager = _manager(messages)
    manager.fit()
    extra = conversation(rounds * ops + ops + 10, seed=1)[1:]
    position = iter(range(len(extra)))

    def append_and_refit() -> None:
        for _ in range(ops):
            manager.add(extra[next(position)])
            manager.fit()

    samples = interleave({"nbinfra-append+refit": append_and_refit}, rounds=rounds, ops=ops)
    return Comparison(
        AREA,
        f"append one message and re-fit, {n:,} messages",
        f"add 1 message to a fitted {n:,}-message conversation, then fit() into {BUDGET:,}",
        samples,
        nbinfra="nbinfra-append+refit",
        max_seconds=1e-3,
        unit="s/refit",
        notes="target < 1 ms per re-fit",
    )


def run(smoke: bool) -> list[Comparison]:
    """Fit at 1k/10k/100k messages and re-fit after an append."""
    sizes = [(100, 2), (1_000, 2)] if smoke else [(1_000, 7), (10_000, 7), (100_000, 3)]
    results = [_fit_comparison(n, rounds) for n, rounds in sizes]
    refit_size, refit_ops = (1_000, 20) if smoke else (10_000, 100)
    results.append(_refit_comparison(refit_size, rounds=2 if smoke else 7, ops=refit_ops))
    return results


def _table(results: list[Comparison]) -> str:
    lines = [
        "| workload | contender | median ms | spread | ratio vs langchain |",
        "|---|---|---:|---:|---:|",
    ]
    for c in results:
        base = c.median(c.baseline) if c.baseline else None
        for name in c.samples:
            paired = c.ratio_of(name, c.baseline) if base and c.baseline else None
            ratio = f"{paired:.4f}" if paired is not None else ""
            lines.append(
                f"| {c.name} | {name} | {c.median(name) * 1000:.3f} | {c.spread(name):.0%} "
                f"| {ratio} |"
            )
        if c.met is not None:
            lines.append(f"| {c.name} | {c.notes} | | | {'met' if c.met else 'NOT met'} |")
        for key, value in c.extra.items():
            lines.append(f"| {c.name} | {key} | {value:.4f} | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(_table(run(smoke="--smoke" in sys.argv)))
