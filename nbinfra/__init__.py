"""nbinfra: caches, connections and LLM providers for notebooks, behind one registry.

``import nbinfra`` is cheap: it imports no SDK, driver, pandas or ipywidgets. Everything
below is reached lazily (PEP 562) and loads on first use. In a notebook, run
``%load_ext nbinfra`` for the magics.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nbinfra._lazy import lazy_attributes
from nbinfra.errors import (
    AuthenticationError,
    BadRequestError,
    CacheError,
    CacheUnavailableError,
    ConfigError,
    ConnectionUnavailableError,
    ConnError,
    ContextLengthError,
    InterpolationError,
    Interrupted,
    InvalidOptionError,
    LLMError,
    LoopError,
    MissingDependencyError,
    MissingSettingError,
    NbinfraError,
    ProviderServerError,
    ProviderTimeout,
    QueryError,
    RateLimitError,
    RegistryError,
    ReplayMissError,
    SchemaError,
    SerializationError,
    UnknownKindError,
    UnknownOptionError,
)

if TYPE_CHECKING:
    from nbinfra._secrets import Secret
    from nbinfra.config import Settings, load_settings
    from nbinfra.connections.sync import conn
    from nbinfra.notebook import widgets
    from nbinfra.registry import Registry
    from nbinfra.session import Session, reload, session, use_session

__version__ = "0.1.0"

# name -> "module:attribute" (or a module that is callable), imported on first access.
_LAZY: dict[str, str] = {
    "Registry": "nbinfra.registry:Registry",
    "Secret": "nbinfra._secrets:Secret",
    "Session": "nbinfra.session:Session",
    "Settings": "nbinfra.config:Settings",
    "cache": "nbinfra.cache",
    "conn": "nbinfra.connections.sync:conn",
    "llm": "nbinfra.llm",
    "load_settings": "nbinfra.config:load_settings",
    "reload": "nbinfra.session:reload",
    "session": "nbinfra.session",
    "use_session": "nbinfra.session:use_session",
    "widgets": "nbinfra.notebook.widgets",
}

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
    "Registry",
    "RegistryError",
    "ReplayMissError",
    "SchemaError",
    "Secret",
    "SerializationError",
    "Session",
    "Settings",
    "UnknownKindError",
    "UnknownOptionError",
    "__version__",
    "cache",
    "conn",
    "llm",
    "load_ipython_extension",
    "load_settings",
    "reload",
    "session",
    "unload_ipython_extension",
    "use_session",
    "widgets",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbinfra``: register the magics (imports nothing heavy)."""
    importlib.import_module("nbinfra.notebook").load_ipython_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbinfra``: remove the magics."""
    importlib.import_module("nbinfra.notebook").unload_ipython_extension(ipython)
