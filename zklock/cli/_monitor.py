"""The lease of ``zklock exec`` while the command runs: once it is LOST, stop the command."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING

from ._common import say
from ._proctree import Process, alive, process_tree, signal_all

if TYPE_CHECKING:
    from ..lease import Lease

__all__ = ["LeaseMonitor"]


class LeaseMonitor(threading.Thread):
    """While the command runs: once the lease is LOST, SIGTERM it, then SIGKILL after ``grace``.

    "It" is the command and every process it started (``_proctree``): a script's children
    must not work on once the lock is gone.  After a loss, :meth:`finish` returns only when
    all of them have exited or been sent SIGKILL.
    """

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
        # Signal first, then write: stderr may be closed or stalled.
        tree = self._tree([])
        signal_all(tree, signal.SIGTERM)
        self.stopped_with = "SIGTERM"
        started = max(0, len(tree) - 1)
        say(f"the lock {self._lease.path} was lost ({self.reason}); sent SIGTERM to pid {pid} "
            f"and the {started} process{'' if started == 1 else 'es'} it started")
        deadline = time.monotonic() + self._grace
        while alive(tree := self._tree(tree)):
            if time.monotonic() >= deadline:
                signal_all(tree, signal.SIGKILL)
                self.stopped_with = f"SIGKILL after {self._grace:g} s"
                say(f"pid {pid} or a process it started still ran {self._grace:g} s after "
                    "SIGTERM; sent SIGKILL")
                return
            time.sleep(0.05)

    def _tree(self, known: list[Process]) -> list[Process]:
        """The command's processes now, and those seen before (an orphan leaves the tree)."""
        now = process_tree(self._proc.pid) if self._proc.poll() is None else []
        return now + [process for process in known if process not in now]
