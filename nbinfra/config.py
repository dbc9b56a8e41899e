"""Settings from ``resources/application-*.yaml``, with ``${VAR:default}`` substitution.

Loading, in order:

1. Each of ``FILES`` is taken from the first directory that has it, searching the explicit
   path (or ``$NBINFRA_RESOURCES``), then ``./resources`` from the working directory upward,
   then the defaults shipped inside the package. A user's folder may hold only the files it
   changes.
2. Files are parsed with ``yaml.safe_load`` (a key given twice in one mapping is an error);
   then every *string scalar* is substituted: ``${VAR}``, ``${VAR:default}`` (split on the
   first ``:``, so a default may be a URL), ``${VAR:}`` (optional, empty) and ``$${`` (a
   literal ``${``). Text is never substituted before parsing, so a value cannot inject YAML.
3. A ``${VAR}`` with no default whose variable is unset becomes an ``Unset`` marker; the
   error (naming variable, file and key path) is raised only when a component validates
   that key, so an unset ``REDIS_PASSWORD`` does not break a notebook that never uses Redis.
4. ``Settings.section(path, Schema)`` validates a subtree into a dataclass after
   substitution, coercing strings from the environment (``"6379"`` -> ``6379``) and naming
   the file and key path in every message. Numbers typed with a ``nbinfra._bounds`` range
   (``PositiveFloat``...) are checked against it.

Values under secret-looking keys (``password``, ``api_key``, ``token``...) and passwords in
URLs are remembered for redaction the moment they are loaded.
"""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from nbinfra import _yaml
from nbinfra._reads import note
from nbinfra._secrets import is_secret_key, remember, remember_url
from nbinfra.config_validate import Unset, _join, validate
from nbinfra.errors import ConfigError

__all__ = [
    "FILES",
    "PACKAGE_RESOURCES",
    "Settings",
    "Unset",
    "load_settings",
    "resource_dirs",
    "substitute",
    "validate",
]

FILES = (
    "application-cache.yaml",
    "application-db.yaml",
    "application-external.yaml",
    "application-llm.yaml",
    "application-vector.yaml",
)
PACKAGE_RESOURCES = Path(__file__).parent / "resources"
ENV_RESOURCES = "NBINFRA_RESOURCES"
ENV_PATH = "env:"  # the pseudo-path prefix under which Settings.env records a variable read

D = TypeVar("D")

_TOKEN = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
_MISSING: Any = object()


def substitute(
    value: str, *, file: str = "<string>", path: str = "", environ: Mapping[str, str] | None = None
) -> str | Unset:
    """Substitute ``${VAR}``/``${VAR:default}``/``$${`` in one string scalar."""
    env = os.environ if environ is None else environ
    unset: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        unset.append(name)
        return ""

    result = _TOKEN.sub(replace, value)
    if unset:
        return Unset(unset[0], file, path)
    return result


def resource_dirs(
    explicit: str | os.PathLike[str] | None = None,
    *,
    cwd: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Path]:
    """Directories searched for configuration files, most specific first."""
    env = os.environ if environ is None else environ
    dirs: list[Path] = []
    chosen = explicit if explicit is not None else env.get(ENV_RESOURCES) or None
    if chosen is not None:
        path = Path(chosen).expanduser()
        if not path.is_dir():
            source = "resources=" if explicit is not None else f"${ENV_RESOURCES}="
            raise ConfigError(
                f"Configuration folder {path} ({source}{chosen}) does not exist; "
                "point it at a folder holding application-*.yaml files."
            )
        dirs.append(path.resolve())
    here = Path(cwd if cwd is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "resources"
        if candidate.is_dir() and any((candidate / name).is_file() for name in FILES):
            dirs.append(candidate.resolve())
            break
    dirs.append(PACKAGE_RESOURCES.resolve())
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


class Settings:
    """The merged, substituted configuration tree, with the origin file of every key.

    ``env_refs`` maps each key path whose value named ``${VAR}``s to those variable names.
    """

    def __init__(
        self,
        tree: dict[str, Any],
        origins: dict[str, str],
        files: list[Path] | None = None,
        env_refs: dict[str, tuple[str, ...]] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._tree = tree
        self._origins = origins
        self.files = list(files or [])
        self.env_refs = dict(env_refs or {})
        self._environ = os.environ if environ is None else environ
        # Told of every variable ``env`` reads (live settings follow it from then on).
        self.on_env_read: Callable[[str], None] | None = None

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        file: str = "<dict>",
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Settings from an in-memory mapping (strings are substituted like file values)."""
        origins: dict[str, str] = {}
        refs: dict[str, tuple[str, ...]] = {}
        env = os.environ if environ is None else environ
        tree = _walk(dict(data), file, "", origins, env, refs)
        return cls(tree, origins, env_refs=refs, environ=env)

    # -- access -------------------------------------------------------------------
    def get(self, path: str, default: Any = _MISSING) -> Any:
        """The raw (substituted, unvalidated) value at dotted ``path``."""
        note(path)
        node: Any = self._tree
        for part in filter(None, path.split(".")):
            if not isinstance(node, dict) or part not in node:
                if default is _MISSING:
                    raise ConfigError(
                        f"No setting {path} in {self.origin(path)}; add it to the "
                        "matching resources/application-*.yaml file."
                    )
                return default
            node = node[part]
        return node

    def env(self, name: str) -> str | None:
        """A variable of the environment these settings were built over (``.env`` included).

        Recorded as the pseudo-path ``env:NAME``, so an instance that read it is rebuilt
        when the variable changes, as for a ``${NAME}`` in a file.
        """
        note(f"{ENV_PATH}{name}")
        if self.on_env_read is not None:
            self.on_env_read(name)
        return self._environ.get(name)

    def has(self, path: str) -> bool:
        return self.get(path, None) is not None

    def origin(self, path: str) -> str:
        """The file that defined ``path`` (or its nearest defined parent)."""
        parts = [p for p in path.split(".") if p]
        while parts:
            found = self._origins.get(".".join(parts))
            if found:
                return found
            parts.pop()
        return ", ".join(sorted({Path(f).name for f in self._origins.values()})) or "configuration"

    def section(self, path: str, schema: type[D], default: Any = _MISSING) -> D:
        """Validate the subtree at ``path`` into ``schema`` (a dataclass)."""
        value = self.get(path, {} if default is _MISSING else default)
        return validate(schema, value, path, self)

    def as_dict(self, *, masked: bool = True) -> dict[str, Any]:
        """A copy of the tree; secrets masked unless ``masked=False``."""
        return typing.cast(dict[str, Any], _copy(self._tree, masked=masked, key=""))

    def __repr__(self) -> str:
        names = ", ".join(str(f) for f in self.files) or "in-memory"
        return f"Settings(files=[{names}])"


def load_settings(
    resources: str | os.PathLike[str] | None = None,
    *,
    cwd: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Load every ``application-*.yaml`` along the search path into one ``Settings``."""
    env = os.environ if environ is None else environ
    dirs = resource_dirs(resources, cwd=cwd, environ=env)
    tree: dict[str, Any] = {}
    origins: dict[str, str] = {}
    refs: dict[str, tuple[str, ...]] = {}
    files: list[Path] = []
    for name in FILES:
        for folder in dirs:
            path = folder / name
            if path.is_file():
                data = _read_yaml(path)
                local: dict[str, str] = {}
                walked = _walk(data, str(path), "", local, env, refs)
                _merge(tree, walked, str(path), "", origins, local)
                files.append(path)
                break
    return Settings(tree, origins, files, refs, env)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            data = _yaml.load(fh)
    except _yaml.DuplicateKeyError as exc:
        raise ConfigError(
            f"{path}: key {exc.key!r} is defined twice, at line {exc.first_line} and line "
            f"{exc.line}; keep one of them."
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML ({problem}); fix the file.") from exc
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror}.") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections, not {type(data).__name__}."
        )
    return data


def _walk(
    node: Any,
    file: str,
    path: str,
    origins: dict[str, str],
    env: Mapping[str, str],
    refs: dict[str, tuple[str, ...]],
) -> Any:
    if path:
        origins[path] = file
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                key = str(key)
            out[key] = _walk(value, file, _join(path, key), origins, env, refs)
        return out
    if isinstance(node, list):
        return [_walk(v, file, f"{path}[{i}]", origins, env, refs) for i, v in enumerate(node)]
    if isinstance(node, str):
        if "${" in node:
            names = tuple(m.group(1) for m in _TOKEN.finditer(node) if m.group(1))
            if names:
                refs[path] = names
        value = substitute(node, file=file, path=path, environ=env)
        if isinstance(value, str) and value:
            last = path.rsplit(".", 1)[-1]
            if is_secret_key(last):
                remember(value)
            elif "://" in value:
                remember_url(value)
        return value
    return node


def _merge(
    into: dict[str, Any],
    new: dict[str, Any],
    file: str,
    path: str,
    origins: dict[str, str],
    local: dict[str, str],
) -> None:
    for key, value in new.items():
        here = _join(path, key)
        if key in into and isinstance(into[key], dict) and isinstance(value, dict):
            _merge(into[key], value, file, here, origins, local)
            continue
        if key in into:
            raise ConfigError(
                f"{here} is defined in both {origins.get(here, '?')} and {file}; "
                "keep it in one file."
            )
        into[key] = value
        for p, f in local.items():
            if p == here or p.startswith(here + ".") or p.startswith(here + "["):
                origins[p] = f
    if path and path not in origins:
        origins[path] = file


def _copy(node: Any, *, masked: bool, key: str) -> Any:
    if isinstance(node, dict):
        return {k: _copy(v, masked=masked, key=k) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v, masked=masked, key=key) for v in node]
    if masked and isinstance(node, str) and node and is_secret_key(key):
        return "********"
    if masked and isinstance(node, str) and "://" in node:
        from nbinfra._secrets import mask_url

        return mask_url(node)
    if isinstance(node, Unset):
        return f"${{{node.var}}} (unset)"
    return node


# -- validation -----------------------------------------------------------------------
