"""``map``: one prompt per row of a DataFrame (or per item of a list), at the provider's limits.

``nbinfra.llm(spec).map(df, "Classify: {text}")`` (``await llm.amap(...)`` in the core,
``%%llm --over df`` in a notebook) returns a DataFrame aligned to the input's index with
``answer``, ``prompt_tokens``, ``completion_tokens``, ``cost``, ``latency``,
``provider``, ``model``, ``cached`` and ``error`` per row. How it runs:

- **Limits:** ``concurrency`` requests at a time, requests and tokens per minute from
  ``llm.providers.<kind>.rpm``/``tpm`` (or the model's entry under ``models:``, or
  ``rpm=``/``tpm=``), through ``nbinfra.llm.ratelimit.AdaptiveLimiter``: a 429 closes one
  gate for the whole batch for its ``Retry-After`` and, when 429s are frequent, lowers the
  rate. The SDK's own retries are off, and ours are not used inside a map: a row that got
  a 429 goes back in the queue, until it waited ``max_wait`` seconds.
- **Nothing lost, nothing paid twice:** every answer is written to the response store as
  it arrives (``nbinfra.llm.durable``: a file under ``.nbinfra/`` unless a store is active
  or ``store=`` is given), keyed as ``generate`` keys it. A re-run sends requests only for
  rows not answered yet; in replay mode nothing is sent. An interrupt keeps the finished
  rows (the facade returns the partial frame). A row that failed is tried once more at the
  end, then reported in ``error`` (``errors="raise"`` raises instead).
- **Budget:** ``budget=`` caps the spend in the configured currency. Before each request
  the spend so far, the reservations of requests in flight and this request's estimate
  (its prompt tokens, counted, and ``max_tokens`` as the most it can answer) are added;
  if that would pass the budget, the map stops and the rows not sent say ``budget``.
- **Fallbacks:** ``fallbacks=["groq:llama-3.1-8b-instant", ...]``: a row the provider
  refuses with a 429 (after ``max_wait``), a server error, a timeout or a context overflow
  goes to the next one; ``provider``/``model`` say which one answered.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import ChainMap
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from nbinfra.llm._mapwork import MapWork, Row
from nbinfra.llm.types import MessagesLike

if TYPE_CHECKING:
    import pandas as pd

    from nbinfra.llm.base import BaseLLMProvider
    from nbinfra.llm.calls import ResponseStore

__all__ = ["COLUMNS", "MapRun", "MapSummary", "amap", "run_map"]

COLUMNS = (
    "answer",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "latency",
    "provider",
    "model",
    "cached",
    "error",
)
Errors = Literal["collect", "raise"]


@dataclass(frozen=True)
class MapSummary:
    """What a map did: ``str()`` is the one line a notebook shows."""

    total: int
    answered: int
    from_store: int
    failed: int
    not_sent: int  # budget
    interrupted: int
    requests: int  # HTTP requests sent, retries included
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    currency: str
    seconds: float

    def __str__(self) -> str:
        parts = [f"{self.answered:,} of {self.total:,} rows answered"]
        if self.from_store:
            parts[0] += f" ({self.from_store:,} from the store)"
        if self.failed:
            parts.append(f"{self.failed:,} failed (see the error column)")
        if self.not_sent:
            parts.append(f"{self.not_sent:,} not sent (budget)")
        if self.interrupted:
            parts.append(f"{self.interrupted:,} not done (interrupted)")
        tokens = self.prompt_tokens + self.completion_tokens
        parts.append(f"{self.requests:,} requests · {tokens:,} tokens")
        if self.cost is not None:
            parts[-1] += f" · {self.cost:.4f} {self.currency}"
        parts[-1] += f" · {self.seconds:.1f} s"
        return "; ".join(parts)


class MapRun:
    """One map: its rows, its work on nbinfra's loop, and the frame it returns."""

    def __init__(
        self,
        llm: BaseLLMProvider,
        data: Any,
        template: str | None = None,
        *,
        column: str | None = None,
        namespace: Mapping[str, Any] | None = None,
        concurrency: int = 8,
        rpm: float | None = None,
        tpm: float | None = None,
        budget: float | None = None,
        fallbacks: Sequence[str | BaseLLMProvider] = (),
        errors: Errors = "collect",
        store: ResponseStore | str | None = None,
        max_wait: float | None = None,
        **options: Any,
    ) -> None:
        if errors not in ("collect", "raise"):
            raise ValueError(f"errors must be 'collect' or 'raise', got {errors!r}.")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}.")
        if budget is not None and not budget > 0:
            raise ValueError(f"budget must be a positive amount, got {budget!r}.")
        labels, prompts = _prompts(data, template, column, namespace)
        self.labels = labels
        self.rows = [Row(i, p) for i, p in enumerate(prompts)]
        self.errors = errors
        self.interrupted = False
        self.finished = threading.Event()
        self.work = MapWork(
            llm,
            self.rows,
            concurrency=concurrency,
            rpm=rpm,
            tpm=tpm,
            budget=budget,
            fallbacks=fallbacks,
            store=store,
            max_wait=max_wait,
            options=options,
        )
        self._start = time.monotonic()
        self._seconds: float | None = None

    async def execute(self) -> None:
        """Answer every row (on nbinfra's loop); raise only for ``errors="raise"``."""
        try:
            await self.work.run()
        finally:
            self._seconds = time.monotonic() - self._start
            self.finished.set()
        if self.errors == "raise":
            for row in self.rows:
                if row.exc is not None and row.state == "failed":
                    raise row.exc

    # -- what it returns -----------------------------------------------------------
    def summary(self) -> MapSummary:
        rows = self.rows
        answered = [r.response for r in rows if r.response is not None]
        costs = [r.cost for r in answered if r.cost is not None]
        seconds = self._seconds if self._seconds is not None else time.monotonic() - self._start
        return MapSummary(
            total=len(rows),
            answered=len(answered),
            from_store=sum(1 for r in answered if r.cached),
            failed=sum(1 for r in rows if r.state == "failed"),
            not_sent=sum(1 for r in rows if r.state == "budget"),
            interrupted=sum(1 for r in rows if r.state == "pending") if self.interrupted else 0,
            requests=self.work.requests,
            prompt_tokens=sum(r.usage.input_tokens for r in answered),
            completion_tokens=sum(r.usage.output_tokens for r in answered),
            cost=sum(costs) if costs else None,
            currency=self.work.currency,
            seconds=seconds,
        )

    def progress_label(self) -> str:
        """``LLM map: 412/2,000 · 20.1 rows/s · ETA 79 s · 23,400 tokens · 0.0123 USD``."""
        work = self.work
        done = work.finished
        total = len(self.rows)
        elapsed = max(time.monotonic() - self._start, 1e-9)
        sent = max(done - work.from_store, 0)
        rate = sent / elapsed
        left = total - done
        eta = f"ETA {left / rate:.0f} s" if rate > 0 and left else "ETA …"
        text = f"LLM map: {done:,}/{total:,} · {rate:.1f} rows/s · {eta} · {work.tokens:,} tokens"
        if work.spent:
            text += f" · {work.spent:.4f} {work.currency}"
        return text

    def percent(self) -> float:
        return 100.0 * self.work.finished / len(self.rows) if self.rows else 100.0

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        data: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        parsed: list[Any] = []
        for row in self.rows:
            r = row.response
            if r is not None:
                values = [
                    r.content,
                    r.usage.input_tokens,
                    r.usage.output_tokens,
                    r.cost,
                    r.latency,
                    str(r.provider),
                    r.model,
                    bool(r.cached),
                    None,
                ]
            else:
                error = row.error
                if error is None:
                    error = "interrupted" if self.interrupted else "not run"
                values = [None, None, None, None, None, None, None, False, error]
            for name, value in zip(COLUMNS, values, strict=True):
                data[name].append(value)
            parsed.append(getattr(r, "parsed", None) if r is not None else None)
        frame = pd.DataFrame(data, index=self.labels)
        for name in ("prompt_tokens", "completion_tokens"):
            frame[name] = frame[name].astype("Int64")
        for name in ("cost", "latency"):
            frame[name] = frame[name].astype("float64")
        if self.work.schema is not None:
            frame.insert(1, "parsed", parsed)
        frame.attrs["nbinfra_map"] = self.summary()
        return frame

    def interrupt_line(self) -> str:
        s = self.summary()
        left = s.total - s.answered - s.failed - s.not_sent
        return (
            f"Interrupted: {s.answered:,} of {s.total:,} rows answered and kept in the response "
            f"store; run the same map again to send only the other {left:,}."
        )

    def budget_line(self) -> str | None:
        s = self.summary()
        if not s.not_sent:
            return None
        spent = f"{s.cost:.4f}" if s.cost is not None else "0"
        return (
            f"Budget reached: {spent} of {self.work.budget:.4f} {s.currency} spent; "
            f"{s.not_sent:,} of {s.total:,} rows were not sent (error 'budget'). Raise "
            "budget= and run the same map again to answer only those."
        )


def _prompts(
    data: Any, template: str | None, column: str | None, namespace: Mapping[str, Any] | None
) -> tuple[list[Any], list[MessagesLike]]:
    """(index labels, one prompt per row) from a DataFrame, a Series or a list."""
    # ChainMap only reads ``extra`` (a notebook's namespace): no copy per row.
    extra = cast("MutableMapping[str, Any]", namespace or {})
    if hasattr(data, "columns") and hasattr(data, "index"):  # a DataFrame
        if column is not None and column not in data.columns:
            known = ", ".join(map(str, data.columns))
            raise KeyError(f"No column {column!r} in the DataFrame; it has {known}.")
        if template is None:
            if column is None:
                raise ValueError(
                    "Over a DataFrame, pass a template with {column} fields, or column=NAME "
                    "to send that column's text as the prompt."
                )
            return list(data.index), [str(v) for v in data[column].tolist()]
        records = data.to_dict("records")
        return list(data.index), [_fill(template, ChainMap(rec, extra)) for rec in records]
    if hasattr(data, "index") and hasattr(data, "tolist"):  # a Series
        values = data.tolist()
        if template is None:
            return list(data.index), [str(v) for v in values]
        name = column or str(data.name or "value")
        return list(data.index), [_fill(template, ChainMap({name: v}, extra)) for v in values]
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
        raise TypeError(
            f"map takes a list of prompts, a DataFrame or a Series, not {type(data).__name__}."
        )
    items = list(data)
    if template is None:
        return list(range(len(items))), items
    out: list[MessagesLike] = []
    for item in items:
        scope = item if isinstance(item, Mapping) else {column or "item": item}
        out.append(_fill(template, ChainMap(dict(scope), extra)))
    return list(range(len(items))), out


def _fill(template: str, scope: Mapping[str, Any]) -> str:
    from nbinfra.notebook.interpolate import interpolate

    return interpolate(template, scope)


async def amap(llm: BaseLLMProvider, data: Any, template: str | None = None, **kw: Any) -> Any:
    """The async map: answers every row and returns the frame (see the module docstring).

    Cancelling it keeps the rows already answered in the response store.
    """
    from nbinfra import _loop

    run = MapRun(llm, data, template, **kw)
    if _loop.in_loop_thread():
        await run.execute()
    else:
        await _loop.run_async(run.execute())
    return run.frame()


def run_map(
    llm: BaseLLMProvider,
    data: Any,
    template: str | None = None,
    *,
    progress: bool = True,
    **kw: Any,
) -> pd.DataFrame:
    """The synchronous map behind ``SyncLLM.map``: the work runs on nbinfra's loop while
    this thread draws the progress line; an interrupt returns the partial frame."""
    import concurrent.futures

    from nbinfra import _loop
    from nbinfra.progress import Progress

    if _loop.in_loop_thread():
        from nbinfra.errors import LoopError

        raise LoopError(
            "The synchronous map was called from nbinfra's own event loop; use "
            "await llm.amap(...) there instead."
        )
    run = MapRun(llm, data, template, **kw)
    shown = Progress("LLM map") if progress else None
    future = asyncio.run_coroutine_threadsafe(run.execute(), _loop.get_loop())
    try:
        while not concurrent.futures.wait((future,), SLICE).done:
            if shown is not None:
                shown.label = run.progress_label()
                shown.update(run.percent())
        future.result()
    except KeyboardInterrupt:
        future.cancel()
        run.finished.wait(GRACE)
        run.interrupted = True
        print(run.interrupt_line(), flush=True)
    finally:
        if shown is not None:
            shown.close()
    line = run.budget_line()
    if line is not None and not run.interrupted:
        print(line, flush=True)
    return run.frame()


SLICE = 0.05  # seconds between progress updates / interrupt checks while waiting
GRACE = 5.0  # seconds given to the work to stop after an interrupt
