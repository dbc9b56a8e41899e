"""Typed settings for the ``llm:`` section of ``application-llm.yaml``.

Pure Python (no SDK). ``LLMSettings.load(settings)`` validates the section; each provider
reads its own ``ProviderSettings`` (defaults from the ``llm:`` level, overridden per
provider), and per-model facts (context window, prices) live under ``models:``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from nbinfra._bounds import AtLeastOne, NonNegativeFloat, NonNegativeInt, PositiveFloat
from nbinfra._secrets import MaskedRepr, Secret, remember
from nbinfra.config import Settings

if TYPE_CHECKING:
    from nbinfra.llm._core import ProviderCore

__all__ = ["InstanceSettings", "LLMSettings", "ModelInfo", "ProviderSettings", "with_env_key"]


@dataclass
class ModelInfo:
    """What we know about one model. Prices are per million tokens."""

    context_window: AtLeastOne | None = None
    max_output_tokens: AtLeastOne | None = None
    input_price: NonNegativeFloat | None = None
    output_price: NonNegativeFloat | None = None
    # Rate limits of this model (override the provider's): requests / tokens per minute.
    rpm: PositiveFloat | None = None
    tpm: PositiveFloat | None = None


@dataclass
class ProviderSettings(MaskedRepr):
    """Settings of one provider kind; unknown keys land in ``extra`` for the provider."""

    __extra_field__ = "extra"

    api_key: Secret = field(default_factory=lambda: Secret(""))
    api_key_env: str = ""  # the variable named in "set X" messages (default: the provider's)
    base_url: str = ""
    model: str = ""
    embedding_model: str = ""
    timeout: PositiveFloat | None = None  # whole call, and longest silence inside a stream
    connect_timeout: PositiveFloat | None = None
    max_retries: NonNegativeInt | None = None
    retry_backoff: NonNegativeFloat | None = None
    retry_max_wait: NonNegativeFloat | None = None
    repair: NonNegativeInt | None = None  # repair rounds of a schema= call (default 2)
    # Rate limits (per model unless a model under ``models:`` sets its own): requests and
    # tokens per minute, enforced client-side by ``map``; empty: no limit.
    rpm: PositiveFloat | None = None
    tpm: PositiveFloat | None = None
    models: dict[str, ModelInfo] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # default per-call options
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class InstanceSettings(MaskedRepr):
    """A named, configured LLM (``llm.instances.fast_llm``): a provider, a model, options."""

    __extra_field__ = "options"

    provider: str = ""
    model: str = ""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class LLMSettings(MaskedRepr):
    """The whole ``llm:`` section."""

    default: str = ""
    timeout: PositiveFloat = 60.0
    connect_timeout: PositiveFloat = 5.0
    max_retries: NonNegativeInt = 2
    retry_backoff: NonNegativeFloat = 0.5
    retry_max_wait: NonNegativeFloat = 30.0
    repair: NonNegativeInt = 2  # rounds a schema= answer that does not match gets to repair
    currency: str = "USD"
    providers: dict[str, ProviderSettings] = field(default_factory=dict)
    instances: dict[str, InstanceSettings] = field(default_factory=dict)

    @classmethod
    def load(cls, settings: Settings) -> LLMSettings:
        return settings.section("llm", cls)

    def provider(self, kind: str) -> ProviderSettings:
        """The settings of ``kind`` with the ``llm:``-level defaults filled in."""
        found = self.providers.get(kind) or ProviderSettings()
        merged = ProviderSettings(
            api_key=found.api_key,
            api_key_env=found.api_key_env,
            base_url=found.base_url,
            model=found.model,
            embedding_model=found.embedding_model,
            timeout=found.timeout if found.timeout is not None else self.timeout,
            connect_timeout=(
                found.connect_timeout if found.connect_timeout is not None else self.connect_timeout
            ),
            max_retries=found.max_retries if found.max_retries is not None else self.max_retries,
            retry_backoff=(
                found.retry_backoff if found.retry_backoff is not None else self.retry_backoff
            ),
            retry_max_wait=(
                found.retry_max_wait if found.retry_max_wait is not None else self.retry_max_wait
            ),
            repair=found.repair if found.repair is not None else self.repair,
            rpm=found.rpm,
            tpm=found.tpm,
            models=dict(found.models),
            options=dict(found.options),
            extra=dict(found.extra),
        )
        return merged


def key_variable(conf: ProviderSettings, cls: type[ProviderCore]) -> str:
    """The variable that holds ``cls``'s API key: ``api_key_env``, else the class's."""
    return conf.api_key_env or cls.env_key or f"{cls.kind.upper()}_API_KEY"


def with_env_key(
    conf: ProviderSettings, cls: type[ProviderCore], settings: Settings
) -> ProviderSettings:
    """``conf`` with its API key read from the environment when none is configured.

    The variable is ``llm.providers.<kind>.api_key_env``, else the class's ``env_key``: a
    kind registered by a plugin finds ``COHERE_API_KEY`` with no line in any file. The
    read is recorded, so an instance is rebuilt when the variable changes.
    """
    if conf.api_key or not (conf.api_key_env or cls.env_key):
        return conf
    value = settings.env(key_variable(conf, cls))
    if not value:
        return conf
    remember(value)
    return replace(conf, api_key=Secret(value))
