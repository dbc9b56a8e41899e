"""``ProviderCore``: what an LLM provider is, before it talks to anyone.

Its kind and class attributes (what the registry and the default choice read), its
settings, model and options (checked against ``OPTION_NAMES``), the hooks a provider
implements, and its error boundary's table (``error_map``, see ``nbinfra.llm.boundary``).
``BaseLLMProvider`` (``nbinfra.llm.base``) adds the client, the calls and the streams.
"""

from __future__ import annotations

import asyncio
import difflib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any, ClassVar

from nbinfra._secrets import Secret, mask_url
from nbinfra.errors import (
    AuthenticationError,
    ConfigError,
    LLMError,
    ProviderTimeout,
    UnknownOptionError,
)
from nbinfra.llm.boundary import ErrorMap, translate
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
)
from nbinfra.llm.settings import (
    LLMSettings,
    ModelInfo,
    ProviderSettings,
    key_variable,
    with_env_key,
)
from nbinfra.llm.types import Message, MessagesLike, TokenCount, as_messages

if TYPE_CHECKING:
    from nbinfra.session import Session

__all__ = ["ProviderCore"]


class ProviderCore(ABC):
    """The attributes, settings, options, hooks and error table of one provider kind."""

    kind: ClassVar[str] = ""
    env_key: ClassVar[str | None] = None  # the API-key variable read when none is configured
    needs_key: ClassVar[bool] = True
    # Place in the default choice (DESIGN.md section 5), lowest first; None: never chosen by
    # itself. A keyed kind is chosen when its key is set; a keyless one when it answers at
    # ``default_base_url`` (or its configured base URL).
    default_rank: ClassVar[int | None] = None
    default_base_url: ClassVar[str] = ""
    public_endpoint: ClassVar[str] = ""  # what errors name when no base URL is set
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
        # One SDK client, used on nbinfra's loop only (see ClientProvider.client).
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
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
    def where(self) -> str:
        """The endpoint as errors name it (masked)."""
        url = self.base_url or self.default_base_url
        return mask_url(url) if url else (self.public_endpoint or "the default endpoint")

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

    @abstractmethod
    def _create_client(self) -> Any:
        """Build the SDK client (import the SDK here; turn its retries off)."""

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

    def error_map(self) -> ErrorMap:
        """THE boundary's table: this provider's SDK exception types -> our errors.

        Import the SDK here (only a failed call gets this far). Transport failures shared
        by every SDK (timeouts, sockets, httpx, bad JSON) need no entry: see
        ``nbinfra.llm.boundary``.
        """
        return ErrorMap()

    def translate_error(self, exc: BaseException) -> LLMError:
        """``exc`` as one of our errors, through ``error_map()`` (built once)."""
        table = self.__dict__.get("_error_table")
        if table is None:
            table = self.__dict__["_error_table"] = self.error_map()
        return translate(self, exc, table)

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

    def count_tokens(self, messages: MessagesLike, model: str | None = None) -> TokenCount:
        """Tokens the prompt uses, labelled exact or estimated."""
        return count_messages(as_messages(messages), model or self._model)


def _settings_for(kind: str, session: Session | None) -> ProviderSettings:
    from nbinfra.llm import LLMRegistry
    from nbinfra.session import session as default_session

    current = session if session is not None else default_session()
    conf = current.settings
    return with_env_key(LLMSettings.load(conf).provider(kind), LLMRegistry.get(kind), conf)
