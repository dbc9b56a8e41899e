"""Which provider to build, and building it: ``LLMFactory.get_llm`` and ``provider_statuses``.

``get_llm(x)`` accepts, in this order of interpretation:

- ``None``: the default (DESIGN.md section 5): ``llm.default`` when configured, else, in
  the order of the kinds' ``default_rank``, the first whose API key is set, else a keyless
  kind (Ollama) that answers on its ``default_base_url``, else the offline stand-in
  (``fake``, which announces itself);
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
from nbinfra.errors import RegistryError, UnknownKindError
from nbinfra.llm import LLMProvider, LLMRegistry
from nbinfra.llm.settings import LLMSettings, ProviderSettings, with_env_key
from nbinfra.logs import get_logger

if TYPE_CHECKING:
    from nbinfra.llm.base import BaseLLMProvider
    from nbinfra.session import Session

__all__ = [
    "LLMFactory",
    "ProviderStatus",
    "Selection",
    "create",
    "default_order",
    "get_llm",
    "provider_statuses",
    "resolve",
    "select_default",
]

log = get_logger(__name__)

LOCAL_PROBE_TIMEOUT = 0.25  # seconds; a notebook must not wait on a missing local server
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


def _class(kind: str) -> type[BaseLLMProvider] | None:
    """The class of ``kind``, or None when its module (or its SDK) does not import."""
    try:
        return LLMRegistry.get(kind)
    except RegistryError as exc:
        log.debug("llm kind %s is not available: %s", kind, exc)
        return None


def _provider_settings(
    llm: LLMSettings, cls: type[BaseLLMProvider], conf: Settings | None
) -> ProviderSettings:
    found = llm.provider(cls.kind)
    return with_env_key(found, cls, conf) if conf is not None else found


def default_order() -> list[type[BaseLLMProvider]]:
    """The kinds the default is chosen from, by their ``default_rank`` (then kind)."""
    ranked = [c for c in map(_class, LLMRegistry.kinds()) if c and c.default_rank is not None]
    return sorted(ranked, key=lambda c: (c.default_rank or 0, c.kind))


def _base_url(cls: type[BaseLLMProvider], conf: ProviderSettings) -> str:
    return conf.base_url or str(conf.extra.get("endpoint") or "") or cls.default_base_url


def probe(url: str, timeout: float = LOCAL_PROBE_TIMEOUT) -> bool:
    """True when something accepts TCP connections at ``url``'s host and port."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def select_default(
    llm: LLMSettings, *, probe_local: bool = True, settings: Settings | None = None
) -> Selection:
    """DESIGN.md section 5: the configured default, else by ``default_rank`` the first kind
    whose key is set (from the settings or its ``env_key`` in ``settings``' environment),
    else the first keyless kind that answers on its ``default_base_url``, else the stand-in.
    """
    if llm.default.strip():
        chosen = resolve(llm.default.strip(), llm)
        return Selection(chosen.kind, chosen.model, chosen.name, chosen.options, "llm.default")
    order = default_order()
    for cls in order:
        if cls.needs_key and cls.has_credentials(_provider_settings(llm, cls, settings)):
            return Selection(cls.kind, reason=f"its API key is set ({cls.kind})")
    for cls in order:
        url = _base_url(cls, llm.provider(cls.kind))
        if not cls.needs_key and probe_local and url and probe(url):
            return Selection(cls.kind, reason=f"{cls.kind} answers at {mask_url(url)}")
    stand_in = next((c for c in map(_class, LLMRegistry.kinds()) if c and c.stand_in), None)
    if stand_in is None:
        raise UnknownKindError(
            "No LLM is configured, no API key is set and no local server answers; "
            "set llm.default in resources/application-llm.yaml."
        )
    return Selection(stand_in.kind, reason="no key set and no local server: offline stand-in")


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


def create(
    kind_or_name: str | LLMProvider | None = None,
    *,
    settings: Settings | None = None,
    session: Session | None = None,
    **overrides: Any,
) -> BaseLLMProvider:
    """A new provider instance; the session supplies settings and the response store.

    ``overrides`` are the provider's constructor arguments (``model``, ``api_key``,
    ``base_url``, ``timeout``...) and default call options (``temperature``...).
    """
    conf, current = _settings(settings, session)
    with unrecorded():  # a provider depends on its own section, not on every provider's
        llm = LLMSettings.load(conf)
    if kind_or_name is None:
        note("llm")  # the default is chosen by looking at every provider's key
        chosen = select_default(llm, settings=conf)
        log.info("llm default: %s (%s)", chosen.kind, chosen.reason)
    else:
        chosen = resolve(kind_or_name, llm)
        spec = str(getattr(kind_or_name, "value", kind_or_name)).strip()
        note(f"llm.providers.{chosen.kind}", f"llm.instances.{spec}", *_LLM_LEVEL)
    cls = LLMRegistry.get(chosen.kind)
    model = overrides.pop("model", None)
    return cls(
        model or chosen.model,
        settings=_provider_settings(llm, cls, conf),
        name=chosen.name,
        session=current,
        **{**chosen.options, **overrides},
    )


def get_llm(
    provider_or_name: str | LLMProvider | None = None,
    model: str | None = None,
    *,
    settings: Settings | None = None,
    session: Session | None = None,
    **options: Any,
) -> BaseLLMProvider:
    """The seed's name for ``create``, with the model as second positional argument."""
    return create(provider_or_name, settings=settings, session=session, model=model, **options)


class LLMFactory:
    """The seed's factory: ``LLMFactory.get_llm(LLMProvider.GROQ)``, and ``create``."""

    create = staticmethod(create)
    get_llm = staticmethod(get_llm)


def provider_statuses(
    settings: Settings | None = None, *, probe_reachability: bool = False
) -> list[ProviderStatus]:
    """Every known provider with its default model, models, key state and base URL.

    ``probe_reachability=True`` tries a TCP connection to each base URL (a keyless kind's
    ``default_base_url`` included); otherwise ``reachable`` is ``None``.
    """
    conf, _current = _settings(settings, None)
    llm = LLMSettings.load(conf)
    out: list[ProviderStatus] = []
    for kind in sorted(set(LLMRegistry.kinds()) | set(llm.providers)):
        cls = _class(kind) if kind in LLMRegistry else None
        p = _provider_settings(llm, cls, conf) if cls is not None else llm.provider(kind)
        default_model = p.model or (cls.default_model if cls is not None else "")
        base_url = _base_url(cls, p) if cls is not None else p.base_url
        reachable = probe(base_url) if probe_reachability and base_url else None
        out.append(
            ProviderStatus(
                provider=kind,
                default_model=default_model,
                models=sorted(set(p.models) | ({default_model} if default_model else set())),
                key_set=cls.has_credentials(p) if cls is not None else bool(p.api_key),
                base_url=mask_url(base_url) if base_url else "",
                reachable=reachable,
                available=cls is not None,
                stand_in=bool(cls is not None and cls.stand_in),
            )
        )
    return out
