"""The work of one ``map`` on nbinfra's loop: store lookups, workers, limits, budget, fallbacks.

See ``nbinfra.llm.map`` for what a map promises; this module keeps it. Rows go through a
priority queue in input order (a row put back after a 429 keeps its place); ``concurrency``
workers take them. Each attempt: the budget check (spend + reservations + this estimate),
the provider's limiter (``nbinfra.llm.ratelimit``), one call with no retry of ours, then the
answer is written to the store before the row counts as done.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from nbinfra.errors import (
    AuthenticationError,
    ContextLengthError,
    LLMError,
    ProviderServerError,
    ProviderTimeout,
    RateLimitError,
    ReplayMissError,
    SchemaError,
)
from nbinfra.llm.ratelimit import AdaptiveLimiter, Limits
from nbinfra.llm.replay import request_key
from nbinfra.llm.types import LLMResponse, Message, MessagesLike
from nbinfra.logs import get_logger

if TYPE_CHECKING:
    from nbinfra.llm.base import BaseLLMProvider
    from nbinfra.llm.calls import CallOptions, ResponseStore

__all__ = ["MapWork", "Row"]

log = get_logger("nbinfra.llm.map")

LIMITERS_KEY = "llm.limiters"  # session.state: one AdaptiveLimiter per provider and model
# Refusals that move a row to the next provider (a 429 only once its wait is used up).
_FALL_THROUGH = (ProviderServerError, ProviderTimeout, ContextLengthError)
_STOP = object()


@dataclass(eq=False)
class Row:
    """One prompt of a map and what became of it."""

    position: int
    prompt: MessagesLike
    state: str = "pending"  # pending, done, failed, budget
    level: int = 0  # which provider of the chain it is at
    response: LLMResponse | None = None
    error: str | None = None
    exc: LLMError | None = None
    waited: float = 0.0  # seconds of rate-limit waits at the current provider
    retried: bool = False  # had its one retry at the end
    retryable: bool = False
    prepared: dict[int, tuple[list[Message], CallOptions, dict[str, Any]]] = field(
        default_factory=dict
    )


class MapWork:
    """Everything one map does on the loop (see the module docstring)."""

    def __init__(
        self,
        llm: BaseLLMProvider,
        rows: list[Row],
        *,
        concurrency: int,
        rpm: float | None,
        tpm: float | None,
        budget: float | None,
        fallbacks: Sequence[str | BaseLLMProvider],
        store: ResponseStore | str | None,
        max_wait: float | None,
        options: Mapping[str, Any],
    ) -> None:
        from nbinfra.llm.durable import map_store
        from nbinfra.llm.settings import LLMSettings
        from nbinfra.session import session as default_session

        session = llm._session if llm._session is not None else default_session()
        self.session = session
        self.rows = rows
        self.concurrency = concurrency
        self.budget = budget
        self.schema = options.get("schema")
        self.options = dict(options)
        self.chain: list[BaseLLMProvider] = [llm, *(_resolve(f, session) for f in fallbacks)]
        own = llm._store  # a store given to the provider itself comes first
        if store is None and own is not None:
            self.store: ResponseStore = own
        elif store is None or isinstance(store, str):
            self.store = map_store(session, store)
        else:
            self.store = store
        self.max_wait = max_wait if max_wait is not None else llm.retry.max_wait
        self.currency = LLMSettings.load(session.settings).currency
        self.limiters = [
            self._limiter(p, rpm if i == 0 else None, tpm if i == 0 else None)
            for i, p in enumerate(self.chain)
        ]
        self.spent = 0.0  # cost of answers received in this run
        self.reserved = 0.0  # estimates of requests in flight
        self.stopped = False  # the budget was reached
        self.requests = 0  # requests sent
        self.in_flight = 0
        self.max_in_flight = 0
        self.finished = 0  # rows done, failed or not sent
        self.from_store = 0
        self.tokens = 0
        if budget is not None:
            for level, provider in enumerate(self.chain):
                self._check_prices(provider, self._opts(level))
        # Fail now (caller's thread) for a bad option rather than on every row.
        if rows:
            self._prepare(rows[0], 0)

    # -- set-up --------------------------------------------------------------------
    def _opts(self, level: int) -> dict[str, Any]:
        opts = {k: v for k, v in self.options.items() if k != "schema" or v is not None}
        if level:
            opts.pop("model", None)  # a fallback keeps its own model
        return opts

    def _prepare(self, row: Row, level: int) -> tuple[list[Message], CallOptions, dict[str, Any]]:
        found = row.prepared.get(level)
        if found is None:
            provider = self.chain[level]
            messages, opts = provider.prepare(row.prompt, self._opts(level))
            found = row.prepared[level] = (messages, opts, provider.request_key(messages, opts))
        return found

    def _limiter(
        self, provider: BaseLLMProvider, rpm: float | None, tpm: float | None
    ) -> AdaptiveLimiter:
        info = provider.model_info()
        rpm = rpm if rpm is not None else (info.rpm or provider.settings.rpm)
        tpm = tpm if tpm is not None else (info.tpm or provider.settings.tpm)
        key = (provider.kind, provider.base_url, provider.model, rpm, tpm)
        limiters: dict[Any, AdaptiveLimiter] = self.session.state.setdefault(LIMITERS_KEY, {})
        found = limiters.get(key)
        if found is None:
            retry = provider.retry
            found = limiters[key] = AdaptiveLimiter(
                Limits(rpm, tpm), backoff=retry.backoff or 0.5, max_backoff=retry.max_wait
            )
        return found

    def _check_prices(self, provider: BaseLLMProvider, options: Mapping[str, Any]) -> None:
        model = options.get("model") or provider.model
        info = provider.model_info(model)
        where = f"llm.providers.{provider.kind}.models.{model}"
        if info.input_price is None or info.output_price is None:
            raise ValueError(
                f"budget= needs the prices of {provider.kind}:{model}: set {where}.input_price "
                "and output_price (per million tokens) in resources/application-llm.yaml."
            )
        if options.get("max_tokens") is None and info.max_output_tokens is None:
            raise ValueError(
                f"budget= needs a cap on each answer: pass max_tokens=... (or set "
                f"{where}.max_output_tokens)."
            )

    def _estimate(self, level: int, messages: list[Message], opts: CallOptions) -> tuple[int, int]:
        """(prompt tokens, most answer tokens) of one request."""
        provider = self.chain[level]
        prompt = provider.count_tokens(messages, opts.model).tokens
        cap = opts.max_tokens or provider.model_info(opts.model).max_output_tokens or 0
        return prompt, cap

    def _price(self, level: int, opts: CallOptions, prompt: int, answer: int) -> float:
        info = self.chain[level].model_info(opts.model)
        return (prompt * (info.input_price or 0.0) + answer * (info.output_price or 0.0)) / 1e6

    # -- the run -------------------------------------------------------------------
    async def run(self) -> None:
        await self._from_store()
        todo: list[Row] = []
        copies: list[tuple[Row, Row]] = []  # (row, the row with the same request)
        first: dict[str, Row] = {}
        for row in self.rows:
            if row.state != "pending":
                continue
            key = request_key(self._prepare(row, 0)[2])
            leader = first.setdefault(key, row)
            if leader is row:
                todo.append(row)
            else:
                copies.append((row, leader))  # the same prompt twice is asked once
        await self._phase(todo)
        again = [r for r in self.rows if r.state == "failed" and r.retryable and not r.retried]
        for row in again:  # the one retry at the end, from the first provider again
            row.state, row.level, row.waited, row.retried = "pending", 0, 0.0, True
            row.prepared.clear()
            row.error = row.exc = None
            self.finished -= 1
        if again and not self.stopped:
            await self._phase(again)
        for row in again:
            if row.state == "pending":  # the budget stopped the retry
                self._done(row, "budget", error="budget")
        for row, leader in copies:
            row.level, row.exc, row.retryable = leader.level, leader.exc, leader.retryable
            if leader.response is not None:
                self._answered(row, replace(leader.response, cached=True))
            else:
                self._done(row, leader.state, error=leader.error)

    async def _from_store(self) -> None:
        """Rows answered before (by this provider or a fallback) come from the store."""
        store = self.store
        replay = store.mode == "replay"
        for row in self.rows:
            miss: ReplayMissError | None = None
            for level in range(len(self.chain)):
                request = self._prepare(row, level)[2]
                try:
                    hit = await store.get(request)
                except ReplayMissError as exc:
                    miss, hit = exc, None
                if hit is not None:
                    row.level = level
                    await self._stored(row, level, hit)
                    break
            else:
                if replay and miss is not None:
                    self._fail(row, miss, retryable=False)

    async def _stored(self, row: Row, level: int, hit: LLMResponse) -> None:
        """A stored answer (for ``schema=``, parsed again: the model may have changed)."""
        hit.cached = True
        opts = self._prepare(row, level)[1]
        if opts.schema is not None:
            try:
                hit = self.chain[level].parse_answer(hit, opts)
            except SchemaError as exc:
                if self.store.mode == "replay":
                    self._fail(row, exc, retryable=False)
                return  # cache mode: asked again, and the new answer replaces it
        self.from_store += 1
        self._answered(row, hit)

    async def _phase(self, rows: list[Row]) -> None:
        if not rows:
            return
        queue: asyncio.PriorityQueue[tuple[int, int, Any]] = asyncio.PriorityQueue()
        order = itertools.count()
        for row in rows:
            queue.put_nowait((0, row.position, row))
        outstanding = [len(rows)]
        workers = min(self.concurrency, len(rows))

        def settle(row: Row) -> None:
            if row.state == "pending":
                queue.put_nowait((0, row.position, row))  # back in its place
                return
            outstanding[0] -= 1
            if outstanding[0] == 0:
                for _ in range(workers):
                    queue.put_nowait((1, next(order), _STOP))

        async def worker() -> None:
            while True:
                _, _, item = await queue.get()
                if item is _STOP:
                    return
                await self._attempt(item)
                settle(item)

        tasks = [asyncio.create_task(worker()) for _ in range(workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _attempt(self, row: Row) -> None:
        """One try of ``row`` at its provider; leaves it pending (again), done or failed."""
        if self.stopped:
            self._done(row, "budget", error="budget")
            return
        level = row.level
        provider, limiter = self.chain[level], self.limiters[level]
        messages, opts, request = self._prepare(row, level)
        needs_count = self.budget is not None or limiter.tokens is not None
        prompt_tokens, cap = self._estimate(level, messages, opts) if needs_count else (0, 0)
        reserve = 0.0
        if self.budget is not None:
            reserve = self._price(level, opts, prompt_tokens, cap)
            if self.spent + self.reserved + reserve > self.budget + 1e-12:
                self.stopped = True
                self._done(row, "budget", error="budget")
                return
            self.reserved += reserve
        try:
            sent = await limiter.acquire(prompt_tokens + cap)
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                response = await provider.complete(messages, opts)
            finally:
                self.in_flight -= 1
                limiter.release()
        except RateLimitError as exc:
            row.waited += limiter.rate_limited(exc.retry_after, sent)
            if row.waited > self.max_wait:
                self._fall_through(row, exc, retryable=True)
            return
        except AuthenticationError:
            raise  # no row can succeed: the caller sees it at once
        except _FALL_THROUGH as exc:
            self._fall_through(row, exc, retryable=not isinstance(exc, ContextLengthError))
            return
        except LLMError as exc:
            self._fail(row, exc, retryable=False)
            return
        finally:
            self.reserved -= reserve
        limiter.succeeded()
        limiter.debit(response.usage.output_tokens - cap)
        if response.cost is not None:
            self.spent += response.cost
        await self.store.put(request, response)  # written before the row counts as done
        self._answered(row, response)  # a schema= answer is parsed (and repaired) already

    # -- outcomes ------------------------------------------------------------------
    def _fall_through(self, row: Row, exc: LLMError, *, retryable: bool) -> None:
        if row.level + 1 < len(self.chain):
            log.info("map row %d: %s; trying %s", row.position, type(exc).__name__, row.level + 1)
            row.level += 1
            row.waited = 0.0
            return
        self._fail(row, exc, retryable=retryable)

    def _fail(self, row: Row, exc: LLMError, *, retryable: bool) -> None:
        row.exc = exc
        row.retryable = retryable
        self._done(row, "failed", error=f"{type(exc).__name__}: {_one_line(exc)}")

    def _answered(self, row: Row, response: LLMResponse) -> None:
        row.response = response
        self.tokens += response.usage.total_tokens
        self._done(row, "done")

    def _done(self, row: Row, state: str, *, error: str | None = None) -> None:
        row.state = state
        row.error = error
        self.finished += 1


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + "..." if len(text) > 300 else text


def _resolve(spec: str | BaseLLMProvider, session: Any) -> BaseLLMProvider:
    if not isinstance(spec, str):
        return spec
    from nbinfra.llm.sync import llm

    with_session: BaseLLMProvider = llm(spec, session=session).llm
    return with_session
