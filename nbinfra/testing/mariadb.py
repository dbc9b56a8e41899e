"""``MariaDBServer``: a private ``mariadbd`` for tests (see ``servers``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from nbinfra._child import ChildProcess
from nbinfra.testing.servers import _die_with_parent, free_port

__all__ = ["MariaDBServer", "find_mariadbd"]


# -- MariaDB --------------------------------------------------------------------------
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin")


def find_mariadbd() -> tuple[str, str] | None:
    """``(mariadbd, mariadb-install-db)``: on PATH or in the sbin folders (not on a plain
    user's PATH); None when MariaDB is not installed (``apt-get install mariadb-server``)."""
    found = []
    for name in ("mariadbd", "mariadb-install-db"):
        path = shutil.which(name) or next(
            (str(Path(d) / name) for d in _SBIN if os.access(Path(d) / name, os.X_OK)), None
        )
        if path is None:
            return None
        found.append(path)
    return found[0], found[1]


class MariaDBServer(ChildProcess):
    """A private MariaDB on 127.0.0.1 with a user that logs in with a password.

    ``root()`` logs in without one over the Unix socket (``socket``), for setting up;
    ``url`` is a SQLAlchemy URL for ``user``. ``stop()``/``start()`` keep the port and the
    data (a restart, for fault tests); ``close()`` removes everything.
    """

    user = "nbinfra"
    password = "mariadb-pw-5e7c"
    database = "nbinfra"

    def __init__(self, port: int | None = None) -> None:
        binaries = find_mariadbd()
        if binaries is None:
            raise FileNotFoundError("no mariadbd: apt-get install mariadb-server")
        self.binary, self.install_db = binaries
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="nbinfra-mariadb-"))
        self.datadir = self._dir / "data"
        self.socket = str(self._dir / "mysqld.sock")
        self._ready = False

    @property
    def url(self) -> str:
        return (
            f"mysql+pymysql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"
        )

    def _as_root(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def _install(self, timeout: float) -> None:
        log_path = self._dir / "install.log"
        with log_path.open("wb") as log_file:
            done = subprocess.run(
                [
                    self.install_db,
                    "--no-defaults",
                    f"--datadir={self.datadir}",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                    "--skip-name-resolve",
                    *self._as_root(),
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        if done.returncode != 0:
            text = log_path.read_text(errors="replace").strip()
            raise RuntimeError(f"mariadb-install-db failed: {text[-500:]}")

    def start(self, timeout: float = 60.0) -> MariaDBServer:
        if self.process is not None and self.process.poll() is None:
            return self
        if not self.datadir.exists():
            self._install(timeout)
        args = [
            self.binary,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--port={self.port}",
            f"--bind-address={self.host}",
            f"--socket={self.socket}",
            f"--pid-file={self._dir / 'mariadbd.pid'}",
            f"--log-error={self._dir / 'error.log'}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M",
            "--max-connections=200",
            *self._as_root(),
        ]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (self._dir / "error.log").read_text(errors="replace").strip()
                raise RuntimeError(f"mariadbd exited at start: {err[-500:]}")
            if self._answers():
                if not self._ready:
                    self._create_user()
                    self._ready = True
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"mariadbd did not answer on port {self.port} within {timeout} s")

    def root(self) -> Any:
        """A PyMySQL connection as the administrator over the Unix socket (autocommit):
        ``root``, or the user running the tests, whom mariadb-install-db's socket
        authentication lets in without a password too."""
        import getpass

        import pymysql

        admin = "root" if os.geteuid() == 0 else getpass.getuser()
        return pymysql.connect(unix_socket=self.socket, user=admin, autocommit=True)

    def _answers(self) -> bool:
        """The server takes connections on its socket (it sends its greeting first)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            try:
                sock.connect(self.socket)
                return bool(sock.recv(4))
            except OSError:
                return False

    def _create_user(self) -> None:
        conn = self.root()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
                for host in ("localhost", "127.0.0.1", "%"):
                    cur.execute(  # our own constants: nothing to bind
                        f"CREATE USER IF NOT EXISTS '{self.user}'@'{host}' "
                        f"IDENTIFIED BY '{self.password}'"
                    )
                    cur.execute(f"GRANT ALL ON *.* TO '{self.user}'@'{host}'")
        finally:
            conn.close()

    def running_statements(self) -> list[str]:
        """The statements running now (the process list), seen from a new connection."""
        conn = self.root()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT INFO FROM information_schema.PROCESSLIST "
                    "WHERE ID <> CONNECTION_ID() AND INFO IS NOT NULL"
                )
                return [row[0] for row in cur.fetchall()]
        finally:
            conn.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> MariaDBServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
