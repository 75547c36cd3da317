"""The exclusive distributed lock, shaped like ``threading.Lock``.

``Lock`` is the thin API over the shared recipe (``_recipe.py``): it validates input, turns a
timeout into one :class:`~zklock._deadline.Deadline`, lets threads of one process share the
object through its local gate (``_gate.py``: one holder at a time, the others wait locally
without creating more znodes), and maps outcomes to the ``threading.Lock`` contract:
``acquire()`` returns a bool, ``with`` and the decorators raise
:class:`~zklock.errors.LockTimeout`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from kazoo.client import KazooClient
from kazoo.security import ACL

from ._deadline import Deadline
from ._fork import ForkGuard
from ._gate import LocalGate
from ._kinds import EXCLUSIVE, LockKind
from ._one_of_a_kind import OneOfAKind
from ._recipe import LockRecipe, ReleaseOutcome
from ._validate import (
    check_blocking,
    check_client,
    check_decorated,
    check_identifier,
    check_lock_path,
    check_naming,
    check_retry,
    check_timeout,
)
from ._wakeup import Wakeup
from .acl import check_acl
from .contender import Contender
from .errors import InvalidTimeout, LockLost, LockTimeout, NotHeld, UsageError
from .lease import Lease, LeaseListener, LeaseState, check_listener
from .naming import NodeNaming
from .retry import DEFAULT_RETRY, RetryPolicy

__all__ = ["Hold", "Lock", "locked"]

F = TypeVar("F", bound=Callable[..., Any])

# Taken only to make a Lock's set of open blocks, on its first block (two threads may both
# be entering a first block: one may hold the lock while a listener releases it).
_MAKING_OPEN_BLOCKS = threading.Lock()


def _default_identifier() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _add_note(error: BaseException, note: str) -> None:
    add_note = getattr(error, "add_note", None)  # Python >= 3.11
    if add_note is not None:
        add_note(note)
    else:  # the loss must not go unsaid: in the log, then, beside the error that hides it
        logging.getLogger("zklock.lock").warning("%s (while %r was raised)", note, error)


class _LockingDecorator(contextlib.ContextDecorator):
    """``contextlib.ContextDecorator`` that refuses what it cannot protect (async, generators)."""

    def __call__(self, func: F) -> F:
        check_decorated(func)
        return super().__call__(func)


class Lock(_LockingDecorator, OneOfAKind):
    """An exclusive lock on ``path``, held through an ephemeral-sequential node.

    ``client`` is a started ``KazooClient``.  ``identifier`` is stored in the lock node so
    others can see who holds or waits (default ``"<hostname>:<pid>"``; ``""`` is allowed, as
    kazoo's own lock writes it, though ``zklock exec`` refuses one).  ``retry`` is a
    :class:`~zklock.retry.RetryPolicy`; ``listener`` is called as ``listener(lease, state)`` on
    every state change of every lease this lock hands out.

    ``naming`` spells the nodes for the other recipes on the path: by default as
    ``kazoo.recipe.lock.Lock`` does, so a zklock Lock and a kazoo Lock on the same path exclude
    each other; :attr:`~zklock.NodeNaming.CURATOR` as Curator's ``InterProcessMutex``.
    ``acl`` (a list of ``kazoo.security.ACL``) is given to the lock node and to the parents
    this lock creates; by default :func:`zklock.acl.default_acl` (owner-only with world read
    for an authenticated client, else kazoo's default).

    A lock made before ``os.fork()`` raises :class:`~zklock.errors.UsedAfterFork` in the child.
    """

    kind: ClassVar[LockKind] = EXCLUSIVE
    _copy_refusal = "a Lock cannot be copied: share it, or make another Lock(client, path)"
    _pickle_refusal = "a Lock cannot be pickled: make a Lock(client, path) in the process that uses it"

    def __init__(
        self,
        client: KazooClient,
        path: str,
        identifier: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        listener: LeaseListener | None = None,
        naming: NodeNaming = NodeNaming.KAZOO,
        acl: list[ACL] | None = None,
    ) -> None:
        check_client(client)
        self.path = check_lock_path(path, getattr(client, "chroot", None) or "")
        self.identifier = check_identifier(
            _default_identifier() if identifier is None else identifier
        )
        self.naming = check_naming(naming)
        self._fork_guard = ForkGuard()
        self._recipe = LockRecipe(
            client, self.path, self.kind, self.identifier, check_retry(retry) or DEFAULT_RETRY,
            self.naming, check_acl(acl, client),
        )
        if listener is not None:
            check_listener(listener)
        self._listeners: tuple[LeaseListener, ...] = () if listener is None else (listener,)
        self._gate = LocalGate(self.path)  # threads of this process sharing the object
        # Per thread, the leases its open ``with`` blocks entered with (innermost last); and
        # the leases of blocks not yet exited, on whatever thread (made on a first block): a
        # block may end on another thread than it began on (a context manager run by a
        # thread pool), and its entry left behind on the first thread must not count.
        self._blocks = threading.local()
        self._open_blocks: set[Lease] | None = None
        # Sleeps between release retries; one release runs at a time, so one is reused.
        self._release_wakeup = Wakeup()

    # ------------------------------------------------------------------ the threading.Lock API
    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Acquire the lock; return True once held, False if ``timeout`` passed first.

        ``timeout`` is a total deadline in seconds (``None`` or ``-1``: no limit; ``0``: one
        try).  ``blocking=False`` makes one try.  Raises :class:`AlreadyHeld` if the calling
        thread already holds this lock and gave no timeout (with one it waits, as
        ``threading.Lock`` does: any thread may release), :class:`AcquireCancelled` after
        :meth:`cancel`, and a :class:`~zklock.errors.ZooKeeperError` if ZooKeeper stays
        unreachable until the deadline (or the retry policy stops).
        """
        return self._acquire_lease(blocking, timeout) is not None

    def _acquire_lease(self, blocking: bool, timeout: float | None) -> Lease | None:
        """:meth:`acquire`, returning the lease it got (or None) instead of a bool.

        The one acquire path: ``acquire()``, ``hold()``, ``with`` and ``@locked`` all come
        here, so a lock kind that changes acquiring changes this.  ``hold()`` takes the lease
        from here rather than reading ``lease`` afterwards: another thread may release the
        lock in between.
        """
        self._fork_guard.check("this lock")
        blocking = check_blocking(blocking)
        seconds = check_timeout(timeout, blocking)
        if seconds == 0:
            blocking = False
        self._recipe.check_started()
        self._recipe.check_may_wait("acquire()", on_callback_thread_too=True)
        # A one-try acquire still gets its round trip: bounded by the request timeout.
        deadline = Deadline(seconds if blocking else self._recipe.request_timeout())
        wakeup = Wakeup()
        if not self._gate.enter(wakeup, deadline, blocking):
            return None
        lease: Lease | None = None
        try:
            lease = self._recipe.acquire(deadline, blocking, wakeup, self._listeners)
        finally:
            self._gate.acquired(wakeup, lease)
            if lease is not None:  # held now: a listener may release it (the recipe's doc)
                lease._let_listeners_hear()
        return lease

    def release(self) -> None:
        """Release the lock.

        Raises :class:`NotHeld` if this object does not hold it, and :class:`LockLost` if the
        lease was lost before it could be released (the critical section was not protected).
        Called on kazoo's connection thread (from a listener: letting go on SUSPENDED, say),
        it does not wait for ZooKeeper, which that thread must read: the lease is RELEASED at
        once and the node deleted in the background, after a reconnect if need be, so a loss
        found then cannot raise :class:`LockLost` (check the lease before letting go there).
        """
        self._release(None)

    def _release(self, entered: Lease | None) -> None:
        """:meth:`release`; given the lease a ``with`` block ``entered`` with, only that one.

        A listener (or another thread) may have released the block's lease meanwhile, and
        this object been acquired again by another thread: that thread's lease is not the
        block's to release.  Its own lease lost, the block hears :class:`LockLost` still.
        """
        self._fork_guard.check("this lock")
        lease = self._gate.take_lease(entered)
        if lease is None:
            if entered is None:
                raise NotHeld(f"release of {self.path!r}, which this lock object does not hold")
            if entered.state is LeaseState.LOST:
                raise LockLost(
                    f"lock {self.path!r} was lost: {entered.reason}", self.path, entered.node
                )
            return  # released already, by a listener or another thread
        try:  # at once: the gate opens again whatever happens from here
            # The listeners hear RELEASED (or LOST) once this object takes an acquire again:
            # one that re-acquires from its listener must not find the lock still busy.
            lease._hold_back_listeners()
            outcome = self._recipe.release(lease, self._release_wakeup)
        finally:
            self._gate.leave()
            lease._let_listeners_hear()
        if outcome is ReleaseOutcome.ALREADY_LOST:
            raise LockLost(
                f"lock {self.path!r} was lost before release: {lease.reason}", self.path, lease.node
            )

    def locked(self) -> bool:
        """True while this object holds the lock and the lease is not known to be lost.

        A lost lease still occupies the object until :meth:`release` (which then raises
        :class:`LockLost`): until then, another ``acquire()`` on it waits, as for a held lock
        (on the thread that acquired it, with no timeout, :class:`AlreadyHeld`).
        """
        self._fork_guard.check("this lock")
        lease = self._gate.lease
        return lease is not None and lease.state in (LeaseState.HELD, LeaseState.SUSPENDED)

    @property
    def lease(self) -> Lease | None:
        """The current lease (it may report LOST until released), or None when not held."""
        return self._gate.lease

    def cancel(self) -> None:
        """Make every acquire pending on this object right now raise :class:`AcquireCancelled`."""
        self._gate.cancel()

    def contenders(self, timeout: float | None = None) -> list[Contender]:
        """The lock's queue in order (the holder first), with identifiers and tokens.

        ``timeout`` bounds the call; ``None`` (or ``-1``, or ``inf``) means the request timeout.
        ``0`` is refused with :class:`~zklock.errors.InvalidTimeout`: a listing takes time.
        A contender that just gave up may still be listed by another session for a moment:
        its acquire sends the delete of its node before returning, without waiting for it.
        """
        self._fork_guard.check("this lock")
        seconds = check_timeout(timeout)
        if seconds == 0:
            raise InvalidTimeout(
                "contenders() needs time for its requests: a timeout > 0, or None for the "
                "request timeout"
            )
        return self._recipe.contenders(
            Deadline(seconds if seconds is not None else self._recipe.request_timeout())
        )

    # ------------------------------------------------------------------ with / decorator
    def hold(self, timeout: float | None = None, *, raise_on_lost: bool = True) -> Hold:
        """A context manager (and decorator) that holds the lock, raising LockTimeout on timeout.

        ``with lock.hold(timeout=5) as lease:`` gives the :class:`~zklock.lease.Lease`.  On
        leaving, if the lease was lost meanwhile, :class:`LockLost` is raised (or noted on the
        exception already leaving the block) unless ``raise_on_lost=False``.
        """
        return Hold(self, timeout, raise_on_lost)

    def __enter__(self) -> Lease:
        """Acquire, waiting without limit; the :class:`~zklock.lease.Lease` is the ``as`` value."""
        return self._enter_block(None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._exit_block(exc, raise_on_lost=True)

    # ------------------------------------------------------------------ internals
    def _enter_block(self, timeout: float | None) -> Lease:
        """Acquire for a ``with`` block (or a decorated call) of the calling thread."""
        lease = self._acquire_lease(True, timeout)
        if lease is None:
            raise LockTimeout(self.path, timeout)
        open_blocks = self._open_blocks
        if open_blocks is None:  # made on a first block: most locks never see one
            with _MAKING_OPEN_BLOCKS:
                if self._open_blocks is None:
                    self._open_blocks = set()
                open_blocks = self._open_blocks
        open_blocks.add(lease)
        self._blocks.__dict__.setdefault("entered", []).append(lease)
        return lease

    def _exit_block(self, exc: BaseException | None, raise_on_lost: bool) -> None:
        """Leave the calling thread's innermost block: release the lease it entered with.

        ``exc`` is the exception leaving the block, if any: a lost lock or a failed release
        is noted on it rather than raised over it.
        """
        entered = self._blocks.__dict__.get("entered")
        open_blocks = self._open_blocks if self._open_blocks is not None else set()
        lease = None
        while entered:  # this thread's innermost block that no other thread has ended
            candidate = entered.pop()
            if candidate in open_blocks:
                lease = candidate
                break
        if lease is not None:
            open_blocks.discard(lease)
        else:  # a block begun on another thread: which one cannot be told
            current = self._gate.lease
            # A block still open on a lease let go of elsewhere (a listener on SUSPENDED,
            # say) is taken for it first: ending one releases nothing (a lost one reports
            # its loss). Taking the block that holds the lock now instead could end a lease
            # whose block is still running, on this or another thread, and let another
            # process in beside it; at worst the lock is now held until that block ends.
            stale = next(iter(open_blocks - {current}), None)
            if stale is not None:
                open_blocks.discard(stale)
                lease = stale
            elif current is not None and current in open_blocks:
                open_blocks.discard(current)  # the one block open: it holds the lock now
        try:
            self._release(lease)
        except LockLost as lost:
            if exc is not None:
                _add_note(exc, f"zklock: the lock was lost while this block ran: {lost}")
            elif raise_on_lost:
                raise
        except Exception as error:
            if exc is None:
                raise
            _add_note(exc, f"zklock: releasing the lock also failed: {error!r}")

    def __repr__(self) -> str:
        lease = self._gate.lease  # read once: another thread may release meanwhile
        # The last state recorded, not ``state``: a repr (in a log line, say) must not run
        # the lease's listeners, which reading ``state`` can.
        state = lease._state.value if lease is not None else "unlocked"
        return f"{type(self).__name__}(path={self.path!r}, {state})"


class Hold(_LockingDecorator):
    """Holds a lock for the span of a ``with`` block or a decorated call (see ``Lock.hold``)."""

    def __init__(self, lock: Lock, timeout: float | None, raise_on_lost: bool) -> None:
        if not isinstance(lock, Lock):
            raise UsageError(f"Hold needs a zklock.Lock, not {type(lock).__name__}")
        check_timeout(timeout)
        if not isinstance(raise_on_lost, bool):  # "no" would count as true
            raise UsageError(f"raise_on_lost must be True or False, not {raise_on_lost!r}")
        self.lock = lock
        self.timeout = timeout
        self.raise_on_lost = raise_on_lost

    def __enter__(self) -> Lease:
        """Acquire within the timeout (else :class:`LockTimeout`); the lease is the ``as`` value."""
        return self.lock._enter_block(self.timeout)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.lock._exit_block(exc, self.raise_on_lost)


def locked(
    client: KazooClient,
    path: str,
    *,
    timeout: float | None = None,
    identifier: str | None = None,
    retry: RetryPolicy | None = None,
    naming: NodeNaming = NodeNaming.KAZOO,
    acl: list[ACL] | None = None,
    listener: LeaseListener | None = None,
) -> Callable[[F], F]:
    """Decorate a function so each call runs holding the lock on ``path``.

    ``timeout`` bounds the wait for each call; :class:`LockTimeout` is raised when it passes.
    Works on functions and methods; one :class:`Lock` is shared by all calls.  The other
    arguments are :class:`Lock`'s.
    """
    check_timeout(timeout)
    lock = Lock(client, path, identifier, retry=retry, listener=listener, naming=naming, acl=acl)

    def decorate(func: F) -> F:
        check_decorated(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lock.hold(timeout):
                return func(*args, **kwargs)

        wrapper.lock = lock  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
