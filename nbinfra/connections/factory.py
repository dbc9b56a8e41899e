"""``ConnectionType``, ``ConnectionRegistry`` and ``ConnectionFactory``: the seed's names.

``ConnectionRegistry`` is the generic ``Registry`` for group ``nbinfra.connections``;
backends register with ``@ConnectionRegistry.register(ConnectionType.X)`` and are declared
lazily in ``nbinfra.registry.BUILTINS``. ``create`` (the seed's
``ConnectionFactory.get_connection_manager``) takes a configured *name* (from
``connections:`` in the yaml files) or a *kind*.
"""

from __future__ import annotations

import difflib
from enum import Enum
from typing import TYPE_CHECKING, Any

from nbinfra._reads import note, unrecorded
from nbinfra.config import Settings, validate
from nbinfra.connections.settings import connection_entries
from nbinfra.errors import UnknownKindError
from nbinfra.registry import Registry

if TYPE_CHECKING:
    from nbinfra.connections.base import ConnectionManager
    from nbinfra.session import Session

__all__ = [
    "ConnectionFactory",
    "ConnectionRegistry",
    "ConnectionType",
    "create",
    "get_connection_manager",
]


class ConnectionType(str, Enum):
    """Kinds of connection (the seed's nine, plus DuckDB as the embedded SQL default and
    SQL for any engine SQLAlchemy reaches, and Spark for data beyond one machine)."""

    # Databases
    POSTGRES = "postgres"
    MONGODB = "mongodb"
    REDIS = "redis"
    DUCKDB = "duckdb"
    SQL = "sql"
    SPARK = "spark"  # Spark SQL: a local session or Spark Connect
    # Vector stores
    QDRANT = "qdrant"
    PGVECTOR = "pgvector"
    CHROMADB = "chromadb"
    # External services
    CONFLUENCE = "confluence"
    JIRA = "jira"
    S3 = "s3"

    def __str__(self) -> str:
        return self.value


ConnectionRegistry: Registry[ConnectionManager] = Registry(
    "connection",
    group="nbinfra.connections",
    base="nbinfra.connections.base:ConnectionManager",
    aliases={"postgresql": "postgres", "pg": "postgres", "mongo": "mongodb", "chroma": "chromadb"},
)


def create(
    kind_or_name: str | ConnectionType,
    *,
    settings: Settings | None = None,
    session: Session | None = None,
    **overrides: Any,
) -> ConnectionManager:
    """A new, not yet connected manager for a configured name or a kind.

    A configured name takes its settings from ``connections.<name>`` (of ``settings``,
    else of ``session``'s, else of the default session's); a bare kind uses the backend's
    defaults. ``overrides`` replace individual settings (``url=...``).
    """
    key = kind_or_name.value if isinstance(kind_or_name, Enum) else str(kind_or_name).strip()
    if settings is None:
        if session is None:
            from nbinfra.session import session as default_session

            session = default_session()
        settings = session.settings
    with unrecorded():  # a connection depends on its own entry, not on every entry
        entries = connection_entries(settings)
    note(f"connections.{key}")
    raw: dict[str, Any] = dict(entries.get(key, {}))
    name = key
    inline = None if key in entries else _inline(key)
    if inline is not None:  # kind:target, e.g. sql:sqlite:///file.db
        kind, raw = inline
        name = kind  # the target (masked) is shown as the manager's target
    kind = raw.get("kind") or (inline[0] if inline else key)
    if not isinstance(kind, str):
        kind = str(getattr(kind, "value", kind))
    try:
        cls = ConnectionRegistry.get(kind)
    except UnknownKindError as exc:
        raise _unknown(key, kind, entries) from exc
    raw["kind"] = cls.kind or kind.lower()
    raw.update(overrides)
    config = validate(cls.settings_class, raw, f"connections.{name}", settings)
    return cls(config, name=name)


get_connection_manager = create  # the seed's name


def _inline(key: str) -> tuple[str, dict[str, Any]] | None:
    """``(kind, settings)`` for an inline ``kind:target`` whose kind takes one, else None.

    What the target means is the kind's own ``inline_settings`` (``sql``: a URL)."""
    kind, sep, target = key.partition(":")
    if not sep or not target or kind.lower() not in ConnectionRegistry.kinds():
        return None
    settings = ConnectionRegistry.get(kind).inline_settings(target)
    return None if settings is None else (kind.lower(), dict(settings))


def is_inline(key: str) -> bool:
    """True when ``key`` is an inline ``kind:target`` (see ``create``)."""
    return _inline(key) is not None


def _unknown(key: str, kind: str, entries: dict[str, dict[str, Any]]) -> UnknownKindError:
    kinds = ConnectionRegistry.kinds()
    names = sorted(entries)
    if key in entries:
        close = difflib.get_close_matches(kind.lower(), kinds, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return UnknownKindError(
            f"Connection '{key}' has unknown kind '{kind}'. Kinds: {', '.join(kinds)}.{hint}"
        )
    close = difflib.get_close_matches(key, names + kinds, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return UnknownKindError(
        f"No connection named or of kind '{key}'. Configured names: "
        f"{', '.join(names) or '(none)'}; kinds: {', '.join(kinds)}.{hint}"
    )


class ConnectionFactory:
    """The seed's factory: ``ConnectionFactory.get_connection_manager(ConnectionType.POSTGRES)``."""

    registry = ConnectionRegistry

    create = staticmethod(create)
    get_connection_manager = staticmethod(create)  # the seed's name

    @staticmethod
    def available() -> list[str]:
        """Every registered kind."""
        return ConnectionRegistry.kinds()
