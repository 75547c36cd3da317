"""Signals during ``zklock exec``: SIGINT/SIGTERM/SIGHUP act according to the phase of the run."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from ._errors import Interrupted

if TYPE_CHECKING:
    from ._command import Command

__all__ = [
    "FORWARDED_SIGNALS", "STOP", "Mode", "SignalRouter", "in_terminal_foreground", "terminal_foreground",
]

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Mode:
    """What a signal does, by phase of ``zklock exec``."""

    RAISE = "raise"  # nothing to clean up in the main thread's way: raise Interrupted
    WAIT = "wait"  # the waiting thread cancels the acquire
    FORWARD = "forward"  # pass the signal to the command and all it started
    RECORD = "record"  # only note it (lock held, child not started yet or already done)


STOP = 0  # the byte that stops the waiting thread; signal numbers are never 0

# The same signal again this soon is a second copy of one delivery, passed on once: timeout(1)
# signals its child and then its own group, and a supervisor may signal zklock's pid and group.
SAME_DELIVERY = 0.1  # seconds
# A terminal's hang-up reaches zklock's group within this span of the first SIGHUP found with
# the terminal gone (the shell passes its own on; the kernel signals the group when the
# session's leader exits).  A SIGHUP after it is someone's ``kill -HUP``: passed on.
HANG_UP_SPAN = 1.0  # seconds


class SignalRouter:
    """Handlers for SIGINT/SIGTERM/SIGHUP whose effect depends on the phase (``mode``).

    Handlers run in the main thread between two bytecodes, so they take no lock: they append to
    a list, write to a non-blocking pipe, or send a signal.  A signal that the shell set to be
    ignored (as for ``zklock ... &``) stays ignored.
    """

    def __init__(self) -> None:
        self.mode = Mode.RAISE
        self.received: list[int] = []
        self._pending: list[int] = []
        self._child: Command | None = None
        self._forwarded_at: dict[int, float] = {}  # signal -> when it was last passed on
        self._hung_up_at: float | None = None  # the first SIGHUP found with the terminal gone
        self._old: dict[int, Any] = {}
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)

    def __enter__(self) -> SignalRouter:
        for signum in FORWARDED_SIGNALS:
            old = signal.getsignal(signum)
            if old == signal.SIG_IGN:
                continue
            self._old[signum] = old
            signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, old in self._old.items():
            signal.signal(signum, signal.SIG_DFL if old is None else old)
        os.close(self._read_fd)
        os.close(self._write_fd)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if self.mode == Mode.RAISE:
            self.mode = Mode.RECORD
            raise Interrupted(signum)
        if self.mode == Mode.WAIT:
            self.poke(signum)
        elif self.mode == Mode.FORWARD:
            if self._child is None:
                self._pending.append(signum)
            else:
                self._forward(signum)

    def check(self) -> None:
        """Raise :class:`Interrupted` if a signal has arrived (before the child started)."""
        if self.received:
            raise Interrupted(self.received[0])

    def attach(self, child: Command) -> None:
        """From now on pass signals to ``child``; pass those that came while it started."""
        self._child = child
        while self._pending:
            # The child did not exist when these came: even the terminal's did not reach it.
            self._forward(self._pending.pop(0), before_child=True)

    def _forward(self, signum: int, before_child: bool = False) -> None:
        """Pass ``signum`` on to the command and every process it started, once to each.

        Also after the command exited: the processes it left running hold the lock.  A copy
        that comes within :data:`SAME_DELIVERY` of the last one passed on is not passed on.
        """
        if self._child is None:
            return
        now = time.monotonic()
        if now - self._forwarded_at.get(signum, -SAME_DELIVERY) < SAME_DELIVERY:
            return
        self._forwarded_at[signum] = now
        spare = None
        if not before_child and self._from_the_terminal(signum, now):
            # Taken for the terminal's own (Ctrl-C, hang-up): it reached zklock's whole group,
            # so only the processes outside that group are left to be told.
            spare = os.getpgrp()
        self._child.signal(signum, spare_group=spare)

    def _from_the_terminal(self, signum: int, now: float) -> bool:
        """Whether ``signum`` is taken for one the terminal sent to zklock's whole group."""
        if signum not in (signal.SIGINT, signal.SIGHUP):
            return False
        foreground = terminal_foreground()
        if foreground:
            return True
        # A hang-up takes the terminal away before this handler runs: the kernel clears the
        # session's controlling terminal and signals the session's leader alone.  Unless
        # zklock leads the session, the hang-up reached zklock's whole group (a shell passes
        # it on to its jobs; the kernel does, when the leader exits), so a command started
        # in zklock's group, in the terminal's foreground then, had it directly.
        assert self._child is not None
        if not (
            signum == signal.SIGHUP and self._child.group is None
            and os.getsid(0) != os.getpid() and foreground is None
        ):
            return False
        if self._hung_up_at is None:
            self._hung_up_at = now
        return now - self._hung_up_at < HANG_UP_SPAN

    def poke(self, byte: int) -> None:
        """Wake the waiting thread with one byte (a signal number, or ``STOP``)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write_fd, bytes([byte]))

    def read(self, timeout: float) -> bytes:
        """Bytes poked so far, waiting up to ``timeout`` seconds for the first."""
        ready, _, _ = select.select([self._read_fd], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self._read_fd, 256)
        except BlockingIOError:
            return b""


def terminal_foreground() -> bool | None:
    """Whether zklock's process group is its controlling terminal's foreground; None: no terminal.

    Asked of ``/dev/tty``, the controlling terminal whatever fds 0-2 are: at a prompt, a
    ``zklock ... </dev/null >log 2>&1`` still gets the terminal's Ctrl-C.
    """
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:  # no controlling terminal: cron, systemd, a container, after setsid
        return None
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def in_terminal_foreground() -> bool:
    """True when zklock's process group is the foreground group of its controlling terminal."""
    return terminal_foreground() is True
