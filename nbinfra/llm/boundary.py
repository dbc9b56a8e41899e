"""The LLM error boundary: an SDK's exception becomes nbinfra's error in one place.

As httpx's ``map_httpcore_exceptions`` does, the mapping is keyed by exception *type*:
an ``ErrorMap`` holds ``{ExceptionClass: handler}`` tables, and an exception is looked up
along its MRO, so the most specific class wins (``APITimeoutError`` before its base
``APIConnectionError``). Tables chain with ``|``: the first table with a handler that
returns an error decides. No class name is ever inspected.

- A provider gives its SDK's table from ``error_map()`` (the SDK imported there, so only
  when a call failed).
- ``transport_map()`` covers what every SDK shares: timeouts, refused or broken
  connections (httpx, aiohttp, sockets) and bodies that are not JSON. A transport class
  is listed only once its library is imported: an exception of a library that is not
  loaded cannot occur.
- ``boundary(provider)`` is the context manager around every call: inside it an error
  that is already ours passes through; any other ``Exception`` is raised as ours, from it.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from nbinfra.errors import LLMError, ProviderServerError, ProviderTimeout

if TYPE_CHECKING:
    from nbinfra.llm._core import ProviderCore

__all__ = [
    "ErrorMap",
    "Handler",
    "boundary",
    "broken",
    "not_json",
    "timed_out",
    "translate",
    "transport_map",
    "unreachable",
]

Handler = Callable[["ProviderCore", Any], LLMError | None]


class ErrorMap:
    """Exception type -> handler tables, tried in order; see the module docstring."""

    def __init__(self, rules: Mapping[type[BaseException], Handler] | None = None) -> None:
        self._tables: tuple[dict[type[BaseException], Handler], ...] = (
            (dict(rules),) if rules else ()
        )

    def __or__(self, other: ErrorMap) -> ErrorMap:
        merged = ErrorMap()
        merged._tables = self._tables + other._tables
        return merged

    def __len__(self) -> int:
        return sum(len(t) for t in self._tables)

    def translate(self, provider: ProviderCore, exc: BaseException) -> LLMError | None:
        """Our error for ``exc``, or None when no table has a handler that answers."""
        mro = type(exc).__mro__
        for table in self._tables:
            for cls in mro:
                handler = table.get(cls)
                if handler is not None:
                    found = handler(provider, exc)
                    if found is not None:
                        return found
        return None


# -- transport failures every SDK shares ----------------------------------------------
def timed_out(provider: ProviderCore, exc: BaseException) -> LLMError:
    return provider.timeout_error()


def broken(provider: ProviderCore, exc: BaseException) -> LLMError:
    return ProviderServerError(
        f"The connection to {provider.kind} at {provider.where} broke mid-response "
        f"({type(exc).__name__}).",
        provider=provider.kind,
    )


def unreachable(provider: ProviderCore, exc: BaseException) -> LLMError:
    return ProviderServerError(
        f"Cannot reach {provider.kind} at {provider.where} ({type(exc).__name__}); check "
        f"that it runs and llm.providers.{provider.kind}.base_url.",
        provider=provider.kind,
    )


def not_json(provider: ProviderCore, exc: BaseException) -> LLMError:
    return ProviderServerError(
        f"{provider.kind} at {provider.where} sent a response that is not valid JSON "
        f"({type(exc).__name__}).",
        provider=provider.kind,
    )


_BUILTIN: dict[type[BaseException], Handler] = {
    TimeoutError: timed_out,  # asyncio.TimeoutError too
    asyncio.IncompleteReadError: broken,
    http.client.IncompleteRead: broken,
    ConnectionResetError: broken,
    BrokenPipeError: broken,
    OSError: unreachable,  # refused, unreachable host, DNS
    json.JSONDecodeError: not_json,
}
_HTTPX: tuple[tuple[str, Handler], ...] = (
    ("TimeoutException", timed_out),
    ("RemoteProtocolError", broken),
    ("ReadError", broken),
    ("WriteError", broken),
    ("StreamError", broken),
    ("DecodingError", broken),
    ("TransportError", unreachable),  # ConnectError, ProxyError, ...
)
_HTTPCORE: tuple[tuple[str, Handler], ...] = (
    ("TimeoutException", timed_out),
    ("RemoteProtocolError", broken),
    ("ReadError", broken),
    ("NetworkError", unreachable),
)
# Module -> (class name, handler): the classes are looked up once the module is imported.
# ``httpx2``/``httpcore2`` are the renamed forks some SDK releases ship with.
_LIBRARIES: dict[str, tuple[tuple[str, Handler], ...]] = {
    "httpx": _HTTPX,
    "httpx2": _HTTPX,
    "httpcore": _HTTPCORE,
    "httpcore2": _HTTPCORE,
    "aiohttp": (
        ("ServerTimeoutError", timed_out),
        ("ServerDisconnectedError", broken),
        ("ClientPayloadError", broken),
        ("ClientConnectionError", unreachable),
    ),
}
_cache: dict[tuple[str, ...], ErrorMap] = {}


def transport_map() -> ErrorMap:
    """The shared table, with the classes of the transport libraries imported so far."""
    loaded = tuple(name for name in _LIBRARIES if name in sys.modules)
    found = _cache.get(loaded)
    if found is None:
        rules: dict[type[BaseException], Handler] = {}
        for name in loaded:
            module = sys.modules[name]
            for attr, handler in _LIBRARIES[name]:
                cls = getattr(module, attr, None)
                if isinstance(cls, type) and issubclass(cls, BaseException):
                    rules[cls] = handler
        found = _cache[loaded] = ErrorMap(rules) | ErrorMap(_BUILTIN)
    return found


def translate(provider: ProviderCore, exc: BaseException, table: ErrorMap) -> LLMError:
    """``exc`` as ours: through ``table``, then the transport table, else a server error."""
    if isinstance(exc, LLMError):
        return exc
    found = table.translate(provider, exc) or transport_map().translate(provider, exc)
    if found is not None:
        return found
    return ProviderServerError(
        f"{provider.kind} call failed: {type(exc).__name__}: {exc}", provider=provider.kind
    )


@contextmanager
def boundary(provider: ProviderCore, timeout: float | None = None) -> Iterator[None]:
    """Raise whatever fails inside as one of our errors, from the original.

    ``timeout`` names the per-call limit in a ``ProviderTimeout`` (when it differs from the
    provider's own). ``BaseException``\\ s that are not ``Exception`` (an interrupt, a
    cancellation, a generator closing) pass through untouched.
    """
    try:
        yield
    except LLMError:
        raise
    except Exception as exc:
        error = provider.translate_error(exc)
        if isinstance(error, ProviderTimeout) and timeout not in (None, provider.timeout):
            error = provider.timeout_error(timeout)
        raise error from exc
