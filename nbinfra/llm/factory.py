"""Which provider to build, and building it: ``LLMFactory.get_llm`` and ``provider_statuses``.

``get_llm(x)`` accepts, in this order of interpretation:

- ``None``: the default (DESIGN.md section 5): ``llm.default`` when configured, else the
  first provider whose API key is set, else Ollama if it answers on localhost, else the
  offline ``fake`` stand-in (which announces itself);
- a configured instance name (``llm.instances.fast_llm``: provider, model, options);
- ``"provider:model"`` (``"groq:llama-3.1-8b-instant"``; Ollama tags keep their colon:
  ``"ollama:llama3.1:8b"``);
- a provider kind (``"openai"`` or ``LLMProvider.OPENAI``).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from nbinfra._reads import note, unrecorded
from nbinfra._secrets import mask_url
from nbinfra.config import Settings
from nbinfra.errors import UnknownKindError
from nbinfra.llm import LLMProvider, LLMRegistry
from nbinfra.llm.settings import LLMSettings
from nbinfra.logs import get_logger

if TYPE_CHECKING:
    from nbinfra.llm.base import BaseLLMProvider
    from nbinfra.session import Session

__all__ = [
    "KEY_ORDER",
    "LLMFactory",
    "ProviderStatus",
    "Selection",
    "get_llm",
    "provider_statuses",
    "resolve",
    "select_default",
]

log = get_logger(__name__)

# Providers tried for "first whose key is set", in this order.
KEY_ORDER = ("openai", "anthropic", "groq", "google", "azure", "huggingface")
OLLAMA_URL = "http://127.0.0.1:11434"
OLLAMA_PROBE_TIMEOUT = 0.25  # seconds; a notebook must not wait on a missing Ollama
# The llm-level settings every provider inherits (LLMSettings.provider).
_LLM_LEVEL = tuple(
    f"llm.{name}"
    for name in ("timeout", "connect_timeout", "max_retries", "retry_backoff", "retry_max_wait")
)


@dataclass(frozen=True)
class Selection:
    """What ``get_llm`` resolved to, and why (shown by ``%llm list`` and in logs)."""

    kind: str
    model: str | None = None
    name: str | None = None  # a configured instance name, when one was used
    options: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class ProviderStatus:
    """One provider for ``%llm list`` and the picker widget. Never holds a key."""

    provider: str
    default_model: str
    models: list[str]
    key_set: bool
    base_url: str  # masked
    reachable: bool | None  # None: not probed
    available: bool = True  # its SDK imports
    stand_in: bool = False


def _settings(settings: Settings | None, session: Session | None) -> tuple[Settings, Session]:
    from nbinfra.session import session as default_session

    current = session if session is not None else default_session()
    return (settings if settings is not None else current.settings), current


def _key_set(llm: LLMSettings, kind: str) -> bool:
    conf = llm.providers.get(kind)
    if conf is None or not conf.api_key:
        return False
    if kind == "azure":
        return bool(conf.extra.get("endpoint") or conf.base_url)
    return True


def ollama_url(llm: LLMSettings) -> str:
    conf = llm.providers.get("ollama")
    return (conf.base_url if conf is not None and conf.base_url else "") or OLLAMA_URL


def probe(url: str, timeout: float = OLLAMA_PROBE_TIMEOUT) -> bool:
    """True when something accepts TCP connections at ``url``'s host and port."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def select_default(llm: LLMSettings, *, probe_ollama: bool = True) -> Selection:
    """DESIGN.md section 5: configured default, first key set, local Ollama, else fake."""
    if llm.default.strip():
        chosen = resolve(llm.default.strip(), llm)
        return Selection(chosen.kind, chosen.model, chosen.name, chosen.options, "llm.default")
    for kind in KEY_ORDER:
        if _key_set(llm, kind) and kind in LLMRegistry:
            return Selection(kind, reason=f"its API key is set ({kind})")
    if probe_ollama and "ollama" in LLMRegistry and probe(ollama_url(llm)):
        return Selection("ollama", reason="Ollama answers on localhost")
    return Selection("fake", reason="no key set and no local Ollama: offline stand-in")


def resolve(spec: str | LLMProvider, llm: LLMSettings) -> Selection:
    """A name, ``provider:model`` or kind -> ``Selection`` (no default handling)."""
    if isinstance(spec, LLMProvider):
        return Selection(spec.value, reason="kind")
    text = spec.strip()
    if not text:
        raise UnknownKindError("An LLM spec must not be empty; use 'provider' or 'provider:model'.")
    instance = llm.instances.get(text)
    if instance is not None:
        if not instance.provider:
            raise UnknownKindError(
                f"llm.instances.{text} has no provider; add provider: openai (or another kind)."
            )
        inner = resolve(instance.provider, llm)
        return Selection(
            inner.kind,
            instance.model or inner.model,
            text,
            dict(instance.options),
            f"configured instance '{text}'",
        )
    kind, sep, model = text.partition(":")
    key = kind.strip().lower()
    if sep and model.strip() and key in LLMRegistry:
        return Selection(LLMRegistry.get(key).kind or key, model.strip(), reason="provider:model")
    if text.lower() in LLMRegistry:
        cls = LLMRegistry.get(text)
        return Selection(cls.kind or text.lower(), reason="kind")
    names = sorted(llm.instances)
    listing = f" Configured instances: {', '.join(names)}." if names else ""
    try:
        LLMRegistry.get(key)  # raises UnknownKindError with kinds and a suggestion
    except UnknownKindError as exc:
        raise UnknownKindError(f"{exc}{listing}") from None
    raise UnknownKindError(f"Cannot read LLM spec '{text}'; use 'provider' or 'provider:model'.")


class LLMFactory:
    """The seed's factory: ``LLMFactory.get_llm(LLMProvider.GROQ)``."""

    @staticmethod
    def get_llm(
        provider_or_name: str | LLMProvider | None = None,
        model: str | None = None,
        *,
        settings: Settings | None = None,
        session: Session | None = None,
        **options: Any,
    ) -> BaseLLMProvider:
        """A new provider instance (see the module docstring for what is accepted)."""
        return get_llm(provider_or_name, model, settings=settings, session=session, **options)

    create = get_llm


def get_llm(
    provider_or_name: str | LLMProvider | None = None,
    model: str | None = None,
    *,
    settings: Settings | None = None,
    session: Session | None = None,
    **options: Any,
) -> BaseLLMProvider:
    """A new provider instance; the session supplies settings and the response store."""
    conf, current = _settings(settings, session)
    with unrecorded():  # a provider depends on its own section, not on every provider's
        llm = LLMSettings.load(conf)
    if provider_or_name is None:
        note("llm")  # the default is chosen by looking at every provider's key
        chosen = select_default(llm)
        log.info("llm default: %s (%s)", chosen.kind, chosen.reason)
    else:
        chosen = resolve(provider_or_name, llm)
        spec = str(getattr(provider_or_name, "value", provider_or_name)).strip()
        note(f"llm.providers.{chosen.kind}", f"llm.instances.{spec}", *_LLM_LEVEL)
    cls = LLMRegistry.get(chosen.kind)
    merged = {**chosen.options, **options}
    return cls(
        model or chosen.model,
        settings=llm.provider(chosen.kind),
        name=chosen.name,
        session=current,
        **merged,
    )


def provider_statuses(
    settings: Settings | None = None, *, probe_reachability: bool = False
) -> list[ProviderStatus]:
    """Every known provider with its default model, models, key state and base URL.

    ``probe_reachability=True`` tries a TCP connection to each configured base URL (and
    to Ollama on localhost); otherwise ``reachable`` is ``None``.
    """
    conf, _current = _settings(settings, None)
    llm = LLMSettings.load(conf)
    kinds = sorted(set(LLMRegistry.kinds()) | set(llm.providers))
    out: list[ProviderStatus] = []
    for kind in kinds:
        p = llm.provider(kind)
        available = LLMRegistry.is_available(kind) if kind in LLMRegistry else False
        cls = LLMRegistry.get(kind) if available else None
        default_model = p.model or (cls.default_model if cls is not None else "")
        needs_key = cls.needs_key if cls is not None else True
        base_url = p.base_url or str(p.extra.get("endpoint") or "")
        if kind == "ollama" and not base_url:
            base_url = OLLAMA_URL
        reachable: bool | None = None
        if probe_reachability and base_url:
            reachable = probe(base_url)
        out.append(
            ProviderStatus(
                provider=kind,
                default_model=default_model,
                models=sorted(set(p.models) | ({default_model} if default_model else set())),
                key_set=_key_set(llm, kind) if needs_key else True,
                base_url=mask_url(base_url) if base_url else "",
                reachable=reachable,
                available=available,
                stand_in=bool(cls is not None and cls.stand_in),
            )
        )
    return out
