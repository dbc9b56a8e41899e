"""Pre-configured caches from ``cache.instances`` in ``application-cache.yaml``.

``from nbinfra.cache.instances import confirmation_cache`` gives a handle that reads its
settings and opens its backend on first use, in the current default session; importing
opens nothing. Any other name declared under ``cache.instances`` is importable the same way.
"""

from __future__ import annotations

from typing import Any

from nbinfra.cache.service import CacheService
from nbinfra.cache.settings import InstanceSettings
from nbinfra.errors import ConfigError
from nbinfra.session import Session
from nbinfra.session import session as default_session

__all__ = [
    "CacheInstance",
    "configured_instances",
    "confirmation_cache",
    "llm_response_cache",
    "rate_limit_cache",
    "session_cache",
    "signup_cache",
]


def configured_instances(session: Session | None = None) -> dict[str, InstanceSettings]:
    """Every instance declared under ``cache.instances``, validated."""
    sess = session or default_session()
    return sess.settings.section("cache.instances", dict[str, InstanceSettings])


class CacheInstance:
    """A lazily bound ``CacheService``: every attribute is the current session's service."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def service(self, session: Session | None = None) -> CacheService:
        """The ``CacheService`` behind this name in ``session`` (default: the current one)."""
        sess = session or default_session()
        return sess.get("cache.instance", self._name, lambda: self._create(sess))

    def _create(self, sess: Session) -> CacheService:
        instances = configured_instances(sess)
        spec = instances.get(self._name)
        if spec is None:
            known = ", ".join(sorted(instances)) or "(none)"
            raise ConfigError(
                f"No cache instance '{self._name}' under cache.instances in "
                f"application-cache.yaml; declared: {known}."
            )
        return CacheService(
            spec.namespace or self._name,
            default_ttl=spec.ttl,
            cache_type=None if spec.backend == "default" else spec.backend,
            serializer=None if spec.serializer == "default" else spec.serializer,
            session=sess,
        )

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self.service(), attr)

    def __repr__(self) -> str:
        return f"<CacheInstance {self._name!r} (bound on first use)>"


confirmation_cache = CacheInstance("confirmation_cache")
signup_cache = CacheInstance("signup_cache")
session_cache = CacheInstance("session_cache")
rate_limit_cache = CacheInstance("rate_limit_cache")
llm_response_cache = CacheInstance("llm_response_cache")


def __getattr__(name: str) -> CacheInstance:
    # Names declared only in a user's yaml are importable too (checked against config).
    if name.startswith("_"):
        raise AttributeError(name)
    if name in configured_instances():
        return CacheInstance(name)
    raise AttributeError(f"module 'nbinfra.cache.instances' has no attribute {name!r}")
