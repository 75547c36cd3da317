"""The lease of ``zklock exec`` while the command runs: once it is LOST, stop the command."""

from __future__ import annotations

import signal
import threading
import time
from typing import TYPE_CHECKING

from ._common import say
from ._proctree import Process, alive, group_of, signal_all

if TYPE_CHECKING:
    from ..lease import Lease
    from ._command import Command

__all__ = ["LeaseMonitor"]


class LeaseMonitor(threading.Thread):
    """While the command runs: once the lease is LOST, SIGTERM it, then SIGKILL after ``grace``.

    "It" is the command and every process it started (``_command``), those it left running
    after it exited and the orphans re-parented to zklock included: none may work on once the
    lock is gone.  After a loss, :meth:`finish` returns only when all of them have exited or
    been sent SIGKILL.  The thread never reaps a process: the main thread does.
    """

    def __init__(self, lease: Lease, command: Command, grace: float) -> None:
        super().__init__(name="zklock-exec-lease", daemon=True)
        self._lease = lease
        self._command = command
        self._grace = grace
        self._done = threading.Event()
        self.reason: str | None = None
        self.stopped_with: str | None = None

    def finish(self) -> None:
        """The command and all it started have exited: end the thread."""
        self._done.set()
        self.join()

    def run(self) -> None:
        """Watch the lease until the command is done; stop everything if the lease is lost."""
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
        pid = self._command.pid
        # Signal first, then write: stderr may be closed or stalled.
        tree = self._tree([])
        self._signal(tree, signal.SIGTERM)
        self.stopped_with = "SIGTERM"
        count = len(tree)
        say(f"the lock {self._lease.path} was lost ({self.reason}); sent SIGTERM to the command "
            f"(pid {pid}) and what it started: {count} process{'' if count == 1 else 'es'}")
        deadline = time.monotonic() + self._grace
        killed = False
        # Until the main thread has reaped the last of them, not until a scan finds none: a
        # scan of /proc is no snapshot, and can miss a process that forks as it runs.
        while not self._done.wait(0.05):
            tree = self._tree(tree)
            if time.monotonic() < deadline:
                continue
            # On every turn, not once: a process forked between a scan and the kill is missed
            # by it, and the main thread waits for every one of them.
            running = self._running(tree)
            self._signal(tree, signal.SIGKILL)
            running = self._command.kill_children() > 0 or running  # one moving to new pids
            if running and not killed:
                killed = True
                self.stopped_with = f"SIGKILL after {self._grace:g} s"
                say(f"the command (pid {pid}) or a process it started still ran "
                    f"{self._grace:g} s after SIGTERM; sent SIGKILL")

    def _tree(self, known: list[Process]) -> list[Process]:
        """The command's processes now, and those seen before (one that left zklock's tree)."""
        now = self._command.processes() or []
        return now + [process for process in known if process not in now]

    def _signal(self, tree: list[Process], signum: int) -> None:
        """``signum`` once to each: the command's group and tree now, and any that left it."""
        command = self._command
        now = command.processes() or []
        command.signal(signum)
        left = [p for p in tree if p not in now and (command.group is None or group_of(p) != command.group)]
        signal_all(left, signum)

    def _running(self, tree: list[Process]) -> bool:
        return bool(alive(tree)) or self._command.running()
