"""The lease: what a holder gets from ``acquire()``/``hold()``, and how it learns it is gone.

A :class:`Lease` is a small value object (lock path, node, fencing token, session) plus one
state that only moves forward::

    HELD <-> SUSPENDED          connection lost / restored with the node verified
      |         |
      +--> LOST <+              session expired, node gone, or silence past the session timeout
      +--> RELEASED             released by its holder

Connection-state handling (``_session.py``) moves the state; the lease itself only adds the
clock: once more time has passed since the server was last known to hear from the session than
the session allows, the lease reports itself LOST when asked, with no thread involved.  A
process frozen by a GC pause or SIGSTOP thus learns on waking, before kazoo notices anything.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from typing import Callable, Protocol

from ._fork import ForkGuard
from ._one_of_a_kind import OneOfAKind
from .errors import LockInDoubt, LockLost, NotHeld, UsageError

__all__ = ["Lease", "LeaseListener", "LeaseState"]

log = logging.getLogger("zklock.lease")


class LeaseState(enum.Enum):
    """Where a lease stands."""

    HELD = "held"
    """The node exists and the session was heard from within its timeout."""
    SUSPENDED = "suspended"
    """The connection is lost; the session (and so the lock) may or may not still live."""
    LOST = "lost"
    """The lock is gone: session expired, node deleted, or silence past the session timeout."""
    RELEASED = "released"
    """The holder released the lock."""


class Liveness(Protocol):
    """Where a lease asks how long its session is surely alive (``_session.SessionWatcher``)."""

    def contact_deadline(self) -> float:
        """Monotonic time after which the server may have expired the session."""


class LeaseListener(Protocol):
    """Called as ``listener(lease, new_state)`` on every state change; must not block.

    Any function or callable object of two positional arguments will do. A listener sees a
    lease's changes in the order they happened, and its last call carries the lease's current
    state: changes made while the listeners are being called are passed on afterwards, by the
    thread calling them, newest only (see ``Lease._deliver``); changes made while a release is
    under way, by the releasing thread once it has freed the lock.
    """

    def __call__(self, lease: Lease, state: LeaseState, /) -> None:
        """Hear that ``lease`` is now in ``state``."""

_TERMINAL = (LeaseState.LOST, LeaseState.RELEASED)


def check_listener(listener: object) -> None:
    """Raise :class:`UsageError` unless ``listener`` can be called (``Lock`` checks its own too)."""
    if not callable(listener):
        raise UsageError(f"listener must be callable as listener(lease, state), not {listener!r}")


class Lease(OneOfAKind):
    """A held lock: its node, its fencing token, and its live state.

    ``token`` is the lock node's creation zxid (``czxid``): strictly increasing across all
    holders of the lock over the ensemble's life, also when the parent node is recreated, so
    a resource can refuse any holder whose token is lower than one it has already seen.
    """

    # Slots, not a dictionary: a client may hold thousands of leases at once, and each is
    # kept for as long as its lock is held (docs/performance.md, "Memory per held lock").
    __slots__ = (
        "__weakref__", "_clock", "_delivering", "_fork_guard", "_held_back", "_listeners",
        "_liveness", "_lost", "_mutex", "_notified", "_state", "acquired_at", "acquired_at_wall",
        "identifier", "node", "path", "reason", "session_id", "token",
    )
    _copy_refusal = "a Lease cannot be copied: share the object itself (or its token)"
    _pickle_refusal = (
        "a Lease cannot be pickled: only the process that holds it can; send its token "
        "(the fencing token) instead"
    )

    def __init__(
        self,
        *,
        path: str,
        node: str,
        token: int,
        session_id: int,
        identifier: str,
        liveness: Liveness,
        listeners: tuple[LeaseListener, ...] = (),
        clock: Callable[[], float] = time.monotonic,
        held_back: bool = False,
    ) -> None:
        self.path = path
        """The lock's path (the parent of its contender nodes)."""
        self.node = node
        """Full path of this holder's ephemeral-sequential node."""
        self.token = token
        """The fencing token: the node's czxid."""
        self.session_id = session_id
        """The ZooKeeper session that owns the node."""
        self.identifier = identifier
        """The identifier stored in the node (who holds it)."""
        self.acquired_at = clock()
        """When the lock was acquired, on the monotonic clock."""
        self.acquired_at_wall = time.time()
        """When the lock was acquired, as a Unix timestamp."""
        self.reason: str | None = None
        """Why the lease left HELD for the last time (``None`` while HELD)."""
        self._liveness = liveness
        self._clock = clock
        self._state = LeaseState.HELD
        self._mutex = threading.Lock()
        self._fork_guard = ForkGuard.shared()
        # A tuple, replaced on change: the lock's own tuple is shared by all of its leases,
        # and a delivery takes the current one without a copy.
        self._listeners: tuple[LeaseListener, ...] = tuple(listeners)
        self._lost: threading.Event | None = None  # made on first use: most leases never need it
        # Listener delivery, guarded by ``_mutex``: the state the listeners were last called
        # with (or are being called with); whether a thread is calling them (it passes on any
        # later change); how many hold-backs keep changes from them (see
        # _hold_back_listeners): a release's, and one from birth (``held_back``) for a lease
        # the recipe made, until the lock object has taken it.  A count, not a flag: another
        # thread may release the lease before its acquirer ends the birth one.
        self._notified = LeaseState.HELD
        self._delivering = False
        self._held_back = 1 if held_back else 0

    @property
    def lost(self) -> threading.Event:
        """A ``threading.Event`` set once the lease is LOST."""
        with self._mutex:
            if self._lost is None:
                self._lost = threading.Event()
                if self._state is LeaseState.LOST:
                    self._lost.set()
            return self._lost

    # ------------------------------------------------------------------ reading the state
    @property
    def state(self) -> LeaseState:
        """The current state; a HELD or SUSPENDED lease past its session deadline turns LOST."""
        state = self._state
        if state not in _TERMINAL and self._clock() >= self._liveness.contact_deadline():
            self._transition(LeaseState.LOST, "no reply from ZooKeeper within the session timeout")
            return self._state
        return state

    @property
    def valid(self) -> bool:
        """True only while the lease is HELD and the session was heard from within its timeout.

        Always False in a process forked after the lease was granted: the child holds nothing.
        """
        # The fork test first: in a child, the state's lock may be held by a parent's thread.
        return not self._fork_guard.forked and self.state is LeaseState.HELD

    def time_left(self) -> float:
        """Seconds until the lease is declared LOST if ZooKeeper is not heard from meanwhile.

        The bound zklock counts itself (see docs/session-loss.md), before the server can
        expire the session: a critical section that must finish under the lock can check
        that it has the time.  ``0.0`` once the lease is LOST or RELEASED.
        """
        if self.state in _TERMINAL:
            return 0.0
        return max(0.0, self._liveness.contact_deadline() - self._clock())

    def check(self) -> None:
        """Raise unless the lease is valid: call it between the steps of a long critical section.

        Raises :class:`LockLost` once lost, :class:`LockInDoubt` while suspended,
        :class:`NotHeld` after release, and :class:`~zklock.errors.UsedAfterFork` in a process
        forked after the lease was granted.
        """
        self._fork_guard.check("this lease")
        state = self.state
        if state is LeaseState.HELD:
            return
        if state is LeaseState.SUSPENDED:
            raise LockInDoubt(
                f"lock {self.path!r} is in doubt: {self.reason}", self.path, self.node
            )
        if state is LeaseState.LOST:
            raise LockLost(f"lock {self.path!r} was lost: {self.reason}", self.path, self.node)
        raise NotHeld(f"lock {self.path!r} was released")

    # ------------------------------------------------------------------ listeners
    def add_listener(self, listener: LeaseListener) -> None:
        """Call ``listener(lease, new_state)`` on every later state change.

        :class:`~zklock.errors.UsageError` if ``listener`` cannot be called.
        """
        check_listener(listener)
        with self._mutex:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: LeaseListener) -> None:
        """Stop calling ``listener``; :class:`~zklock.errors.UsageError` if it was not added."""
        with self._mutex:
            listeners = list(self._listeners)
            if listener not in listeners:
                raise UsageError(f"{listener!r} is not a listener of this lease")
            listeners.remove(listener)  # the first one added, as list.remove does
            self._listeners = tuple(listeners)

    # ------------------------------------------------------------------ moving the state
    def _transition(
        self,
        new: LeaseState,
        reason: str | None = None,
        only_if: Callable[[], bool] | None = None,
    ) -> bool:
        """Move to ``new`` if allowed (LOST and RELEASED are final); tell the listeners.

        ``only_if`` is asked under the lease's lock, so a transition made by another thread
        after the condition changed lands after this one, never between the test and the move.

        If another thread (or this one, from inside a listener) is calling the listeners
        already, this returns at once and that caller passes the change on when it is done.
        """
        with self._mutex:
            old = self._state
            if old is new or old in _TERMINAL:
                return False
            if only_if is not None and not only_if():
                return False
            self._state = new
            self.reason = None if new is LeaseState.HELD else reason
            listeners = self._claim_delivery(new)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "lease %s (session 0x%x): %s -> %s%s", self.node, self.session_id, old.value,
                new.value, f" ({reason})" if reason else "",
            )
        if new is LeaseState.LOST and self._lost is not None:
            self._lost.set()
        if listeners:
            self._deliver(new, listeners)
        return True

    def _hold_back_listeners(self) -> None:
        """Keep changes from the listeners until :meth:`_let_listeners_hear`.

        For a caller in the middle of something a listener must not find half done: a release
        whose lock object does not yet take an acquire.  A thread calling the listeners
        already (kazoo's, with SUSPENDED) stops after its current call and leaves the rest.
        """
        with self._mutex:
            self._held_back += 1

    def _let_listeners_hear(self) -> None:
        """End a hold-back: once none is left, tell the listeners the current state if new.

        Harmless without a hold-back.  If another thread is still calling the listeners, it
        passes the change on itself once its current call returns.
        """
        with self._mutex:
            if self._held_back:
                self._held_back -= 1
            state = self._state
            if self._held_back or state is self._notified:
                return
            listeners = self._claim_delivery(state)
        if listeners:
            self._deliver(state, listeners)

    def _claim_delivery(self, state: LeaseState) -> tuple[LeaseListener, ...]:
        """The listeners to tell of ``state`` now, or () (called holding ``_mutex``).

        () while another thread is calling them or a hold-back is on: that caller, or the
        hold-back's end, passes ``state`` on.  Otherwise ``state`` counts as told, and the
        caller must call :meth:`_deliver` with the listeners returned.
        """
        if self._delivering or self._held_back:
            return ()
        self._notified = state
        listeners = self._listeners
        if listeners:
            self._delivering = True
        return listeners

    def _deliver(self, state: LeaseState, listeners: tuple[LeaseListener, ...]) -> None:
        """Call ``listeners`` with ``state``, then with the current state while it differs.

        Only one thread at a time runs this for a lease (``_delivering``), outside ``_mutex``
        so that listeners may read the lease.  A change made meanwhile, by another thread or by
        a listener whose read of ``state`` found the lease LOST, is not delivered by the thread
        that made it but picked up here once the current round is over: every listener thus
        sees the changes in order, ends on the lease's current state, and hears a final state
        exactly once.  Intermediate states superseded meanwhile are skipped.
        """
        try:
            while True:
                self._call(listeners, state)
                with self._mutex:
                    if self._state is self._notified or self._held_back:
                        self._delivering = False  # the hold-back's end passes on the rest
                        return
                    state = self._notified = self._state
                    listeners = self._listeners
        except BaseException:  # a listener's KeyboardInterrupt, say: let later changes through
            with self._mutex:
                self._delivering = False
                final = self._state if self._state in _TERMINAL else None
                if final is not None and final is not self._notified and not self._held_back:
                    self._notified = final  # nobody else will: no change comes after it
                    listeners = self._listeners
                else:
                    final = None
            if final is not None:
                self._call(listeners, final)
            raise

    def _call(self, listeners: tuple[LeaseListener, ...], state: LeaseState) -> None:
        """Call each listener; one that raises is logged and the others are still called."""
        for listener in listeners:
            try:
                listener(self, state)
            except Exception:
                log.exception("lease listener %r failed", listener)

    def __repr__(self) -> str:
        return (
            f"Lease(path={self.path!r}, node={self.node!r}, token={self.token}, "
            f"session_id=0x{self.session_id:x}, state={self._state.value})"
        )
