"""COMMAND of ``zklock exec`` and every process it starts: start it, signal them, wait for all.

``zklock exec`` starts no process but COMMAND, and on Linux it is a child subreaper while
COMMAND runs (``_proctree.child_subreaper``): every process descended from zklock is then
COMMAND or one that COMMAND started, orphans included.  That is what lets zklock hold the lock
until the last of them has exited, as ``flock(1)`` does through the descriptor they inherit,
and stop all of them when the lock is lost.  Elsewhere (no ``/proc``, no subreaper) it is
COMMAND and, when it has one, its process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from ._proctree import Process, alive, descendants, group_of, signal_all

__all__ = ["Command"]


class Command:
    """COMMAND, started by :meth:`start`, and the processes it starts.

    ``group`` is COMMAND's own process group when it was given one (zklock not in its
    terminal's foreground), else None: it then shares zklock's group, where the terminal's
    Ctrl-C reaches it directly.
    """

    def __init__(self, proc: subprocess.Popen[bytes], own_group: bool) -> None:
        self._proc = proc
        self.pid = proc.pid
        self.group = proc.pid if own_group else None
        self.returncode: int | None = None  # COMMAND's, as Popen's: -N for death by signal N

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str], own_group: bool) -> Command:
        """Start ``argv``; in a process group of its own if ``own_group``.  Raises OSError."""
        options: dict[str, Any] = {}
        if own_group:
            if sys.version_info >= (3, 11):
                options["process_group"] = 0
            else:  # pragma: no cover - the only way before 3.11; setpgid is async-signal-safe
                options["preexec_fn"] = os.setpgrp
        return cls(subprocess.Popen(argv, env=env, **options), own_group)

    def processes(self) -> list[Process] | None:
        """COMMAND and every process it started that still runs; None where unknowable."""
        return descendants()

    def running(self) -> bool:
        """True while COMMAND or any process it started still runs."""
        found = self.processes()
        if found is None:  # pragma: no cover - systems without /proc
            return self.returncode is None
        return bool(alive(found))

    def signal(self, signum: int, spare_group: int | None = None) -> None:
        """Send ``signum`` once to COMMAND and to every process it started that still runs.

        Processes in ``spare_group`` are left out: they had this signal already (the terminal
        sends its Ctrl-C to the whole foreground group).  COMMAND's own group is signalled as
        a whole first, which reaches a process forked at this very moment too; the others (a
        job put in another group, a daemon in its own session) one by one.
        """
        found = self.processes()
        done = {spare_group} if spare_group is not None else set()
        if self.group is not None and self.group not in done and self._group_is_ours(found):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.group, signum)
            done.add(self.group)
        if found is None:  # pragma: no cover - systems without /proc
            if self.group is None and self.returncode is None and spare_group is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signum)
            return
        signal_all([p for p in found if group_of(p) not in done], signum)

    def _group_is_ours(self, found: list[Process] | None) -> bool:
        """True while a process of ours is in COMMAND's group (the id is a pid: reusable)."""
        if found is None:  # pragma: no cover - systems without /proc
            return True
        return any(group_of(process) == self.group for process in found)

    def wait(self, on_exit: Callable[[int], None] | None = None) -> int:
        """Reap children until none is left; return COMMAND's status (as Popen's returncode).

        Returns once COMMAND *and* every process it started have exited.  Orphans are reaped
        as they exit, so none stays a zombie while COMMAND runs; ``on_exit(returncode)`` is
        called when COMMAND itself has exited.  Signal handlers run meanwhile (the wait is
        resumed after each, PEP 475).
        """
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:  # no child left
                break
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                self._proc.returncode = self.returncode  # reaped here: Popen must not wait again
                if on_exit is not None:
                    on_exit(self.returncode)
        if self.returncode is None:  # pragma: no cover - reaped by someone else: a bug
            raise RuntimeError(f"the exit status of pid {self.pid} was collected elsewhere")
        return self.returncode

    def kill(self) -> None:
        """SIGKILL COMMAND and all it started, and reap them (when zklock itself fails)."""
        self.signal(signal.SIGKILL)
        with contextlib.suppress(RuntimeError):
            self.wait()
