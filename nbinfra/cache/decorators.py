"""``@cached``: memoise a sync or async function in a cache namespace."""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar, cast

from nbinfra.cache.serializers import JsonSerializer
from nbinfra.cache.service import CacheService
from nbinfra.session import Session
from nbinfra.session import session as default_session

__all__ = ["cached"]

F = TypeVar("F", bound=Callable[..., Any])
_KEY_JSON = JsonSerializer()
_SKIP = frozenset({"self", "cls"})


def cached(
    namespace: str | None = None,
    ttl: float | None = None,
    key: str | Callable[..., Any] | None = None,
    *,
    cache_type: str | Enum | None = None,
) -> Callable[[F], F]:
    """Cache a function's results (sync or async) with single-flight on cold keys.

    ``namespace`` defaults to ``module.qualname``; ``key`` is a format string over the
    arguments (``"user:{user_id}"``), a callable taking the same arguments, or ``None``
    for a hash of all arguments (``self``/``cls`` excluded). The wrapper gains
    ``invalidate(*args, **kwargs)`` (async for async functions) and ``cache_key(...)``.
    """

    def decorate(fn: F) -> F:
        ns = namespace or f"{fn.__module__}.{fn.__qualname__}"
        signature = inspect.signature(fn)
        holder: dict[str, Any] = {}

        def service() -> CacheService:
            sess: Session = default_session()
            svc = holder.get("svc")
            if svc is None or holder.get("session") is not sess:
                svc = CacheService(ns, default_ttl=ttl, cache_type=cache_type, session=sess)
                holder["svc"], holder["session"] = svc, sess
            return cast(CacheService, svc)

        def cache_key(*args: Any, **kwargs: Any) -> str:
            if callable(key):
                return str(key(*args, **kwargs))
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            if isinstance(key, str):
                return key.format(**bound.arguments)
            parts = {k: v for k, v in bound.arguments.items() if k not in _SKIP}
            digest = hashlib.sha256(_KEY_JSON.dumps(parts)).hexdigest()[:32]
            return f"{fn.__name__}:{digest}"

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async def load() -> Any:  # a coroutine function: it runs on this loop
                    return await fn(*args, **kwargs)

                return await service().get_or_set(cache_key(*args, **kwargs), load, ttl)

            async def async_invalidate(*args: Any, **kwargs: Any) -> bool:
                return await service().delete(cache_key(*args, **kwargs))

            wrapper: Any = async_wrapper
            wrapper.invalidate = async_invalidate
        else:

            @functools.wraps(fn)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                return service().sync.get_or_set(
                    cache_key(*args, **kwargs), lambda: fn(*args, **kwargs), ttl
                )

            def sync_invalidate(*args: Any, **kwargs: Any) -> bool:
                return bool(service().sync.delete(cache_key(*args, **kwargs)))

            wrapper = sync_wrapper
            wrapper.invalidate = sync_invalidate
        wrapper.cache_key = cache_key
        wrapper.cache = service
        return cast(F, wrapper)

    return decorate
