"""``BaseLLMProvider``: everything providers share, so each one only speaks its SDK.

A provider subclass implements a handful of hooks (``_create_client``, ``_check_model``,
``_complete``, ``_stream``, optionally ``_embed``) and the table of its error boundary,
``error_map`` (its SDK's exception types -> the tree in ``nbinfra.errors``; see
``nbinfra.llm.boundary``). The base adds, the same way for every provider:

- option checking (model, temperature, max_tokens, top_p, stop, seed, response_format);
- our retry policy (``RetryPolicy``: explicit stop, ``Retry-After`` honoured) with the
  SDK's own retries off, and a timeout per call;
- timing (latency, time to first token), usage (estimated when the provider does not
  report it), cost from configured prices;
- streams that end with exactly one final event carrying the whole response; when a
  stream breaks, the error's ``partial`` keeps the text received so far;
- the response-store hook (cache / record / replay) of the notebook layer.

Adding a provider: subclass, set ``kind``, ``env_key`` (or ``needs_key = False``),
``default_model`` (and ``default_embedding_model`` if it embeds); implement the hooks
below, importing the SDK inside ``_create_client`` only, passing it our timeouts and
turning its retries off; map its exception types in ``error_map`` (``nbinfra.llm.http_errors``
has the status mapping and the Stainless-SDK table); register the class (a built-in's row
in ``registry.BUILTINS``, a plugin's entry point in ``nbinfra.llms``). Test it with the
SDK against a ``WireFormat`` in ``nbinfra.testing_llm``.

The class is assembled from one module per job: ``_core`` (attributes, settings,
options, hooks), ``_client`` (the one SDK client on nbinfra's loop, retries), ``_responses``
(``generate``, ``embed``, usage and cost, the response store) and this one (streams).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, cast

from nbinfra import _loop
from nbinfra.errors import InvalidOptionError, LLMError
from nbinfra.llm._core import ProviderCore
from nbinfra.llm._responses import ResponseProvider
from nbinfra.llm.boundary import boundary
from nbinfra.llm.calls import (
    OPTION_NAMES,
    CallOptions,
    Completion,
    Delta,
    ResponseStore,
    RetryPolicy,
    estimate_messages,
    estimate_text,
)
from nbinfra.llm.types import LLMResponse, MessagesLike, StreamChunk, Usage
from nbinfra.logs import get_logger

__all__ = [
    "OPTION_NAMES",
    "BaseLLMProvider",
    "CallOptions",
    "Completion",
    "Delta",
    "ProviderCore",
    "ResponseStore",
    "RetryPolicy",
    "estimate_messages",
    "estimate_text",
]

log = get_logger(__name__)


class BaseLLMProvider(ResponseProvider):
    """One LLM provider (a kind) bound to a default model and its settings.

    Create through ``LLMFactory.get_llm``; ``await initialize()`` checks the key, that
    the service answers and the model exists, and learns the context window. ``generate``
    and the streams work without it (the client is created on first use).
    """

    async def amap(self, data: Any, template: str | None = None, **options: Any) -> Any:
        """``map`` in the core: one prompt per row, at the provider's limits, resumable;
        returns a DataFrame aligned to ``data``. See ``nbinfra.llm.map``."""
        from nbinfra.llm.map import amap

        return await amap(self, data, template, **options)

    def stream_generate(self, prompt: MessagesLike, **options: Any) -> AsyncGenerator[str, None]:
        """Text deltas as they arrive (the seed's ``print(chunk, end="")`` loop).

        An async generator, used as ``async for chunk in llm.stream_generate(p)``. The
        final response is cached or recorded like ``generate``'s; ``stream_events`` also
        yields it.
        """
        # The stream itself, not a generator around it: one layer less per chunk.
        stream = cast("AsyncGenerator[str, None]", self._run_stream(prompt, options, final=False))
        return stream if _loop.in_loop_thread() else _loop.iterate_async(stream)

    async def stream_events(
        self, prompt: MessagesLike, **options: Any
    ) -> AsyncIterator[StreamChunk]:
        """Text chunks, then exactly one ``final=True`` chunk whose response has usage.

        Errors before any text are retried like ``generate``; once text has arrived, a
        failure is raised with ``error.partial`` holding what was received.
        """
        if not _loop.in_loop_thread():  # the client lives on nbinfra's loop
            bridged = _loop.iterate_async(self.stream_events(prompt, **options))
            async with contextlib.aclosing(bridged) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        # aclosing: a consumer that stops early closes the provider's stream (and its
        # HTTP connection) now, not whenever the generator is garbage-collected.
        async with contextlib.aclosing(self._run_stream(prompt, options, final=True)) as items:
            async for item in items:
                if item.__class__ is str:
                    yield StreamChunk(text=item)
                else:
                    yield StreamChunk(final=True, response=cast(LLMResponse, item))

    async def _run_stream(
        self, prompt: MessagesLike, options: Mapping[str, Any], *, final: bool
    ) -> AsyncGenerator[str | LLMResponse, None]:
        """Text deltas as plain strings, then (``final``) the whole response.

        The per-chunk path is kept short: a provider's ``_stream`` yields plain ``str``
        for text-only chunks, and only end-of-stream facts come as a ``Delta``.
        """
        messages, opts = self.prepare(prompt, options)
        if opts.schema is not None:
            # A stream shows text as it arrives; a schema's answer is checked (and maybe
            # repaired) as a whole, which a stream cannot undo.
            raise InvalidOptionError(
                f"schema= works with generate(), not with streams; call "
                f"generate(prompt, schema={opts.schema.name}) (%%llm --schema does)."
            )
        request = self.request_key(messages, opts)
        hit = await self._lookup(request)
        if hit is not None:
            if hit.content:
                yield hit.content
            if final:
                yield hit
            return
        await self._ensure_client()
        parts: list[str] = []
        append = parts.append
        finish_reason: str | None = None
        usage: Usage | None = None
        model: str | None = None
        last_raw: Any = None
        attempt = 0
        start = time.perf_counter()
        ttft: float | None = None
        while True:
            stream = self._stream(messages, opts)
            try:
                with boundary(self):
                    async for delta in stream:
                        if delta.__class__ is str:
                            text = delta
                        else:
                            assert isinstance(delta, Delta)
                            if delta.finish_reason:
                                finish_reason = delta.finish_reason
                            if delta.usage is not None:
                                usage = delta.usage
                            if delta.model:
                                model = delta.model
                            if delta.raw is not None:
                                last_raw = delta.raw
                            text = delta.text
                            if not text:
                                continue
                        if ttft is None:
                            ttft = time.perf_counter() - start
                        append(text)
                        yield text
                break
            except LLMError as error:
                if parts:
                    error.partial = self._finish(
                        messages,
                        opts,
                        "".join(parts),
                        model=model,
                        finish_reason="error",
                        usage=None,
                        latency=time.perf_counter() - start,
                        ttft=ttft,
                        raw=last_raw,
                    )
                    raise
                attempt += 1
                await self._back_off(attempt, error)
            finally:
                await _aclose(stream)
        response = self._finish(
            messages,
            opts,
            "".join(parts),
            model=model,
            finish_reason=finish_reason,
            usage=usage,
            latency=time.perf_counter() - start,
            ttft=ttft,
            raw=last_raw,
        )
        await self._remember(request, response)
        if final:
            yield response


async def _aclose(stream: AsyncIterator[Any]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception as exc:  # noqa: BLE001 - a broken stream may fail to close
            log.debug("closing a stream failed: %r", exc)
