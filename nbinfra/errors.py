"""Every error nbinfra raises on purpose.

::

    NbinfraError
    ├── ConfigError                      bad or missing settings (names file and key path)
    │   └── MissingSettingError          a ${VAR} with no default whose variable is unset
    ├── RegistryError
    │   ├── UnknownKindError             no such kind; lists what exists, suggests the nearest
    │   ├── MissingDependencyError       driver not installed; carries the pip hint
    │   └── RegistrationError            conflicting or invalid registration
    ├── LoopError                        sync facade misused (e.g. called from its own loop)
    ├── InvalidOptionError               an option's value is out of range or of the wrong type
    │   └── UnknownOptionError           no option by that name; suggests the nearest
    ├── InterpolationError               a {field} in a prompt names a variable it cannot show
    ├── CacheError
    │   ├── CacheUnavailableError        backend unreachable (names host:port)
    │   └── SerializationError           a value cannot be stored or read back
    ├── ConnError
    │   ├── ConnectionUnavailableError   cannot connect / timed out (names the masked target)
    │   └── QueryError                   the backend refused a query
    └── LLMError
        ├── AuthenticationError          names the environment variable to set
        ├── RateLimitError               carries retry_after when the provider sent it
        ├── ContextLengthError
        ├── ProviderTimeout
        ├── ProviderServerError
        ├── BadRequestError
        ├── ReplayMissError              replay mode and no recorded response
        └── SchemaError                  the answer does not match schema= after the repairs;
                                         names the schema and the first error, keeps ``raw``

    Interrupted (a KeyboardInterrupt)    the user stopped a running call; says what was
                                         cancelled and where a partial result is kept

Vendor exceptions are translated at one boundary per backend with ``raise ... from exc``.
Messages are redacted (every known secret value replaced) when the error is created, and
so is the exception being handled then, with its whole cause chain (``scrub_chain``): a
plain ``traceback.format_exception`` shows no secret either. Errors render in IPython as
one line (``_render_traceback_``), not as a traceback.
``Interrupted`` is not an error: it stays a ``KeyboardInterrupt`` (``except Exception``
never swallows it) and renders as one line too.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from nbinfra._secrets import redact, scrub_chain

if TYPE_CHECKING:
    from nbinfra.llm.types import LLMResponse

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "CacheError",
    "CacheUnavailableError",
    "ConfigError",
    "ConnError",
    "ConnectionUnavailableError",
    "ContextLengthError",
    "InterpolationError",
    "Interrupted",
    "InvalidOptionError",
    "LLMError",
    "LoopError",
    "MissingDependencyError",
    "MissingSettingError",
    "NbinfraError",
    "ProviderServerError",
    "ProviderTimeout",
    "QueryError",
    "RateLimitError",
    "RegistrationError",
    "RegistryError",
    "ReplayMissError",
    "SchemaError",
    "SerializationError",
    "UnknownKindError",
    "UnknownOptionError",
]


class NbinfraError(Exception):
    """Base of every error nbinfra raises on purpose; the message says what to do."""

    def __init__(self, message: str = "", *args: Any) -> None:
        super().__init__(redact(str(message)), *args)
        # Built while handling a vendor exception, which becomes this error's cause or
        # context: scrub that chain now, so no traceback of this error shows a secret.
        scrub_chain(sys.exc_info()[1])

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return self.message

    def _render_traceback_(self) -> list[str]:
        """IPython calls this instead of printing a traceback: one line, no stack."""
        return [f"{type(self).__name__}: {self.message}"]


class ConfigError(NbinfraError):
    """Settings are missing, malformed or of the wrong type."""


class MissingSettingError(ConfigError):
    """A ``${VAR}`` without default is used while the variable is unset."""

    def __init__(self, var: str, file: str, key_path: str) -> None:
        super().__init__(
            f"Environment variable {var} is not set; it is required by {key_path} in {file}. "
            f"Set {var}, or give a default there as ${{{var}:default}}."
        )
        self.var = var
        self.file = file
        self.key_path = key_path


class RegistryError(NbinfraError):
    """Problems looking up or registering a kind."""


class UnknownKindError(RegistryError, KeyError):
    """No implementation is registered under that kind."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class MissingDependencyError(RegistryError, ImportError):
    """The kind exists but its driver or SDK is not installed."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class RegistrationError(RegistryError):
    """A registration conflicts with an existing one or is invalid."""


class LoopError(NbinfraError, RuntimeError):
    """The synchronous facade was used where it cannot work."""


class InvalidOptionError(NbinfraError, ValueError):
    """An option (an LLM call option, a ttl, ...) is out of range or of the wrong type."""


class UnknownOptionError(InvalidOptionError, TypeError):
    """No option by that name; the message suggests the nearest one."""


class InterpolationError(NbinfraError):
    """A ``{field}`` names a defined variable but cannot be looked up or formatted."""


class CacheError(NbinfraError):
    """Base for cache failures."""


class CacheUnavailableError(CacheError, ConnectionError):
    """The cache backend cannot be reached."""


class SerializationError(CacheError, ValueError):
    """A value cannot be serialized or deserialized."""


class ConnError(NbinfraError):
    """Base for connection-manager failures."""


class ConnectionUnavailableError(ConnError, ConnectionError):
    """The backend cannot be reached (or did not answer in time)."""


class QueryError(ConnError):
    """The backend refused or failed a query."""


class LLMError(NbinfraError):
    """Base for LLM provider failures.

    ``partial`` holds what a stream delivered before it failed (text, estimated usage).
    """

    partial: LLMResponse | None = None

    def __init__(self, message: str = "", *, provider: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider


class AuthenticationError(LLMError):
    """Credentials are missing or rejected."""


class RateLimitError(LLMError):
    """The provider asked us to slow down."""

    def __init__(
        self, message: str = "", *, provider: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class ContextLengthError(LLMError):
    """The prompt does not fit the model's context window."""


class ProviderTimeout(LLMError, TimeoutError):
    """The provider did not answer within the configured timeout."""


class ProviderServerError(LLMError):
    """The provider failed (5xx) or sent something unreadable."""


class BadRequestError(LLMError, ValueError):
    """The provider rejected the request as malformed."""


class ReplayMissError(LLMError):
    """Replay mode is on and no recorded response matches this request."""


class SchemaError(LLMError):
    """The answer still does not match the call's ``schema=`` after its repair rounds.

    ``raw`` is the last answer's text, ``schema`` the schema's name, ``detail`` the first
    validation error and ``response`` the last ``LLMResponse``.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        raw: str = "",
        schema: str = "",
        detail: str = "",
        response: LLMResponse | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.raw = raw
        self.schema = schema
        self.detail = detail
        self.response = response


class Interrupted(KeyboardInterrupt):
    """The user interrupted a running call, which was cancelled cleanly.

    A ``KeyboardInterrupt``, so code that stops on one stops on this too. The message is
    the one line a notebook shows ("Interrupted: the query was cancelled on the server");
    ``partial`` holds what arrived before the interrupt (a stream's text so far), if any.
    """

    def __init__(self, message: str = "Interrupted", *, partial: Any = None) -> None:
        super().__init__(redact(str(message)))
        self.partial = partial

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else "Interrupted"

    def __str__(self) -> str:
        return self.message

    def _render_traceback_(self) -> list[str]:
        """One line, no stack: an interrupt is not an error."""
        return [self.message]
