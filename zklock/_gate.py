"""The local gate: the threads of one process that share a lock object take turns at it.

A ``Lock`` is shared by threads as a ``threading.Lock`` is.  Only one of them at a time queues
in ZooKeeper through it; the others wait here, without creating nodes of their own, and the
gate knows which thread holds the object and with which lease.  Kinds that share or re-enter
a lock within a process (read, reentrant) differ from the exclusive lock here, not in the
recipe.
"""

from __future__ import annotations

import threading

from ._deadline import Deadline
from ._wakeup import Wakeup
from .errors import AcquireCancelled, AlreadyHeld
from .lease import Lease

__all__ = ["LocalGate"]

_RELEASING = object()  # the gate's owner while a release is under way: no thread holds


class LocalGate:
    """Which thread of this process holds (or is acquiring) one lock object, and its lease."""

    def __init__(self, path: str) -> None:
        self._path = path
        # One mutex guards the fields below; the condition on it is only for threads that
        # wait their turn.  Sections that do not wait take the mutex itself, which costs less.
        self._mutex = threading.Lock()
        self._turn = threading.Condition(self._mutex)
        # The thread that is in (acquiring or holding), _RELEASING once a release took the
        # lease, None when none is.  The thread itself, not its ident: Python reuses the ident
        # of a thread that ended, and a new thread must not be told it already holds a lock
        # another one left held.
        self._owner: threading.Thread | object | None = None
        self._pending: set[Wakeup] = set()  # what cancel() wakes: waits here and in the recipe
        self.lease: Lease | None = None
        """The lease held through this object, or None (read without the mutex: one read)."""

    def enter(self, wakeup: Wakeup, deadline: Deadline, blocking: bool) -> bool:
        """Let the calling thread in to acquire, once no other thread of ours is in.

        Returns False when the deadline passes first (at once without ``blocking``).  Raises
        :class:`AlreadyHeld` if the calling thread is the one in and would wait with no
        deadline (as ``threading.Lock`` it would wait for ever unless another thread released:
        a nested ``with lock:`` is the usual cause); with a deadline it waits its turn as any
        thread, since any thread may release.  Raises :class:`AcquireCancelled` after
        :meth:`cancel`.  ``wakeup`` stays reachable by :meth:`cancel` until :meth:`acquired`.
        """
        me = threading.current_thread()
        with self._mutex:
            if self._owner is not None:
                if self._owner is me and blocking and deadline.remaining() is None:
                    raise AlreadyHeld(
                        f"this thread already holds {self._path!r}, and would wait for ever "
                        "for itself (give a timeout if another thread is to release it; a lost "
                        "lease, too, holds the object until release())"
                    )
                if not self._wait_turn(wakeup, deadline, blocking):
                    return False
            self._owner = me
            self._pending.add(wakeup)
        return True

    def acquired(self, wakeup: Wakeup, lease: Lease | None) -> None:
        """The acquire of the thread in has ended, holding ``lease`` or not (None: next one in)."""
        with self._mutex:
            self._pending.discard(wakeup)
            if lease is None:  # not held: failed, timed out or interrupted
                self._open()
            else:
                self.lease = lease

    def take_lease(self, expected: Lease | None = None) -> Lease | None:
        """For a release: the lease held, which the object no longer holds (None if none).

        With ``expected``, only that lease: None if the object holds another one, or none.
        The gate stays closed until :meth:`leave`: no thread of ours queues again while the
        release is under way.  The thread that acquired no longer holds: its next acquire
        waits for the release like any other thread's.
        """
        with self._mutex:
            lease = self.lease
            if lease is None or (expected is not None and lease is not expected):
                return None
            self.lease = None
            self._owner = _RELEASING
            return lease

    def leave(self) -> None:
        """The release has ended: let the next thread in."""
        with self._mutex:
            self._open()

    def cancel(self) -> None:
        """Wake every acquire of this object pending now, to raise :class:`AcquireCancelled`."""
        with self._mutex:
            for wakeup in self._pending:
                wakeup.cancel()
            self._turn.notify_all()

    def _wait_turn(self, wakeup: Wakeup, deadline: Deadline, blocking: bool) -> bool:
        # Called holding the mutex; True once no thread is in, False past the deadline.
        self._pending.add(wakeup)  # so that cancel() reaches this wait
        try:
            while self._owner is not None:
                if wakeup.cancelled:
                    raise AcquireCancelled(f"acquire of {self._path!r} was cancelled")
                remaining = deadline.remaining() if blocking else 0.0
                if remaining == 0:
                    return False
                self._turn.wait(remaining)
            return True
        finally:
            self._pending.discard(wakeup)  # enter() adds it again once the thread is in

    def _open(self) -> None:
        # Called holding the mutex.
        self._owner = None
        self.lease = None
        self._turn.notify_all()
