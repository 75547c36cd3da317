"""The lease of ``zklock exec`` while the command runs: once it is LOST, stop the command."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from typing import TYPE_CHECKING

from ._common import say

if TYPE_CHECKING:
    from ..lease import Lease

__all__ = ["LeaseMonitor"]


class LeaseMonitor(threading.Thread):
    """While the command runs: once the lease is LOST, SIGTERM it, then SIGKILL after ``grace``."""

    def __init__(self, lease: Lease, proc: subprocess.Popen[bytes], grace: float) -> None:
        super().__init__(name="zklock-exec-lease", daemon=True)
        self._lease = lease
        self._proc = proc
        self._grace = grace
        self._done = threading.Event()
        self.reason: str | None = None
        self.stopped_with: str | None = None

    def finish(self) -> None:
        """The command has exited: end the thread."""
        self._done.set()
        self.join()

    def run(self) -> None:
        """Watch the lease until the command exits; stop the command if the lease is lost."""
        from ..lease import LeaseState

        while not self._done.is_set():
            # ``state`` also applies the lease's own clock (no reply within the session timeout).
            if self._lease.lost.wait(0.1) or self._lease.state is LeaseState.LOST:
                break
        else:
            return
        if self._done.is_set():
            return
        self.reason = self._lease.reason or "lost"
        pid = self._proc.pid
        say(f"the lock {self._lease.path} was lost ({self.reason}); sending SIGTERM to pid {pid}")
        self._send(signal.SIGTERM)
        self.stopped_with = "SIGTERM"
        if self._done.wait(self._grace):
            return
        say(f"pid {pid} still running {self._grace:g} s after SIGTERM; sending SIGKILL")
        self._send(signal.SIGKILL)
        self.stopped_with = f"SIGKILL after {self._grace:g} s"

    def _send(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signum)
