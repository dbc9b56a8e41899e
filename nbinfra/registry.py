"""One generic registry, reused by caches, connections and LLM providers.

A ``Registry`` maps a *kind* (``"redis"``, ``"openai"``) to an implementation class.
Built-ins are declared in ``BUILTINS`` below as lazy ``"pkg.mod:Class"`` strings with an
install hint, so looking up ``redis`` imports ``redis`` only then. Third parties register
with the decorator or through the entry-point group (read as strings on first lookup).

Kinds are registry keys; *names* are configured instances (``prod_cache``) and live in
configuration and sessions, never here.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar, overload

from nbinfra.errors import MissingDependencyError, RegistrationError, UnknownKindError
from nbinfra.logs import get_logger

__all__ = ["BUILTINS", "Entry", "Registry", "import_target", "target_of"]

T = TypeVar("T")
C = TypeVar("C", bound=type)

log = get_logger(__name__)


@dataclass(frozen=True)
class Entry:
    """A lazy registry entry: where the class lives and what to install for it."""

    target: str
    extra: str | None = None

    @property
    def hint(self) -> str | None:
        return f"pip install 'nbinfra[{self.extra}]'" if self.extra else None


# group -> kind -> Entry. Keep every table sorted by kind; tests check it against the
# classes the modules really register (no drift).
BUILTINS: dict[str, dict[str, Entry]] = {
    "nbinfra.caches": {
        "memory": Entry("nbinfra.cache.memory:InMemoryCacheProvider"),
        "redis": Entry("nbinfra.cache.redis:RedisCacheProvider", "redis"),
    },
    "nbinfra.connections": {
        "chromadb": Entry("nbinfra.connections.chromadb:ChromaConnectionManager", "chroma"),
        "confluence": Entry(
            "nbinfra.connections.confluence:ConfluenceConnectionManager", "atlassian"
        ),
        "duckdb": Entry("nbinfra.connections.duckdb:DuckDBConnectionManager", "duckdb"),
        "jira": Entry("nbinfra.connections.jira:JiraConnectionManager", "atlassian"),
        "mongodb": Entry("nbinfra.connections.mongodb:MongoDBConnectionManager", "mongodb"),
        "pgvector": Entry("nbinfra.connections.pgvector:PgVectorConnectionManager", "pgvector"),
        "postgres": Entry("nbinfra.connections.postgres:PostgresConnectionManager", "postgres"),
        "qdrant": Entry("nbinfra.connections.qdrant:QdrantConnectionManager", "qdrant"),
        "redis": Entry("nbinfra.connections.redis:RedisConnectionManager", "redis"),
        "s3": Entry("nbinfra.connections.s3:S3ConnectionManager", "s3"),
        "spark": Entry("nbinfra.connections.spark:SparkConnectionManager", "spark"),
        "sql": Entry("nbinfra.connections.sqla:SQLAlchemyConnectionManager", "sql"),
    },
    "nbinfra.llms": {
        "anthropic": Entry("nbinfra.llm.anthropic:AnthropicProvider", "anthropic"),
        "azure": Entry("nbinfra.llm.azure:AzureOpenAIProvider", "openai"),
        "fake": Entry("nbinfra.llm.fake:FakeLLMProvider"),
        "google": Entry("nbinfra.llm.google:GoogleProvider", "google"),
        "groq": Entry("nbinfra.llm.groq:GroqProvider", "groq"),
        "huggingface": Entry("nbinfra.llm.huggingface:HuggingFaceProvider", "huggingface"),
        "ollama": Entry("nbinfra.llm.ollama:OllamaProvider", "ollama"),
        "openai": Entry("nbinfra.llm.openai:OpenAIProvider", "openai"),
    },
}


def target_of(obj: Any) -> str:
    """``"pkg.mod:Qualname"`` for a class or function."""
    return f"{obj.__module__}:{obj.__qualname__}"


def import_target(target: str) -> Any:
    """Import ``"pkg.mod:Attr.attr"`` and return the attribute."""
    module_name, _, attr_path = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr_path.split(".")):
        obj = getattr(obj, part)
    return obj


def _normalise(kind: str | Enum) -> str:
    value = kind.value if isinstance(kind, Enum) else kind
    if not isinstance(value, str) or not value.strip():
        raise UnknownKindError(f"A kind must be a non-empty string, got {value!r}.")
    return value.strip().lower()


class Registry(Generic[T]):
    """Kind -> implementation class, with lazy built-ins and entry points.

    ``label`` names what is registered in messages ("cache", "connection", "LLM provider").
    ``base`` (a class or a lazy ``"pkg.mod:Class"``) is checked on registration.
    """

    def __init__(
        self,
        label: str,
        *,
        group: str,
        base: type[T] | str | None = None,
        builtins: Mapping[str, Entry] | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.label = label
        self.group = group
        self._base = base
        table = BUILTINS.get(group, {}) if builtins is None else builtins
        self._lazy: dict[str, Entry] = dict(table)
        self._aliases = {k.lower(): v.lower() for k, v in (aliases or {}).items()}
        self._classes: dict[str, type[T]] = {}
        self._entry_points_loaded = False
        self._lock = threading.RLock()

    # -- registration -------------------------------------------------------------
    @overload
    def register(self, kind: str | Enum, *, replace: bool = ...) -> Callable[[C], C]: ...

    @overload
    def register(self, kind: str | Enum, target: C, *, replace: bool = ...) -> C: ...

    def register(self, kind: str | Enum, target: Any = None, *, replace: bool = False) -> Any:
        """Register ``target`` under ``kind``; used bare it is a class decorator.

        Registering the same class again is a no-op; a different one needs ``replace=True``.
        ``target`` may also be a lazy ``"pkg.mod:Class"`` string.
        """
        key = _normalise(kind)

        def decorator(cls: C) -> C:
            self._add(key, cls, replace=replace)
            return cls

        if target is None:
            return decorator
        if isinstance(target, str):
            self._add_lazy(key, Entry(target), replace=replace)
            return target
        return decorator(target)

    def _add_lazy(self, key: str, entry: Entry, *, replace: bool) -> None:
        with self._lock:
            current = self._current_target(key)
            if current is not None and current != entry.target and not replace:
                raise RegistrationError(
                    f"{self.label} kind '{key}' is already registered to {current}; "
                    f"pass replace=True to register {entry.target} instead."
                )
            if replace:
                self._classes.pop(key, None)
            self._lazy[key] = entry

    def _add(self, key: str, cls: type[T], *, replace: bool) -> None:
        if not isinstance(cls, type):
            raise RegistrationError(
                f"Only classes can be registered as {self.label}s, got {cls!r}."
            )
        base = self._base_class()
        if base is not None and not issubclass(cls, base):
            raise RegistrationError(
                f"{target_of(cls)} cannot be registered as {self.label} '{key}': "
                f"it must subclass {target_of(base)}."
            )
        with self._lock:
            new = target_of(cls)
            registered = self._classes.get(key)
            if (
                registered is not None
                and registered is not cls
                and not replace
                and target_of(registered) != new
            ):
                raise RegistrationError(
                    f"{self.label} kind '{key}' is already registered to "
                    f"{target_of(registered)}; pass replace=True to register {new} instead."
                )
            lazy = self._lazy.get(key)
            if registered is None and lazy is not None and lazy.target != new and not replace:
                # A class defined in the module a lazy entry names may register itself.
                raise RegistrationError(
                    f"{self.label} kind '{key}' is declared as {lazy.target}; "
                    f"pass replace=True to register {new} instead."
                )
            self._classes[key] = cls
            if lazy is not None and lazy.target != new:
                self._lazy[key] = Entry(new, lazy.extra)

    def unregister(self, kind: str | Enum) -> None:
        """Forget ``kind`` (mainly for tests and plugin reloads)."""
        key = _normalise(kind)
        with self._lock:
            self._classes.pop(key, None)
            self._lazy.pop(key, None)

    # -- lookup -------------------------------------------------------------------
    def get(self, kind: str | Enum) -> type[T]:
        """The class for ``kind``; imports it on first use.

        Raises ``UnknownKindError`` (listing known kinds, suggesting the nearest) or
        ``MissingDependencyError`` (with the pip command) instead of a bare ImportError.
        """
        key = self._resolve(_normalise(kind))
        cls = self._classes.get(key)
        if cls is not None:
            return cls
        with self._lock:
            cls = self._classes.get(key)
            if cls is not None:
                return cls
            entry = self._lazy.get(key)
            if entry is None:
                self._load_entry_points()
                entry = self._lazy.get(key)
            if entry is None:
                raise self._unknown(key)
            loaded = self._import(key, entry)
            if not isinstance(loaded, type):
                raise RegistrationError(f"{entry.target} is not a class (registered for '{key}').")
            self._add(key, loaded, replace=True)
            return loaded

    get_class = get  # the seed's name

    def kinds(self) -> list[str]:
        """Every known kind, sorted (built-ins, decorated classes and entry points)."""
        self._load_entry_points()
        return sorted(set(self._lazy) | set(self._classes))

    def entry(self, kind: str | Enum) -> Entry | None:
        """The lazy entry for ``kind`` (target and install hint), if declared."""
        key = self._resolve(_normalise(kind))
        self._load_entry_points()
        with self._lock:
            if key in self._lazy:
                return self._lazy[key]
            cls = self._classes.get(key)
            return Entry(target_of(cls)) if cls is not None else None

    def is_available(self, kind: str | Enum) -> bool:
        """True when ``kind`` is known and its dependencies import."""
        try:
            self.get(kind)
        except (UnknownKindError, MissingDependencyError):
            return False
        return True

    def __contains__(self, kind: object) -> bool:
        if not isinstance(kind, (str, Enum)):
            return False
        try:
            key = self._resolve(_normalise(kind))
        except UnknownKindError:
            return False
        return key in self.kinds()

    def __iter__(self) -> Any:
        return iter(self.kinds())

    def __repr__(self) -> str:
        return f"Registry({self.label!r}, group={self.group!r}, kinds={self.kinds()!r})"

    # -- internals ----------------------------------------------------------------
    def _resolve(self, key: str) -> str:
        return self._aliases.get(key, key)

    def _current_target(self, key: str) -> str | None:
        if key in self._classes:
            return target_of(self._classes[key])
        entry = self._lazy.get(key)
        return entry.target if entry else None

    def _base_class(self) -> type[T] | None:
        if isinstance(self._base, str):
            self._base = import_target(self._base)
        return self._base if isinstance(self._base, type) else None

    def _import(self, key: str, entry: Entry) -> Any:
        module_name = entry.target.partition(":")[0]
        try:
            return import_target(entry.target)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            if missing == module_name.split(".")[0] and missing == "nbinfra":
                raise  # our own bug, not a missing driver
            hint = entry.hint or f"pip install {missing}"
            raise MissingDependencyError(
                f"The {self.label} '{key}' needs the '{missing}' package, which is not "
                f"installed: {hint}",
                hint=hint,
            ) from exc
        except AttributeError as exc:
            raise RegistrationError(
                f"{self.label} '{key}' points at {entry.target}, which does not exist."
            ) from exc

    def _unknown(self, key: str) -> UnknownKindError:
        known = self.kinds()
        close = difflib.get_close_matches(key, known + list(self._aliases), n=1, cutoff=0.5)
        suggestion = f" Did you mean '{self._resolve(close[0])}'?" if close else ""
        listing = ", ".join(known) if known else "(none registered)"
        return UnknownKindError(
            f"Unknown {self.label} kind '{key}'. Available: {listing}.{suggestion}"
        )

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        with self._lock:
            if self._entry_points_loaded:
                return
            self._entry_points_loaded = True
            for ep in _entry_points(self.group):
                key = _normalise(ep.name)
                if key in self._lazy or key in self._classes:
                    if self._current_target(key) != ep.value:
                        log.warning(
                            "entry point %s=%s ignored: '%s' is already registered to %s",
                            ep.name,
                            ep.value,
                            key,
                            self._current_target(key),
                        )
                    continue
                self._lazy[key] = Entry(ep.value)


def _entry_points(group: str) -> Iterable[Any]:
    return entry_points(group=group)
