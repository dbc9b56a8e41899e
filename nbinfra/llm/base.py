"""``BaseLLMProvider``: everything providers share, so each one only speaks its SDK.

A provider subclass implements a handful of hooks (``_create_client``, ``_check_model``,
``_complete``, ``_stream``, optionally ``_embed``) and ONE error boundary, ``_map_error``,
that turns its SDK's exceptions into the tree in ``nbinfra.errors``. The base adds, the
same way for every provider:

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
turning its retries off; map its exceptions in ``_map_error`` (``nbinfra.llm.http_errors``
has the status mapping and the Stainless-SDK mapping); decorate the class with
``@LLMRegistry.register(LLMProvider.X)`` and add its row to ``registry.BUILTINS``.
Test it with the SDK against a ``WireFormat`` in ``nbinfra.testing_llm``.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar, cast

from nbinfra._deadline import within
from nbinfra._secrets import Secret, mask_url
from nbinfra.errors import (
    AuthenticationError,
    ConfigError,
    LLMError,
    ProviderTimeout,
    ReplayMissError,
    UnknownOptionError,
)
from nbinfra.llm.calls import (
    CALL_ONLY,
    OPTION_NAMES,
    CallOptions,
    Completion,
    Delta,
    ResponseStore,
    RetryPolicy,
    check_option,
    count_messages,
    count_text,
    estimate_messages,
    estimate_text,
)
from nbinfra.llm.http_errors import generic_error
from nbinfra.llm.settings import (
    LLMSettings,
    ModelInfo,
    ProviderSettings,
    key_variable,
    with_env_key,
)
from nbinfra.llm.types import (
    LLMResponse,
    Message,
    MessagesLike,
    StreamChunk,
    TokenCount,
    Usage,
    as_messages,
)
from nbinfra.logs import get_logger

if TYPE_CHECKING:
    from nbinfra.session import Session

__all__ = [
    "OPTION_NAMES",
    "BaseLLMProvider",
    "CallOptions",
    "Completion",
    "Delta",
    "ResponseStore",
    "RetryPolicy",
    "estimate_messages",
    "estimate_text",
]

T = TypeVar("T")
log = get_logger(__name__)


# -- the base class -------------------------------------------------------------------
class BaseLLMProvider(ABC):
    """One LLM provider (a kind) bound to a default model and its settings.

    Create through ``LLMFactory.get_llm``; ``await initialize()`` checks the key, that
    the service answers and the model exists, and learns the context window. ``generate``
    and the streams work without it (the client is created on first use).
    """

    kind: ClassVar[str] = ""
    env_key: ClassVar[str | None] = None  # the API-key variable read when none is configured
    needs_key: ClassVar[bool] = True
    # Place in the default choice (DESIGN.md section 5), lowest first; None: never chosen by
    # itself. A keyed kind is chosen when its key is set; a keyless one when it answers at
    # ``default_base_url`` (or its configured base URL).
    default_rank: ClassVar[int | None] = None
    default_base_url: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    default_embedding_model: ClassVar[str] = ""
    stand_in: ClassVar[bool] = False  # True for the offline fake
    # Provider-specific settings accepted under llm.providers.<kind> (land in ``extra``).
    extra_settings: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        model: str | None = None,
        *,
        settings: ProviderSettings | None = None,
        name: str | None = None,
        session: Session | None = None,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        max_retries: int | None = None,
        response_store: ResponseStore | None = None,
        **options: Any,
    ) -> None:
        if settings is None:
            settings = _settings_for(self.kind, session)
        updates: dict[str, Any] = {}
        if api_key is not None:
            updates["api_key"] = api_key if isinstance(api_key, Secret) else Secret(api_key)
        if base_url is not None:
            updates["base_url"] = base_url
        if timeout is not None:
            updates["timeout"] = float(timeout)
        if connect_timeout is not None:
            updates["connect_timeout"] = float(connect_timeout)
        if max_retries is not None:
            updates["max_retries"] = int(max_retries)
        self.settings = replace(settings, **updates) if updates else settings
        self._check_extra()
        self.name = name or self.kind
        self._session = session
        self._store = response_store
        self._model = model or self.settings.model or self.default_model
        self._defaults = self._check_options({**self.settings.options, **options}, where="")
        self._defaults.pop("model", None)
        # One SDK client per event loop: clients hold connections bound to their loop.
        self._clients: dict[asyncio.AbstractEventLoop | None, Any] = {}
        self._context_window: int | None = None
        self._initialized = False
        s = self.settings
        self.retry = RetryPolicy(
            max_retries=s.max_retries if s.max_retries is not None else 2,
            backoff=s.retry_backoff if s.retry_backoff is not None else 0.5,
            max_wait=s.retry_max_wait if s.retry_max_wait is not None else 30.0,
        )

    @classmethod
    def has_credentials(cls, settings: ProviderSettings) -> bool:
        """True when ``settings`` hold what this kind needs to make a call (its key)."""
        return bool(settings.api_key) or not cls.needs_key

    # -- public properties ---------------------------------------------------------
    @property
    def provider(self) -> str:
        return self.kind

    @property
    def model(self) -> str:
        return self._model

    @property
    def timeout(self) -> float:
        return self.settings.timeout if self.settings.timeout is not None else 60.0

    @property
    def connect_timeout(self) -> float:
        ct = self.settings.connect_timeout
        return ct if ct is not None else min(5.0, self.timeout)

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def api_key_env(self) -> str:
        return key_variable(self.settings, type(self))

    @property
    def context_window(self) -> int | None:
        """Learned by ``initialize()``, else from ``models:`` in the configuration."""
        if self._context_window is not None:
            return self._context_window
        return self.model_info(self._model).context_window

    @property
    def initialized(self) -> bool:
        return self._initialized

    @property
    def response_store(self) -> ResponseStore | None:
        """The store given to this provider, else the session's ``llm.response_store``."""
        if self._store is not None:
            return self._store
        if self._session is not None:
            found: ResponseStore | None = self._session.state.get("llm.response_store")
            return found
        return None

    @response_store.setter
    def response_store(self, store: ResponseStore | None) -> None:
        self._store = store

    def model_info(self, model: str | None = None) -> ModelInfo:
        """Configured facts about ``model`` (exact name, else the longest matching prefix)."""
        name = model or self._model
        models = self.settings.models
        if name in models:
            return models[name]
        prefixes = [k for k in models if name.startswith(k)]
        return models[max(prefixes, key=len)] if prefixes else ModelInfo()

    def __repr__(self) -> str:
        url = f" base_url={mask_url(self.base_url)}" if self.base_url else ""
        named = f" name={self.name}" if self.name != self.kind else ""
        tag = " (offline stand-in)" if self.stand_in else ""
        return f"<{type(self).__name__} {self.kind}:{self._model}{named}{url}{tag}>"

    # -- lifecycle -----------------------------------------------------------------
    async def initialize(self) -> None:
        """Check credentials and reachability, and learn the model's context window."""
        self._require_key()
        await self._ensure_client()
        window = await self._with_retries(self._check_model, self.timeout)
        if window:
            self._context_window = window
        self._initialized = True
        log.info(
            "llm %s ready: model=%s context_window=%s%s",
            self.name,
            self._model,
            self.context_window,
            f" base_url={mask_url(self.base_url)}" if self.base_url else "",
        )

    async def aclose(self) -> None:
        """Close the SDK clients (idempotent); those of other running loops close there."""
        clients, self._clients = self._clients, {}
        self._initialized = False
        here = _running_loop()
        for loop, client in clients.items():
            if loop is here or loop is None:
                await self._close_client(client)
            elif loop.is_running() and not loop.is_closed():
                future = asyncio.run_coroutine_threadsafe(self._close_client(client), loop)
                try:
                    await asyncio.wait_for(asyncio.wrap_future(future), 5.0)
                except Exception as exc:  # noqa: BLE001 - closing must not fail the caller
                    log.debug("closing a client on another loop failed: %r", exc)

    async def __aenter__(self) -> BaseLLMProvider:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- generation ----------------------------------------------------------------
    async def generate(self, prompt: MessagesLike, **options: Any) -> LLMResponse:
        """One completion for a prompt or a list of messages."""
        messages, opts = self.prepare(prompt, options)
        request = self.request_key(messages, opts)
        hit = await self._lookup(request)
        if hit is not None:
            return hit
        await self._ensure_client()
        start = time.perf_counter()
        done = await self._with_retries(
            lambda: self._complete(messages, opts), self._call_timeout(opts)
        )
        response = self._finish(
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
        await self._remember(request, response)
        return response

    def stream_generate(self, prompt: MessagesLike, **options: Any) -> AsyncGenerator[str, None]:
        """Text deltas as they arrive (the seed's ``print(chunk, end="")`` loop).

        An async generator, used as ``async for chunk in llm.stream_generate(p)``. The
        final response is cached or recorded like ``generate``'s; ``stream_events`` also
        yields it.
        """
        # The stream itself, not a generator around it: one layer less per chunk.
        return cast("AsyncGenerator[str, None]", self._run_stream(prompt, options, final=False))

    async def stream_events(
        self, prompt: MessagesLike, **options: Any
    ) -> AsyncIterator[StreamChunk]:
        """Text chunks, then exactly one ``final=True`` chunk whose response has usage.

        Errors before any text are retried like ``generate``; once text has arrived, a
        failure is raised with ``error.partial`` holding what was received.
        """
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
            except Exception as exc:  # noqa: BLE001 - translated and re-raised below
                error = self._translate(exc)
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
                    _raise(error, exc)
                attempt += 1
                wait = self.retry.delay(attempt, error)
                if wait is None:
                    _raise(error, exc)
                self._log_retry(attempt, wait, error)
                await asyncio.sleep(wait)
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

    async def embed(
        self, texts: str | Sequence[str], *, model: str | None = None
    ) -> list[list[float]]:
        """Embedding vectors, one per text (providers that offer embeddings)."""
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

    def count_tokens(self, messages: MessagesLike, model: str | None = None) -> TokenCount:
        """Tokens the prompt uses, labelled exact or estimated."""
        return count_messages(as_messages(messages), model or self._model)

    # -- hooks for providers -------------------------------------------------------
    @abstractmethod
    def _create_client(self) -> Any:
        """Build the SDK client (import the SDK here; turn its retries off)."""

    async def _close_client(self, client: Any) -> None:
        for name in ("aclose", "close"):
            method = getattr(client, name, None)
            if method is not None:
                result = method()
                if asyncio.iscoroutine(result):
                    await result
                return

    @abstractmethod
    async def _check_model(self) -> int | None:
        """Reach the service with the key, check the model; return its window if known."""

    @abstractmethod
    async def _complete(self, messages: list[Message], opts: CallOptions) -> Completion:
        """One non-streamed completion (SDK exceptions propagate to ``_map_error``)."""

    @abstractmethod
    def _stream(self, messages: list[Message], opts: CallOptions) -> AsyncIterator[str | Delta]:
        """A streamed completion (SDK exceptions propagate).

        Yield a non-empty ``str`` for a chunk that only carries text (the fast path), and
        a ``Delta`` for one that carries a finish reason, usage, the model or raw data.
        """

    async def _embed(self, texts: list[str], model: str) -> list[list[float]]:
        raise LLMError(f"{self.kind} does not offer embeddings.", provider=self.kind)

    def _map_error(self, exc: BaseException) -> LLMError | None:
        """THE boundary: this provider's SDK exception -> our error (None: not ours)."""
        return None

    # -- helpers for providers -----------------------------------------------------
    def auth_error(self, detail: str = "") -> AuthenticationError:
        """The 'key rejected' error, naming the variable to set."""
        why = f" ({detail})" if detail else ""
        return AuthenticationError(
            f"{self.kind} rejected the API key{why}: check {self.api_key_env} "
            f"(or llm.providers.{self.kind}.api_key in resources/application-llm.yaml).",
            provider=self.kind,
        )

    def timeout_error(self, seconds: float | None = None) -> ProviderTimeout:
        limit = seconds if seconds is not None else self.timeout
        return ProviderTimeout(
            f"{self.kind} did not answer within {limit:g} s; raise "
            f"llm.providers.{self.kind}.timeout or pass timeout=... to the call.",
            provider=self.kind,
        )

    def api_key(self) -> str:
        """The plain key, for the one place that hands it to the SDK."""
        return self.settings.api_key.reveal()

    def prepare(
        self, prompt: MessagesLike, options: Mapping[str, Any]
    ) -> tuple[list[Message], CallOptions]:
        """Messages and checked options (instance defaults, then per-call values)."""
        checked = self._check_options(dict(options), where=" for this call")
        system = checked.pop("system", None)
        messages = as_messages(prompt, system=system)
        if not messages:
            raise ValueError("The prompt is empty; pass a string or a list of messages.")
        merged = {**self._defaults, **checked}
        merged.pop("system", None)
        model = merged.pop("model", None) or self._model
        if not model:
            raise ValueError(
                f"No model for {self.kind}: pass model=... or set "
                f"llm.providers.{self.kind}.model in resources/application-llm.yaml."
            )
        return messages, CallOptions(model=model, **merged)

    def request_key(self, messages: Sequence[Message], opts: CallOptions) -> dict[str, Any]:
        """The request as a response store sees it (interfaces.md)."""
        return {
            "provider": self.kind,
            "model": opts.model,
            "messages": [m.to_dict() for m in messages],
            "options": opts.to_dict(),
        }

    # -- internals -----------------------------------------------------------------
    def _check_options(self, options: dict[str, Any], *, where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in options.items():
            if key not in OPTION_NAMES and key not in CALL_ONLY:
                allowed = ", ".join((*OPTION_NAMES, *CALL_ONLY))
                close = difflib.get_close_matches(key, [*OPTION_NAMES, *CALL_ONLY], n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise UnknownOptionError(f"Unknown LLM option '{key}'{where}; use {allowed}.{hint}")
            if value is None:
                continue
            out[key] = check_option(key, value)
        return out

    def _check_extra(self) -> None:
        for key in self.settings.extra:
            if key in self.extra_settings:
                continue
            known = sorted(
                {f.name for f in fields(ProviderSettings)} - {"extra"} | self.extra_settings
            )
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"llm.providers.{self.kind}.{key} is not a setting of {self.kind}; "
                f"use {', '.join(known)}.{hint}"
            )

    def _require_key(self) -> None:
        if self.needs_key and not self.settings.api_key:
            raise AuthenticationError(
                f"No API key for {self.kind}: set {self.api_key_env} or "
                f"llm.providers.{self.kind}.api_key in resources/application-llm.yaml.",
                provider=self.kind,
            )

    async def _ensure_client(self) -> Any:
        return self.client

    @property
    def client(self) -> Any:
        """The SDK client for the running event loop (created on first use).

        A provider used from a notebook's loop and from nbinfra's background loop gets
        one client on each, since SDK clients hold connections bound to their loop.
        """
        loop = _running_loop()
        found = self._clients.get(loop)
        if found is None:
            self._require_key()
            found = self._clients[loop] = self._create_client()
            log.info(
                "llm %s: client ready (%s, timeout %g s, connect %g s, retries %d)",
                self.name,
                mask_url(self.base_url) if self.base_url else "default endpoint",
                self.timeout,
                self.connect_timeout,
                self.retry.max_retries,
            )
        return found

    def _call_timeout(self, opts: CallOptions) -> float:
        return opts.timeout if opts.timeout is not None else self.timeout

    async def _with_retries(self, call: Callable[[], Awaitable[T]], timeout: float) -> T:
        # The outer guard sits just past the SDK's own timeout, so the SDK's error (with
        # its details) usually wins; it only matters for SDKs that ignore their timeout.
        guard = timeout + self.connect_timeout
        attempt = 0
        while True:
            try:
                try:
                    return await within(call(), guard)
                except (TimeoutError, asyncio.TimeoutError) as exc:
                    if isinstance(exc, LLMError):
                        raise
                    raise self.timeout_error(timeout) from exc
                except LLMError:
                    raise
                except Exception as exc:
                    translated = self._translate(exc)
                    if isinstance(translated, ProviderTimeout) and timeout != self.timeout:
                        translated = self.timeout_error(timeout)  # name the per-call limit
                    raise translated from exc
            except LLMError as error:
                attempt += 1
                wait = self.retry.delay(attempt, error)
                if wait is None:
                    raise
                self._log_retry(attempt, wait, error)
                await asyncio.sleep(wait)

    def _translate(self, exc: BaseException) -> LLMError:
        if isinstance(exc, LLMError):
            return exc
        mapped = self._map_error(exc)
        if mapped is not None:
            return mapped
        return generic_error(self, exc)

    def _log_retry(self, attempt: int, wait: float, error: LLMError) -> None:
        log.warning(
            "llm %s: %s; retry %d/%d in %.2f s",
            self.name,
            type(error).__name__,
            attempt,
            self.retry.max_retries,
            wait,
        )

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


# -- module helpers -------------------------------------------------------------------
def _raise(error: LLMError, cause: BaseException) -> NoReturn:
    """Raise ``error`` from ``cause`` (an error that is already ours keeps its own cause)."""
    if error is cause:
        raise error
    raise error from cause


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _settings_for(kind: str, session: Session | None) -> ProviderSettings:
    from nbinfra.llm import LLMRegistry
    from nbinfra.session import session as default_session

    current = session if session is not None else default_session()
    conf = current.settings
    return with_env_key(LLMSettings.load(conf).provider(kind), LLMRegistry.get(kind), conf)


async def _aclose(stream: AsyncIterator[Any]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception as exc:  # noqa: BLE001 - a broken stream may fail to close
            log.debug("closing a stream failed: %r", exc)
