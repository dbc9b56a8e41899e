"""``ResponseProvider``: one call becomes an ``LLMResponse``.

``generate`` and ``embed``; the response-store hooks (cache, record, replay: the request
as a store sees it, ``_lookup``, ``_remember``); and ``_finish``, which adds timing,
usage (estimated when the provider reports none) and cost from configured prices.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from nbinfra import _loop
from nbinfra.errors import LLMError, ReplayMissError, SchemaError
from nbinfra.llm._client import ClientProvider
from nbinfra.llm.calls import CallOptions, count_messages, count_text
from nbinfra.llm.types import LLMResponse, Message, MessagesLike, Usage

__all__ = ["ResponseProvider"]


class ResponseProvider(ClientProvider):
    """A provider that answers with ``LLMResponse``\\ s and uses the response store."""

    async def generate(self, prompt: MessagesLike, **options: Any) -> LLMResponse:
        """One completion for a prompt or a list of messages.

        With ``schema=`` the answer is validated (``response.parsed``), with up to
        ``repair=`` repair rounds (see ``complete``).
        """
        if not _loop.in_loop_thread():
            return await _loop.run_async(self.generate(prompt, **options))
        messages, opts = self.prepare(prompt, options)
        return await self._generate(messages, opts)

    async def _generate(self, messages: list[Message], opts: CallOptions) -> LLMResponse:
        """One call through the response store."""
        request = self.request_key(messages, opts)
        hit = await self._lookup(request)
        if hit is not None:
            if opts.schema is None:
                return hit
            try:
                return self.parse_answer(hit, opts)
            except SchemaError:
                store = self.response_store
                if store is not None and store.mode == "replay":
                    raise
                # Stored before the model's validation changed (its JSON schema did
                # not): ask again, and the new answer replaces the stored one.
        response = await self.complete(messages, opts, retries=True)
        await self._remember(request, response)
        return response

    async def complete(
        self, messages: list[Message], opts: CallOptions, *, retries: bool = False
    ) -> LLMResponse:
        """One call of prepared ``messages`` and ``opts`` (see ``prepare``), past the
        response store, retried by our policy only when ``retries`` (``map`` has its own).

        With ``opts.schema`` the answer is validated into ``parsed``; one that does not
        match gets up to ``opts.repair`` (else the settings' ``repair``, 2) more rounds,
        each sending the previous answer back with the error quoted, then ``SchemaError``.
        The response returned counts the usage, cost and time of every round.
        """
        schema = opts.schema
        if schema is None:
            return await self._complete_once(messages, opts, retries)
        from nbinfra.llm.schema import SchemaMismatch, repair_messages

        rounds = opts.repair if opts.repair is not None else self.settings.repair
        rounds = 2 if rounds is None else rounds
        sent = messages
        answers: list[LLMResponse] = []
        while True:
            response = await self._complete_once(sent, opts, retries)
            answers.append(response)
            try:
                parsed = schema.parse(response.content)
            except SchemaMismatch as mismatch:
                if len(answers) > rounds:
                    raise self._schema_error(opts, answers, mismatch.detail) from None
                sent = repair_messages(sent, response.content, mismatch.detail, schema)
                continue
            return _combined(answers, parsed)

    def parse_answer(self, response: LLMResponse, opts: CallOptions) -> LLMResponse:
        """``response`` (a stored one, say) with ``parsed`` set from ``opts.schema``;
        ``SchemaError`` when its text does not match."""
        from nbinfra.llm.schema import SchemaMismatch

        if opts.schema is None:
            return response
        try:
            response.parsed = opts.schema.parse(response.content)
        except SchemaMismatch as mismatch:
            raise self._schema_error(opts, [response], mismatch.detail) from None
        return response

    async def _complete_once(
        self, messages: list[Message], opts: CallOptions, retries: bool
    ) -> LLMResponse:
        await self._ensure_client()
        start = time.perf_counter()
        call = self._with_retries if retries else self._attempt
        done = await call(lambda: self._complete(messages, opts), self._call_timeout(opts))
        return self._finish(
            messages,
            opts,
            done.content,
            model=done.model,
            finish_reason=done.finish_reason,
            usage=done.usage,
            latency=time.perf_counter() - start,
            ttft=None,
            raw=done.raw,
        )

    def _schema_error(
        self, opts: CallOptions, answers: list[LLMResponse], detail: str
    ) -> SchemaError:
        schema = opts.schema
        assert schema is not None
        last = answers[-1]
        tries = "once" if len(answers) == 1 else f"{len(answers)} times"
        fix = "raise repair=" if len(answers) == 1 else "loosen the schema, raise repair="
        return SchemaError(
            f"{self.kind}:{opts.model} answered {tries} without matching {schema.name}: "
            f"{detail}; {fix} or try another model (the raw answer is error.raw).",
            provider=self.kind,
            raw=last.content,
            schema=schema.name,
            detail=detail,
            response=_combined(answers, None),
        )

    async def embed(
        self, texts: str | Sequence[str], *, model: str | None = None
    ) -> list[list[float]]:
        """Embedding vectors, one per text (providers that offer embeddings)."""
        if not _loop.in_loop_thread():
            return await _loop.run_async(self.embed(texts, model=model))
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items:
            return []
        chosen = model or self.settings.embedding_model or self.default_embedding_model
        if not chosen:
            raise LLMError(
                f"{self.kind} offers no embeddings here; set llm.providers.{self.kind}."
                "embedding_model or use a provider that has them (openai, ollama).",
                provider=self.kind,
            )
        await self._ensure_client()
        return await self._with_retries(lambda: self._embed(items, chosen), self.timeout)

    def request_key(self, messages: Sequence[Message], opts: CallOptions) -> dict[str, Any]:
        """The request as a response store sees it (interfaces.md)."""
        return {
            "provider": self.kind,
            "model": opts.model,
            "messages": [m.to_dict() for m in messages],
            "options": opts.to_dict(),
        }

    async def _lookup(self, request: dict[str, Any]) -> LLMResponse | None:
        store = self.response_store
        if store is None or store.mode not in ("cache", "replay"):
            return None
        hit = await store.get(request)
        if hit is None and store.mode == "replay":
            raise ReplayMissError(
                f"Replay mode: no recorded response for this {self.kind}:{request['model']} "
                "request; record it first (mode 'record') or turn replay off.",
                provider=self.kind,
            )
        if hit is not None:
            hit.cached = True
        return hit

    async def _remember(self, request: dict[str, Any], response: LLMResponse) -> None:
        store = self.response_store
        if store is not None and store.mode in ("cache", "record"):
            await store.put(request, response)

    def partial_response(
        self, prompt: MessagesLike, content: str, *, latency: float = 0.0, **options: Any
    ) -> LLMResponse:
        """What an interrupted stream of ``prompt`` delivered: ``content``, with estimated
        usage and ``finish_reason="interrupted"``."""
        messages, opts = self.prepare(prompt, options)
        return self._finish(
            messages,
            opts,
            content,
            model=None,
            finish_reason="interrupted",
            usage=None,
            latency=latency,
            ttft=None,
            raw=None,
        )

    def _finish(
        self,
        messages: list[Message],
        opts: CallOptions,
        content: str,
        *,
        model: str | None,
        finish_reason: str | None,
        usage: Usage | None,
        latency: float,
        ttft: float | None,
        raw: Any,
    ) -> LLMResponse:
        if usage is None:
            used_model = model or opts.model
            prompt_count = count_messages(messages, used_model)
            output_count = count_text(content, used_model)
            usage = Usage(prompt_count.tokens, output_count.tokens, exact=False)
        info = self.model_info(model or opts.model)
        cost: float | None = None
        if info.input_price is not None and info.output_price is not None:
            cost = (
                usage.input_tokens * info.input_price + usage.output_tokens * info.output_price
            ) / 1_000_000
        return LLMResponse(
            content=content,
            model=model or opts.model,
            provider=self.kind,
            finish_reason=finish_reason,
            usage=usage,
            latency=latency,
            time_to_first_token=ttft,
            cost=cost,
            raw=raw,
            options=opts.to_dict(),
        )


def _combined(answers: list[LLMResponse], parsed: Any) -> LLMResponse:
    """The last answer, with ``parsed`` and the usage, cost and time of every round."""
    last = answers[-1]
    if len(answers) == 1:
        last.parsed = parsed
        return last
    usage = Usage(
        sum(a.usage.input_tokens for a in answers),
        sum(a.usage.output_tokens for a in answers),
        exact=all(a.usage.exact for a in answers),
        cached=all(a.usage.cached for a in answers),
    )
    costs = [a.cost for a in answers]
    cost = None if any(c is None for c in costs) else sum(c for c in costs if c is not None)
    return replace(
        last,
        usage=usage,
        cost=cost,
        latency=sum(a.latency for a in answers),
        cached=all(a.cached for a in answers),
        parsed=parsed,
        repairs=len(answers) - 1,
    )
