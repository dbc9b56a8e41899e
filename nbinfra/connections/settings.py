"""The ``connections:`` configuration: one named entry per connection, ``kind`` picks the class.

Every ``application-{db,vector,external}.yaml`` may hold a ``connections:`` mapping of
*name* -> settings. ``kind`` defaults to the name when the name is a kind (``duckdb:``).
Names are unique across the files (the loader refuses a name defined twice).

Settings are validated into the manager class's ``settings_class``, a dataclass that
extends ``ConnectionSettings`` with backend fields; the common fields below (timeouts,
retries) apply to every backend.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from nbinfra._bounds import NonNegativeFloat, NonNegativeInt, PositiveFloat
from nbinfra._secrets import MaskedRepr, Secret, is_secret_key, mask_url, redact
from nbinfra.config import Settings, Unset, validate

__all__ = [
    "ConnectionSettings",
    "ConnectionSpec",
    "RetryPolicy",
    "build_settings",
    "configured_connections",
    "connection_entries",
    "describe_target",
    "mask_text",
    "one_line",
]

SECTION = "connections"


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for idempotent operations: exponential backoff with jitter, then stop.

    ``attempts`` counts every try (1 = never retry); there is no unbounded mode.
    """

    attempts: int = 3
    backoff: float = 0.1  # seconds before the first retry
    max_backoff: float = 2.0
    jitter: float = 0.5  # up to this fraction of each delay is randomised away

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed try (1-based)."""
        base = min(self.max_backoff, self.backoff * (2 ** max(0, failures - 1)))
        return float(base * (1.0 - self.jitter * random.random()))


@dataclass
class ConnectionSettings(MaskedRepr):
    """Settings every connection accepts; backends subclass this with their own fields."""

    kind: str = ""
    connect_timeout: PositiveFloat = 10.0  # seconds for connect and health checks
    timeout: PositiveFloat = 300.0  # seconds for any other single operation
    retries: NonNegativeInt = 2  # extra tries for idempotent operations (0 disables)
    retry_backoff: NonNegativeFloat = 0.1
    retry_max_backoff: NonNegativeFloat = 2.0

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=max(1, self.retries + 1),
            backoff=max(0.0, self.retry_backoff),
            max_backoff=max(0.0, self.retry_max_backoff),
        )

    def target(self) -> str:
        """Where this connection points, masked (backends may override)."""
        return describe_target(vars(self), default=self.kind)


@dataclass(frozen=True)
class ConnectionSpec:
    """A configured connection as listed by ``%conn list``: nothing secret in it."""

    name: str
    kind: str
    target: str
    file: str = ""
    options: dict[str, Any] = field(default_factory=dict, repr=False)


_TARGET_KEYS = ("url", "uri", "dsn", "endpoint_url", "endpoint", "location", "path", "database")
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>]+")
_KV_SECRET = re.compile(r"\b(password|passwd|pwd|token|api_?key|secret)\s*=\s*('[^']*'|\S+)", re.I)


def describe_target(raw: Mapping[str, Any], default: str = "") -> str:
    """A masked one-line description of where ``raw`` settings point."""
    host = raw.get("host")
    if isinstance(host, str) and host:
        port = raw.get("port")
        where = f"{host}:{port}" if port else host
        database = raw.get("database") or raw.get("dbname")
        return mask_text(f"{where}/{database}" if isinstance(database, str) and database else where)
    for key in _TARGET_KEYS:
        value = raw.get(key)
        if isinstance(value, Unset):
            return f"${{{value.var}}} (unset)"
        if isinstance(value, Secret):
            value = value.reveal()
        if value is not None and str(value):
            return mask_text(str(value))
    embedded = raw.get("embedded_dir")
    if isinstance(embedded, str) and embedded:
        return f"embedded ({embedded})"
    return default


def mask_text(text: str) -> str:
    """``text`` with URLs masked, ``password=...`` pairs hidden and known secrets redacted."""
    text = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
    text = _KV_SECRET.sub(lambda m: f"{m.group(1)}=********", text)
    return redact(text)


def one_line(text: str, limit: int = 300) -> str:
    """The first non-empty line of ``text``, masked and shortened, for error messages."""
    lines = [part.strip() for part in str(text).splitlines() if part.strip()]
    if lines and lines[0].startswith("Traceback (most recent call last)"):
        lines = lines[-1:]  # a Python traceback quoted in a message: its last line is the error
    line = lines[0] if lines else ""
    line = mask_text(line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def connection_entries(settings: Settings) -> dict[str, dict[str, Any]]:
    """The raw ``connections:`` mapping: name -> settings dict (a bare kind name may be null)."""
    section = settings.get(SECTION, {}) or {}
    if not isinstance(section, dict):
        from nbinfra.errors import ConfigError

        raise ConfigError(
            f"{SECTION} in {settings.origin(SECTION)}: expected a mapping of name -> settings."
        )
    entries: dict[str, dict[str, Any]] = {}
    for name, value in section.items():
        if value is None:
            value = {}
        if not isinstance(value, dict):
            from nbinfra.errors import ConfigError

            raise ConfigError(
                f"{SECTION}.{name} in {settings.origin(f'{SECTION}.{name}')}: expected a mapping "
                f"of settings (kind, url, ...), got {type(value).__name__}."
            )
        files = {settings.origin(f"{SECTION}.{name}.{key}") for key in value}
        if len(files) > 1:
            from nbinfra.errors import ConfigError

            raise ConfigError(
                f"Connection name '{name}' is defined in several files "
                f"({', '.join(sorted(files))}); names must be unique across "
                "application-*.yaml, keep it in one file."
            )
        entries[str(name)] = dict(value)
    return entries


def configured_connections(settings: Settings) -> dict[str, ConnectionSpec]:
    """Every configured connection: name -> ``ConnectionSpec`` (masked target, no driver import)."""
    specs: dict[str, ConnectionSpec] = {}
    for name, raw in connection_entries(settings).items():
        kind = raw.get("kind")
        kind_text = kind.var if isinstance(kind, Unset) else str(kind or name)
        specs[name] = ConnectionSpec(
            name=name,
            kind=kind_text.lower(),
            target=describe_target(raw, default=kind_text),
            file=settings.origin(f"{SECTION}.{name}"),
            options={
                k: mask_text(v) if isinstance(v, str) else v
                for k, v in raw.items()
                if k != "kind" and not is_secret_key(k) and not isinstance(v, (Unset, Secret))
            },
        )
    return dict(sorted(specs.items()))


def build_settings(
    cls: type[ConnectionSettings],
    settings: ConnectionSettings | Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
    name: str,
) -> ConnectionSettings:
    """``cls`` from ``settings`` (an instance or a mapping) with ``overrides`` on top."""
    if isinstance(settings, cls) and not overrides:
        return settings
    if isinstance(settings, ConnectionSettings):
        raw = {f.name: getattr(settings, f.name) for f in fields(settings) if f.init}
    else:
        raw = dict(settings or {})
    raw.update(overrides)
    return validate(cls, raw, f"connections.{name}")
