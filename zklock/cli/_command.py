"""COMMAND of ``zklock exec`` and every process it starts: start it, signal them, wait for all.

``zklock exec`` starts no process but COMMAND, and on Linux it is a child subreaper while
COMMAND runs (``_proctree.child_subreaper``): every process descended from zklock is then
COMMAND or one that COMMAND started, orphans included, but for the children zklock already
had when COMMAND started (a sidecar a container's entry script started before it ran
``exec zklock exec``, or the other children of a program that runs ``zklock.cli.main``) and
what they start: those are never signalled, waited for or reaped.  That is what lets zklock
hold the lock until the last of COMMAND's processes has exited, as ``flock(1)`` does through
the descriptor they inherit, and stop all of them when the lock is lost.  Elsewhere (no
``/proc``, no subreaper) it is COMMAND and, when it has one, its process group.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .._parent_death import killed_with_this_thread
from ._proctree import (
    Process,
    alive,
    can_see_processes,
    child_pids,
    children,
    descendants,
    finished,
    group_of,
    signal_all,
)

__all__ = ["Command", "exit_statuses_kept"]

# Looks at zklock's list of children in one Command.kill_children: each takes tens of
# microseconds, so a process that keeps forking itself into new pids is caught many times over.
_KILL_LOOKS = 200


@contextlib.contextmanager
def exit_statuses_kept() -> Iterator[None]:
    """SIGCHLD at its default disposition while in the block, if it was ignored.

    A process started with SIGCHLD ignored (a parent may leave it so) has its children reaped
    by the kernel, exit statuses lost: COMMAND's could not be reported.  Only the main thread
    may change it; elsewhere it is left as it is.
    """
    previous = signal.getsignal(signal.SIGCHLD)
    changed = False
    if previous == signal.SIG_IGN and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        changed = True
    try:
        yield
    finally:
        if changed:
            signal.signal(signal.SIGCHLD, previous)


def _program_file(program: str, env: dict[str, str]) -> str:
    """The file ``execvp(3)`` runs for ``program``: itself if it has a ``/``, else found on PATH.

    ``execvp(3)`` (and so ``flock(1)``) stops at the first executable file of that name on
    ``PATH``, and runs it with ``/bin/sh`` if the kernel cannot run it.  Python's own search
    goes on to the next directory instead, and would run another program of the same name.
    """
    if "/" in program:
        return program
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    return found


class Command:
    """COMMAND, started by :meth:`start`, and the processes it starts.

    ``group`` is COMMAND's own process group when it was given one (zklock not in its
    terminal's foreground), else None: it then shares zklock's group, where the terminal's
    Ctrl-C reaches it directly.
    """

    def __init__(
        self, proc: subprocess.Popen[bytes], own_group: bool, others: frozenset[Process] = frozenset()
    ) -> None:
        self._proc = proc
        self.pid = proc.pid
        self.group = proc.pid if own_group else None
        self.returncode: int | None = None  # COMMAND's, as Popen's: -N for death by signal N
        self._others = others  # zklock's children from before COMMAND: not COMMAND's
        self._other_pids = frozenset(process.pid for process in others)

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str], own_group: bool) -> Command:
        """Start ``argv``; in a process group of its own if ``own_group``.  Raises OSError.

        On Linux COMMAND is killed (SIGKILL) if zklock is killed outright while it runs:
        zklock's session, and with it the lock, ends a session timeout later, and COMMAND
        must not be running then.  (The processes COMMAND started are out of the kernel's
        reach for this: docs/cli.md says what a supervisor should do.)  Call this from the
        thread that waits for COMMAND: the kernel watches the thread, not the process.
        """
        options: dict[str, Any] = {}
        if own_group:
            if sys.version_info >= (3, 11):
                options["process_group"] = 0
            else:  # pragma: no cover - the only way before 3.11; setpgid is async-signal-safe
                options["preexec_fn"] = os.setpgrp
        die_with_zklock = killed_with_this_thread(signal.SIGKILL)
        if die_with_zklock is not None:
            before = options.get("preexec_fn")
            options["preexec_fn"] = (
                die_with_zklock if before is None else lambda: (before(), die_with_zklock())
            )
        others = frozenset(children())
        program = _program_file(argv[0], env)
        try:
            proc = subprocess.Popen(argv, executable=program, env=env, **options)
        except OSError as error:
            if error.errno != errno.ENOEXEC:
                raise
            # Not a program the kernel knows (no #! line): a shell script, as to execvp(3).
            try:
                proc = subprocess.Popen(["/bin/sh", program, *argv[1:]], env=env, **options)
            except FileNotFoundError:  # not COMMAND's fault: say what is missing
                raise OSError(
                    errno.ENOEXEC, "not a program, and no /bin/sh to run it as a script"
                ) from error
        return cls(proc, own_group, others)

    def processes(self) -> list[Process] | None:
        """COMMAND and every process it started that still runs; None where unknowable."""
        return descendants(sparing=self._others)

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

    def kill_children(self) -> int:
        """SIGKILL zklock's own children, looking again until no new one shows; return how many.

        Those are COMMAND and the orphans re-parented to zklock, but for the children zklock
        had before COMMAND.  A scan of every process (:meth:`signal`) takes about a
        millisecond: time enough for a process to fork itself into a new pid in a session of
        its own and exit, again and again, so that each kill of a scan lands on a pid already
        gone.  Each such new process is an orphan, re-parented to zklock, and zklock's list of
        children reads in tens of microseconds: killing each as soon as the list shows it
        catches it.  Only our own children are signalled, by pid: a pid is not handed out
        again before zklock reaps it, and one reaped between the look and the kill would have
        to be handed out again within microseconds.  Children that had finished already
        (zombies the main thread has not reaped yet) are neither signalled nor counted.
        """
        seen: set[int] = set()
        killed = 0
        for _ in range(_KILL_LOOKS):
            pids = child_pids()
            if pids is None:  # pragma: no cover - kernels without the per-thread lists
                break
            new = [pid for pid in pids if pid not in self._other_pids and pid not in seen]
            if not new:
                break
            for pid in new:
                if not finished(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        killed += 1
            seen.update(new)
        return killed

    def _group_is_ours(self, found: list[Process] | None) -> bool:
        """True while a process of ours is in COMMAND's group (the id is a pid: reusable)."""
        if found is None:  # pragma: no cover - systems without /proc
            return True
        return any(group_of(process) == self.group for process in found)

    def wait(self, on_exit: Callable[[int], None] | None = None) -> int:
        """Reap COMMAND's processes until none is left; return COMMAND's status (as Popen's).

        Returns once COMMAND *and* every process it started have exited.  Orphans are reaped
        as they exit, so none stays a zombie while COMMAND runs; ``on_exit(returncode)`` is
        called when COMMAND itself has exited.  Signal handlers run meanwhile (the wait is
        resumed after each, PEP 475).  Children zklock had before COMMAND are not reaped.
        """
        if self._others or not can_see_processes():
            # Without /proc the children zklock already had cannot be told apart: wait for
            # COMMAND alone, by its pid, and reap nobody else's.
            return self._wait_beside_others(on_exit)
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:  # no child left
                break
            if pid == self.pid:
                self._exited(status, on_exit)
        if self.returncode is None:  # pragma: no cover - reaped by someone else: a bug
            raise RuntimeError(f"the exit status of pid {self.pid} was collected elsewhere")
        return self.returncode

    def _wait_beside_others(self, on_exit: Callable[[int], None] | None) -> int:
        """:meth:`wait` when zklock has children of its own: reap only COMMAND's, by pid.

        ``waitpid(-1)`` would take the others' exit statuses from whoever waits for them;
        COMMAND is waited for by its pid, and what it leaves running is polled for.
        """
        _, status = os.waitpid(self.pid, 0)
        self._exited(status, on_exit)
        while True:
            for child in children():
                if child not in self._others:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(child.pid, os.WNOHANG)
            # A child of ours left means not done, whatever the scan says: a scan of /proc is
            # no snapshot, and misses a process that forks itself into a new pid meanwhile.
            pids = child_pids() or []
            if not self.running() and all(pid in self._other_pids for pid in pids):
                break
            time.sleep(0.05)
        assert self.returncode is not None
        return self.returncode

    def _exited(self, status: int, on_exit: Callable[[int], None] | None) -> None:
        self.returncode = os.waitstatus_to_exitcode(status)
        self._proc.returncode = self.returncode  # reaped here: Popen must not wait again
        if on_exit is not None:
            on_exit(self.returncode)

    def kill(self) -> None:
        """SIGKILL COMMAND and all it started, and reap them (when zklock itself fails)."""
        self.signal(signal.SIGKILL)
        self.kill_children()
        with contextlib.suppress(RuntimeError):
            self.wait()
