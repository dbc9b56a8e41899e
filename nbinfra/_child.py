"""A server run as a child process, stopped politely or killed (the test servers, nx-27017)."""

from __future__ import annotations

import subprocess

__all__ = ["ChildProcess"]


class ChildProcess:
    """``kill()`` and ``stop()`` for a class that keeps its server in ``self.process``."""

    process: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        """SIGKILL the server (an abrupt outage, for fault tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; forgets the process."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
