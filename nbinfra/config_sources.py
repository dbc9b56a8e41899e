"""Live configuration: what a session's settings were built from, and noticing changes.

``load_live(resources)`` loads the settings like ``load_settings`` over the *effective*
environment: the process's variables, then those of ``.env`` files for the names the
process does not set. A ``.env`` file is read from the working directory, then next to
each resources folder (first one wins per variable); it never overrides a variable that
is set, and nothing is exported into ``os.environ``.

It returns ``Sources``: the configuration and ``.env`` files with their modification
stamps, and the value in ``os.environ`` of every variable the settings named. A session
compares them cheaply: ``Sources.due()`` lets files be stat'ed at most every
``CHECK_INTERVAL`` seconds, and each instance's ``Deps`` compares only the variables under
the setting paths it read, on every access.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbinfra._reads import unrecorded
from nbinfra._secrets import is_secret_key, remember, remember_url
from nbinfra.config import (
    ENV_PATH,
    ENV_RESOURCES,
    FILES,
    PACKAGE_RESOURCES,
    Settings,
    load_settings,
    resource_dirs,
)
from nbinfra.errors import ConfigError

__all__ = [
    "CHECK_INTERVAL",
    "DOTENV",
    "Deps",
    "Sources",
    "changed_at",
    "dotenv_paths",
    "load_live",
    "read_dotenv",
]

DOTENV = ".env"
CHECK_INTERVAL = 0.2  # seconds between stats of the configuration files

_ABSENT = object()
Stamp = tuple[Any, ...]


def dotenv_paths(dirs: Iterable[Path], cwd: Path) -> list[Path]:
    """``.env`` candidates, first wins: the working directory, then next to each folder."""
    package = PACKAGE_RESOURCES.resolve()
    paths = [cwd / DOTENV] + [d.parent / DOTENV for d in dirs if d != package]
    unique: list[Path] = []
    for path in paths:
        if path not in unique:
            unique.append(path)
    return unique


def read_dotenv(paths: Iterable[Path]) -> dict[str, str]:
    """Variables from the ``.env`` files that exist (first file wins per variable)."""
    values: dict[str, str] = {}
    for path in paths:
        if not path.is_file():
            continue
        from dotenv import dotenv_values

        try:
            found = dotenv_values(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Cannot read {path}: {exc}; fix or remove the file.") from None
        for name, value in found.items():
            if value is None or name in values:
                continue
            values[name] = value
            if is_secret_key(name):
                remember(value)
            elif "://" in value:
                remember_url(value)
    return values


RawEnv = tuple[tuple[Any, ...], tuple[Any, ...]]  # keys and values as os.environ stores them
_raw: list[Any] = [None, None, None, None]  # os.environ, its table, key and value encoders


def _raw_environ() -> tuple[Mapping[Any, Any], Callable[[str], Any], Callable[[str], Any]]:
    """``os.environ``'s own table and encoders (CPython keeps them on ``_Environ``).

    A lookup there costs tens of nanoseconds, where ``os.environ.get`` of an unset name
    raises and catches a KeyError inside (microseconds). Elsewhere: a plain copy.
    """
    environ = os.environ
    if environ is _raw[0]:
        return _raw[1], _raw[2], _raw[3]
    data = getattr(environ, "_data", None)
    key = getattr(environ, "encodekey", None)
    value = getattr(environ, "encodevalue", None)
    if isinstance(data, dict) and callable(key) and callable(value):
        _raw[:] = [environ, data, key, value]
        return data, key, value
    return dict(environ), str, str


def raw_snapshot(values: Iterable[tuple[str, str | None]]) -> RawEnv:
    """The variables as ``os.environ`` stores them, for ``raw_changed``."""
    _data, key, value = _raw_environ()
    pairs = [(key(n), None if v is None else value(v)) for n, v in values]
    return tuple(k for k, _ in pairs), tuple(v for _, v in pairs)


def raw_changed(snapshot: RawEnv) -> bool:
    """True when a variable of ``snapshot`` differs in ``os.environ`` now."""
    keys, values = snapshot
    return bool(keys) and tuple(map(_raw_environ()[0].get, keys)) != values


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _stamp(resources: str | os.PathLike[str] | None) -> Stamp:
    """Everything on disk that decides the settings: folders, files and ``.env`` files."""
    cwd = os.getcwd()
    chosen = os.environ.get(ENV_RESOURCES)
    try:
        dirs = resource_dirs(resources, cwd=cwd)
    except ConfigError as exc:
        return (cwd, chosen, str(exc))
    files: list[tuple[Path, tuple[int, int, int] | None]] = []
    for name in FILES:
        for folder in dirs:
            stat = _stat(folder / name)
            files.append((folder / name, stat))
            if stat is not None:
                break
    dotenvs = [(p, _stat(p)) for p in dotenv_paths(dirs, Path(cwd))]
    return (cwd, chosen, tuple(dirs), tuple(files), tuple(dotenvs))


@dataclass
class Sources:
    """What one load of the settings was built from (see the module docstring)."""

    resources: str | os.PathLike[str] | None
    stamp: Stamp
    env: dict[str, str | None]  # os.environ's value of each variable read (None: unset)
    dotenv: dict[str, str] = field(default_factory=dict)
    checked: float = field(default_factory=time.monotonic)
    raw: RawEnv = ((), ())
    real: Mapping[str, str] = field(default_factory=dict, repr=False)  # os.environ at load

    def __post_init__(self) -> None:
        self.raw = raw_snapshot(self.env.items())

    def watch(self, name: str) -> None:
        """Follow ``name`` too (read by ``Settings.env`` rather than named in a file)."""
        if name not in self.env:
            self.env = {**self.env, name: self.real.get(name)}
            self.raw = raw_snapshot(self.env.items())

    def recent(self) -> bool:
        """True while the last ``changed()`` check is under ``CHECK_INTERVAL`` old."""
        return time.monotonic() - self.checked < CHECK_INTERVAL

    def due(self) -> bool:
        """True at most once every ``CHECK_INTERVAL`` seconds (time for ``changed()``)."""
        now = time.monotonic()
        if now - self.checked < CHECK_INTERVAL:
            return False
        self.checked = now
        return True

    def env_changed(self) -> bool:
        return raw_changed(self.raw)

    def changed(self) -> bool:
        """True when a file, a folder, a ``.env`` file or a variable read differs now."""
        return self.env_changed() or _stamp(self.resources) != self.stamp


def load_live(resources: str | os.PathLike[str] | None = None) -> tuple[Settings, Sources]:
    """The settings over the effective environment, and what they were built from."""
    stamp = _stamp(resources)  # taken first: an edit made while loading is seen next time
    real = dict(os.environ)
    cwd = Path(os.getcwd())
    dirs = resource_dirs(resources, cwd=cwd, environ=real)
    dotenv = read_dotenv(dotenv_paths(dirs, cwd))
    settings = load_settings(resources, cwd=cwd, environ={**dotenv, **real})
    names = {ENV_RESOURCES}
    for refs in settings.env_refs.values():
        names.update(refs)
    env = {name: real.get(name) for name in sorted(names)}
    sources = Sources(resources, stamp, env, dotenv, real=real)
    settings.on_env_read = sources.watch
    return settings, sources


def _under(path: str, prefixes: Iterable[str]) -> bool:
    for prefix in prefixes:
        if not prefix or path == prefix or path.startswith((prefix + ".", prefix + "[")):
            return True
    return False


@dataclass
class Deps:
    """The setting paths one instance read, and the variables under them when it was built."""

    settings: Settings
    paths: frozenset[str]
    env: tuple[tuple[str, str | None], ...] = ()
    raw: RawEnv = ((), ())

    @classmethod
    def of(cls, settings: Settings, paths: Iterable[str], sources: Sources | None) -> Deps:
        deps = cls(settings, frozenset(paths))
        deps.rebase(settings, sources)
        return deps

    def rebase(self, settings: Settings, sources: Sources | None) -> None:
        """Now built from ``settings`` (whose values at ``paths`` are the same)."""
        self.settings = settings
        if sources is None:  # settings given by hand: no variables to follow
            self.env, self.raw = (), ((), ())
            return
        names: set[str] = set()
        for path, refs in settings.env_refs.items():
            if _under(path, self.paths):
                names.update(refs)
        read = {p.removeprefix(ENV_PATH) for p in self.paths if p.startswith(ENV_PATH)}
        seen = sources.env
        self.env = tuple(
            (name, seen[name] if name in seen else os.environ.get(name))
            for name in sorted(names | read)
        )
        self.raw = raw_snapshot(self.env)

    def env_changed(self) -> bool:
        """True when one of this instance's own variables differs in ``os.environ``."""
        return raw_changed(self.raw)


def changed_at(old: Settings, new: Settings, paths: Iterable[str]) -> bool:
    """True when any of ``paths`` has a different value (or presence) in ``new``."""
    if old is new:
        return False
    with unrecorded():
        return any(_value(old, p) != _value(new, p) for p in paths)


def _value(settings: Settings, path: str) -> Any:
    if path.startswith(ENV_PATH):
        return settings.env(path.removeprefix(ENV_PATH))
    return settings.get(path, _ABSENT)
