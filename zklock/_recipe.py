"""THE lock recipe: ephemeral-sequential nodes, one predecessor watch, one deadline.

Every lock kind runs this code; what differs between kinds is the pure decision in
``_kinds.py``.  Every request of a lock's queue (create, list, watch, delete) is sent from
here; the session watcher (``_session.py``) sends only its own checks and clean-ups.

One acquire, in order:

1. Send the create (Create2, which also returns the node's ``czxid``: the fencing token) and a
   ``get_children`` of the lock path back to back, without waiting in between.  ZooKeeper runs
   one session's requests in order, so the listing already holds the new node: an uncontended
   acquire costs one round trip.  A missing parent is created on the NoNode answer, never
   checked beforehand.
2. Sort the contenders (serial-number order, ``_names.py``) and ask the kind: hold, or watch one
   node ahead.  The watch is a ``get`` with a watch (as Curator's ``getData``), so no watch is
   left on a node that is already gone.  Its reply is not waited for: the waiting thread
   sleeps at once, and a NoNode reply counts as the deletion it reveals.
3. Wait on one event, set by the watch (or its reply), by ``cancel()``, or by any connection
   state change, for at most what is left of the deadline (and, until the watch request is
   answered, of the request timeout).  If the watched node was deleted and the
   listing without it says we hold, we hold: sequence numbers only grow, so nobody can have
   joined the queue ahead meanwhile, and that hand-off costs no request.  Otherwise list
   again (one request, sent by the watch callback itself when the node was deleted) and go
   to 2.

Transient errors restart the run under the retry policy.  A create whose reply was lost is
found again by its attempt id and kept only if its ``ephemeralOwner`` is the current session.
However the acquire ends, every node it created and does not keep is deleted, retried on
reconnect while the session lives (``CreateLedger`` + ``SessionWatcher.delete_later``).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from typing import Any

from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import EventType, KeeperState
from kazoo.security import ACL

from ._attempts import CreateLedger, OwnNode
from ._deadline import Deadline
from ._kinds import LockKind
from ._names import NodeName, created_after, later_names_key, parse_node_name, queue_order
from ._session import SessionWatcher
from ._wakeup import Wakeup
from .acl import default_acl
from .contender import Contender
from .errors import (
    _KAZOO_ERRORS,
    AcquireCancelled,
    ClientNotConnected,
    ConnectionLost,
    NoAuthorization,
    NodeExists,
    NoNode,
    SessionExpired,
    UsageError,
    ZkLockError,
    _NoAnswerByDeadline,
    _translate,
    translate_kazoo_errors,
)
from .handler import runs_inline
from .lease import Lease, LeaseListener, LeaseState
from .naming import NodeNaming
from .retry import RetryPolicy

__all__ = ["LockRecipe", "ReleaseOutcome"]

log = logging.getLogger("zklock.recipe")

#: The lease's ``reason`` once its holder's release deleted its node.
RELEASED_BY_HOLDER = "released by its holder"


class PredecessorWatch:
    """One wait on the node ahead: what its watch saw, and the listing it sent at once.

    When the watched node is deleted (or the reply to the watch request says it is already
    gone), the callback either leaves ``listing`` unset (the queue minus that node puts us
    first: we hold) or sends the confirming ``get_children`` itself, so the request is on its
    way before the waiting thread is even scheduled.

    kazoo cannot take a watch back: once the wait is over (``ended``), the watch may still fire
    (the node goes after the acquire gave up, or after a wake-up of another cause).  Its
    callbacks then do nothing: no listing sent for nobody, no later wait on the same event
    woken for nothing.
    """

    __slots__ = ("deleted", "ended", "event", "holds_once_deleted", "listing")

    def __init__(self, event: threading.Event, holds_once_deleted: bool) -> None:
        self.event = event
        self.holds_once_deleted = holds_once_deleted
        self.deleted = False
        self.ended = False  # set by the waiting thread when it stops waiting on this watch
        self.listing: tuple[Any, float] | None = None  # (kazoo's async result, send time)


def _starting(client: KazooClient) -> bool:
    """True between ``start_async()`` and kazoo's first state change (kazoo says CLOSED then).

    kazoo has no public word for it: its ``_stopped`` event is cleared by ``start()`` /
    ``start_async()`` and set again by ``stop()``. A client kazoo gave up on by itself (its
    reconnect tries ran out, its authentication failed) is CLOSED for good with ``_stopped``
    still clear: its connection thread, made by ``start_async()`` before it returns, has ended.
    """
    stopped = getattr(client, "_stopped", None)
    if stopped is None or stopped.is_set():
        return False
    routine = getattr(getattr(client, "_connection", None), "_connection_routine", None)
    is_alive = getattr(routine, "is_alive", None)  # a greenlet of another handler may not say
    return routine is not None and (is_alive is None or bool(is_alive()))


def _is_lost(lease: Lease) -> bool:
    # A function, not an inline test: the state can change between two reads.
    return lease.state is LeaseState.LOST


class ReleaseOutcome(enum.Enum):
    """How a release ended."""

    RELEASED = "released"
    ALREADY_LOST = "already lost"


class LockRecipe:
    """Acquire and release one lock path for one lock kind on one kazoo client."""

    def __init__(
        self,
        client: KazooClient,
        path: str,
        kind: LockKind,
        identifier: str,
        retry: RetryPolicy,
        naming: NodeNaming = NodeNaming.KAZOO,
        acl: list[ACL] | None = None,
    ) -> None:
        missing = {kind.marker, kind.curator_marker} - set(kind.queued_behind)
        if missing:
            # Its own node would never be found in its listing: each try would queue again
            # and leave a node behind, one per try, until the session ended.
            raise UsageError(
                f"lock kind {kind!r} must queue behind its own nodes: {sorted(missing)} missing "
                "from its queued_behind"
            )
        self.client = client
        self.path = path
        self.kind = kind
        self.identifier = identifier
        self.retry = retry
        self.naming = naming
        self.acl = acl  # None: zklock.acl.default_acl, asked at each create (auth may change)
        self._data = identifier.encode("utf-8")
        self._watcher: SessionWatcher | None = None

    # ------------------------------------------------------------------ shared helpers
    def check_started(self) -> None:
        """Refuse a client that was never started or is stopped/closed (kazoo would hang)."""
        state = self.client.client_state
        if state == KeeperState.CLOSED and _starting(self.client):
            return  # start_async() was called: kazoo says CLOSED until its thread runs
        if state in (KeeperState.CLOSED, KeeperState.AUTH_FAILED):
            raise ClientNotConnected(
                "the KazooClient is not started (call client.start()) or was stopped/closed"
            )

    def check_may_wait(self, call: str, on_callback_thread_too: bool = False) -> None:
        """Refuse ``call`` on a kazoo thread where it would wait for itself.

        Always on kazoo's connection thread (state listeners, lease listeners told of a
        connection change, inline callbacks); with ``on_callback_thread_too``, also on
        kazoo's callback threads (watch and completion callbacks, the listeners they tell).
        ``acquire()`` (``on_callback_thread_too``) is refused on the session's watchdog too,
        where lease listeners hear of a loss: its wait would stall every other lease's watch.
        """
        session = self._session()
        if on_callback_thread_too and session.on_watchdog_thread():
            raise UsageError(
                f"{call} cannot wait on zklock's session watchdog (in a lease listener told "
                "of a loss or a reconnect): it would stop watching every other lease "
                "meanwhile; call it from another thread"
            )
        if session.on_kazoo_thread(callback_threads_too=on_callback_thread_too):
            raise UsageError(
                f"{call} cannot wait for ZooKeeper on one of kazoo's threads (in a state or "
                "lease listener, or a callback): it would block the thread that hands over "
                "the answer; call it from another thread"
            )

    def _session(self) -> SessionWatcher:
        if self._watcher is None:  # one per client for its whole life: look it up once
            self._watcher = SessionWatcher.of(self.client)
        return self._watcher

    def request_timeout(self) -> float:
        """How long one request may go unanswered before it counts as a connection loss."""
        if self.retry.request_timeout is not None:
            return self.retry.request_timeout
        return self._session().session_timeout

    def _wait(self, result: Any, deadline: Deadline) -> Any:
        """Wait for one reply, never past the deadline nor the request timeout.

        Cut short by the deadline before the request timeout on a connected client, it
        raises ``_NoAnswerByDeadline``: the server may only be slower than the time left,
        which is no sign of a lost connection.  Without a connection it is one.
        """
        cap = bound = None
        try:
            if result.ready():  # most replies are in by the time they are read
                return result.get()
            bound = self.request_timeout()
            cap = deadline.cap(bound)
            return result.get(timeout=cap)
        except KazooTimeoutError as error:
            if cap is not None and bound is not None and cap < bound and self._session().connected:
                raise _NoAnswerByDeadline(
                    f"{self._context()}: the deadline passed before ZooKeeper answered"
                ) from error
            raise _translate(error) from error
        except _KAZOO_ERRORS as error:  # translate_kazoo_errors, without a context manager
            raise _translate(error, client_starting=_starting(self.client)) from error

    def _context(self) -> str:
        session_id = self._session().session_id
        return f"lock {self.path} (session 0x{session_id or 0:x})"

    # ------------------------------------------------------------------ acquire
    def acquire(
        self,
        deadline: Deadline,
        blocking: bool,
        wakeup: Wakeup,
        listeners: tuple[LeaseListener, ...] = (),
    ) -> Lease | None:
        """Queue for the lock; return the lease, or None when the deadline passed first.

        The lease is HELD, or already SUSPENDED or LOST when the connection dropped or the
        session ended since the answer that granted it.  Its listeners hear nothing until
        the caller, once it holds the lease, calls ``lease._let_listeners_hear()``: one told
        of a SUSPENDED may release the lock, and must find it held by then.

        With ``blocking=False`` only one decision is made.  Raises :class:`AcquireCancelled`
        after ``wakeup.cancel()``, and the translated error when retries are exhausted.
        """
        session = self._session()  # the client is checked by every run (_run)
        ledger = CreateLedger(on_late_node=self._discard)
        session.waiting(wakeup.event)
        kept: OwnNode | None = None
        lease: Lease | None = None
        granted = False
        try:
            try:
                grant = self.retry.run(
                    lambda: self._run(deadline, blocking, wakeup, ledger),
                    deadline, wakeup.sleep, self._context,
                )
            except _NoAnswerByDeadline as cut:
                # Out of time, as threading.Lock says; nodes on their way are deleted.  A
                # one-try acquire's deadline is the request timeout itself: for it, no answer
                # in that time is a lost connection, reported as such.  A cancel that came
                # meanwhile is what the caller asked for: it wins over both.
                if wakeup.cancelled:
                    raise self._cancelled() from None
                if not blocking:
                    raise ConnectionLost(
                        f"{self._context()}: no answer from ZooKeeper within the request timeout"
                    ) from cut.__cause__
                return None
            if grant is None:
                return None
            kept, drops_before = grant
            lease = Lease(
                path=self.path, node=kept.path, token=kept.czxid, session_id=kept.session_id,
                identifier=self.identifier, liveness=session, listeners=listeners,
                held_back=True,
            )
            session.track(lease, drops_before)  # LOST at once if the session ended meanwhile
            if log.isEnabledFor(logging.INFO):
                log.info("%s: acquired %s (token %d)", self._context(), kept.path, kept.czxid)
            granted = True
            return lease
        finally:
            session.done_waiting(wakeup.event)
            if not granted and lease is not None:  # interrupted after the node was ours
                session.untrack(lease)
            # A node not handed over in a lease is deleted, the kept one too if it was not.
            self._abandon(ledger, kept if granted else None)

    def _run(
        self, deadline: Deadline, blocking: bool, wakeup: Wakeup, ledger: CreateLedger
    ) -> tuple[OwnNode, int] | None:
        """One try: our node and the connection drops counted before its grant was asked, or None.

        The count (``SessionWatcher.drops``) is read before any request that can grant the
        lock is sent: when it has grown by ``track()``, the answer may have come over an
        earlier connection, and the lease is verified rather than trusted.
        """
        if wakeup.cancelled:
            raise self._cancelled()
        self.check_started()
        session = self._session()
        drops_before = session.drops
        me = ledger.adopt(session.session_id)
        if me is None and ledger.unknown:
            self._find_lost_creates(deadline, ledger)
            # Read again: the listing may have waited for the connection (and a session).
            me = ledger.adopt(session.session_id)
        if me is None:
            me, children = self._create(deadline, ledger)
        else:  # our node from an earlier try: this one sends no write to vouch for its answers
            children = self._synced_children(deadline)
        own_name = me.path.rsplit("/", 1)[1]
        own = parse_node_name(own_name, self.kind.queued_behind)
        behind = None if own is None else later_names_key(own)
        known: dict[str, NodeName | None] = {own_name: own}  # names parsed by earlier listings
        pivot = None if own is None else own.sequence  # surely in the live window
        while True:
            queue = self._queue(children, known, behind, pivot)
            if own is None or own not in queue:  # ``known`` gives the listing our own tuple
                ledger.forget_current()
                raise ConnectionLost(f"contender node {me.path} disappeared; queueing again")
            decision = self.kind.decide(queue, own)
            if decision.holds:
                return self._granted(me, ledger, session), drops_before
            if not blocking or deadline.expired():
                return None
            wakeup.event.clear()
            if wakeup.cancelled:
                raise self._cancelled()
            # Sequence numbers only grow, so no node can join the queue ahead of ours: if the
            # listing minus the watched node says we hold, its deletion alone hands us the lock.
            rest = [node for node in queue if node.name != decision.watch]
            watch = PredecessorWatch(wakeup.event, self.kind.decide(rest, own).holds)
            drops_before = session.drops  # the watch and any listing after it
            answer = self._watch(f"{self.path}/{decision.watch}", watch)
            try:
                self._sleep(answer, wakeup.event, deadline)
            finally:
                watch.ended = True  # whatever comes of the watch from now on is not for us
            if wakeup.cancelled:
                raise self._cancelled()
            prefetched: tuple[Any, float] | None = None
            if watch.deleted:
                if watch.listing is None:
                    return self._granted(me, ledger, session), drops_before  # the hand-off cost no request
                prefetched = watch.listing
                if deadline.expired() and not prefetched[0].ready():
                    return None  # out of time with the answer still on its way
            elif answer.ready() and not answer.successful():
                try:
                    self._wait(answer, deadline)  # raises the translated failure
                except NoNode:
                    # The node ahead was gone before the watch was set. Its reply's callback
                    # (on kazoo's callback thread with the stock handler) has not run yet:
                    # list again ourselves, unless the deadline has passed.
                    if deadline.expired():
                        return None
            elif deadline.expired() and not wakeup.event.is_set():
                return None
            if prefetched is None:  # a listing sent now, maybe over a connection made since
                drops_before = session.drops
            children = self._children(deadline, prefetched)

    def _cancelled(self) -> AcquireCancelled:
        return AcquireCancelled(f"acquire of {self.path!r} was cancelled")

    def _granted(self, me: OwnNode, ledger: CreateLedger, session: SessionWatcher) -> OwnNode:
        """``me``, once its session is still the client's; else queue again (a transient error).

        The session may have expired (and kazoo made a new one) between the answer that
        granted the lock and now: the node is gone with it, and a lease on it would start LOST.
        """
        if session.session_id != me.session_id:
            ledger.forget_current()
            raise SessionExpired(f"{self._context()}: the session ended as the lock was granted")
        return me

    def _sleep(self, answer: Any, event: threading.Event, deadline: Deadline) -> None:
        """Sleep until ``event`` is set or the deadline passes.

        ``answer`` is the reply to the watch request, not waited for: its callbacks set the
        event when it brings news. Until it is in, the sleep is also bounded by the request
        timeout, after which an unanswered request counts as a lost connection.
        """
        bound = Deadline(self.request_timeout())
        while not answer.ready():
            if event.wait(deadline.cap(bound.remaining())) or deadline.expired():
                return
            if bound.expired() and not answer.ready():
                raise ConnectionLost(
                    f"{self._context()}: the watch on the node ahead went unanswered for "
                    f"{bound.timeout:g} s"
                )
        event.wait(deadline.remaining())

    def _create(self, deadline: Deadline, ledger: CreateLedger) -> tuple[OwnNode, list[str]]:
        """Pipelined Create2 + get_children; creates the parent on NoNode and tries again."""
        for _ in range(3):
            attempt_id = self.naming.new_attempt_id()
            prefix = f"{self.path}/{self.naming.prefix(attempt_id, self.kind)}"
            sent_at = time.monotonic()
            created = self.client.create_async(
                prefix, self._data, acl=self._acl(), ephemeral=True, sequence=True, include_data=True
            )
            ledger.sent(attempt_id)
            try:
                listing = self.client.get_children_async(self.path)
                path, stat = self._wait(created, deadline)
            except NoNode:
                ledger.refused(attempt_id)
                self._make_parent(deadline)
                continue
            except NoAuthorization as refused:
                ledger.refused(attempt_id)
                raise NoAuthorization(
                    f"{self.path}: this client may not join the lock's queue: the path's ACL "
                    "grants its credentials no CREATE permission (check auth_data and the ACL)"
                ) from refused.__cause__ or refused  # kazoo's NoAuthError, as errors.md says
            except BaseException:
                # No answer read (a lost connection, the deadline, an interrupt): the create
                # may still run, so its reply must land in the ledger whenever it comes.
                ledger.follow(attempt_id, created, mark=runs_inline)
                raise
            node = OwnNode(path, stat.czxid, stat.ephemeralOwner)
            ledger.found(attempt_id, node)
            ledger.use(node)
            self._session().answered_through_leader(sent_at)  # a write: the leader committed it
            try:
                return node, self._wait(listing, deadline)
            except NoNode:  # our node, then the path, deleted since: as in _children
                return node, []
        raise ConnectionLost(f"parent of {self.path!r} keeps disappearing")

    def _make_parent(self, deadline: Deadline) -> None:
        log.info("%s: creating the lock path", self._context())
        try:
            self._wait(self.client.ensure_path_async(self.path, acl=self._acl()), deadline)
        except NodeExists:
            pass
        except NoAuthorization as refused:
            raise NoAuthorization(
                f"{self.path}: this client may not create the lock path: the ACL of an "
                "existing ancestor grants its credentials no CREATE permission"
            ) from refused.__cause__ or refused  # kazoo's NoAuthError, as errors.md says

    def _acl(self) -> list[ACL] | None:
        return self.acl if self.acl is not None else default_acl(self.client)

    def _send_listing(self) -> tuple[Any, float]:
        """Send a ``get_children`` of the lock path: its async result, and the time before sending.

        The clock is read first: the time noted as the server's last contact must never be
        later than when the server saw the request (a freeze between the send and a later
        reading would make a stale reply look fresh).
        """
        sent_at = time.monotonic()
        return self.client.get_children_async(self.path), sent_at

    def _children(self, deadline: Deadline, sent: tuple[Any, float] | None = None) -> list[str]:
        """List the lock path; ``sent`` is a listing already sent (by :meth:`_send_listing`).

        The answer counts as contact only once a later request answered through the leader
        vouches for it: a follower cut off from the leader still answers a listing.  A lock
        path that is gone lists as empty: it can be deleted only once empty, so every node
        that was in it went first (a waiter's own too: it then queues again, on a new path).
        """
        result, sent_at = sent or self._send_listing()
        try:
            children: list[str] = self._wait(result, deadline)
        except NoNode:
            children = []
        self._session().answered(sent_at)
        return children

    def _synced_children(self, deadline: Deadline) -> list[str]:
        """List the lock path after a ``sync`` (not waited for: the listing is served after it).

        The sync makes the server serving us apply what the leader committed before it (a
        create of ours still on its way through the ensemble), and its answer, which comes
        through the leader, vouches for this session's earlier answers as contact.
        """
        sent_at = time.monotonic()
        synced = self.client.sync_async(self.path)
        children = self._children(deadline)
        self._session().credit_when_answered(synced, sent_at)
        return children

    def _queue(
        self,
        children: list[str],
        known: dict[str, NodeName | None] | None = None,
        behind: str | None = None,
        pivot: int | None = None,
    ) -> list[NodeName]:
        """The contenders among ``children`` in queue order (``pivot``: see ``queue_order``).

        ``known`` carries parsed names from one listing to the next: a waiter woken in a long
        queue lists mostly the same children again, and parses only the new ones.  ``behind``
        is our node's :func:`later_names_key`: nodes surely created after ours are left out
        unparsed, since no kind decides on who queues behind it, and in a long queue most new
        names are those.
        """
        markers = self.kind.queued_behind
        if known is None:
            known = {}
        parsed: list[NodeName] = []
        for child in children:
            if child in known:
                node = known[child]
            elif behind is not None and created_after(child, behind):
                continue  # behind us in the queue
            else:
                node = known[child] = parse_node_name(child, markers)
            if node is not None:
                parsed.append(node)
        return queue_order(parsed, pivot)

    def _watch(self, path: str, watch: PredecessorWatch) -> Any:
        """Send a watch on ``path`` and return its reply without waiting for it.

        A reply of NoNode means the node is already gone, which its callback handles like the
        deletion event (see :class:`PredecessorWatch`); any other failure sets the event, and
        the waiting thread reads it from the returned result.
        """
        @runs_inline  # only sets an event: under LeanHandler it runs on the replying thread
        def listed(_result: Any) -> None:
            if not watch.ended:
                watch.event.set()

        def gone() -> None:
            if watch.ended:
                return
            if not (watch.holds_once_deleted and self._session().contact_is_fresh()):
                # Confirm with a listing sent now, and wake the waiting thread once its
                # answer is in: one wake-up instead of two on the hand-off's path.
                watch.listing = self._send_listing()
                watch.deleted = True
                watch.listing[0].rawlink(listed)
                return
            watch.deleted = True
            watch.event.set()

        @runs_inline  # sends at most one request: under LeanHandler it skips a thread hop
        def woken(watched: Any) -> None:
            if watch.ended:
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s: %s on %s after its wait ended", self._context(),
                              watched.type, watched.path)
                return
            if log.isEnabledFor(logging.DEBUG):  # _context() is not free, and this is hot
                log.debug("%s: woken by %s on %s", self._context(), watched.type, watched.path)
            if watched.type == EventType.DELETED:
                gone()
            else:
                watch.event.set()

        @runs_inline  # the same, for the reply to the watch request
        def answered(result: Any) -> None:
            if result.successful():
                return  # watching: the waiting thread sleeps on until the node changes
            try:
                with translate_kazoo_errors():
                    result.get()
            except NoNode:
                gone()  # no watch was left behind
            except Exception:
                if not watch.ended:
                    watch.event.set()  # the waiting thread raises it

        answer = self.client.get_async(path, watch=woken)
        answer.rawlink(answered)
        return answer

    def _find_lost_creates(self, deadline: Deadline, ledger: CreateLedger) -> None:
        """Look for nodes of creates whose reply was lost; keep only the current session's.

        The create may have reached another server before the connection broke, and still
        be on its way to being committed: a sync first (not waited for: the listing is served
        after it) makes the server now serving us apply it before it lists.
        """
        children = self._synced_children(deadline)  # none without a lock path: those failed
        for name in children:
            for attempt_id in list(ledger.unknown):
                if attempt_id in name:
                    path = f"{self.path}/{name}"
                    try:
                        _data, stat = self._wait(self.client.get_async(path), deadline)
                    except NoNode:
                        ledger.refused(attempt_id)
                        continue
                    ledger.found(attempt_id, OwnNode(path, stat.czxid, stat.ephemeralOwner))
        # Ids still unknown after a listing sent after their create: that create never ran.
        for attempt_id in list(ledger.unknown):
            ledger.refused(attempt_id)

    def _abandon(self, ledger: CreateLedger, kept: OwnNode | None) -> None:
        """Delete every node this acquire made but does not keep (kazoo issue #732)."""
        extra, unknown = ledger.close(kept)
        if not extra and not unknown:
            return
        session = self._session()
        for node in extra:
            self._discard(node)
        session_id = session.session_id  # read once: a LOST or a new session may land between
        if unknown and session_id is not None:
            session.find_and_delete_later(self.path, unknown, session_id)

    def _discard(self, node: OwnNode) -> None:
        log.info("%s: deleting contender node %s", self._context(), node.path)
        self._session().delete_later(node.path, node.session_id)

    # ------------------------------------------------------------------ release
    def release(self, lease: Lease, wakeup: Wakeup) -> ReleaseOutcome:
        """Delete the lease's node; retried while the session may live.

        Returns ALREADY_LOST when the lease was lost before the node could be deleted (the
        node went with its session, or is queued for deletion on reconnect).
        """
        session = self._session()
        on_connection_thread = session.on_kazoo_thread()
        try:
            if lease.state is LeaseState.LOST:
                return ReleaseOutcome.ALREADY_LOST
            if on_connection_thread:
                # A listener letting go (on SUSPENDED, say): waiting for the delete's answer
                # would block the thread that reads it, and that must reconnect.  The holder
                # has let go at once; its node is deleted in the background (finally, below),
                # so a loss found then (the node gone already) cannot be reported.
                return ReleaseOutcome.RELEASED
            if wakeup.event.is_set():  # the caller may reuse one wakeup for its releases
                wakeup.event.clear()
            session.subscribe(wakeup.event)
            until_lost = Deadline(max(0.0, session.contact_deadline() - time.monotonic()))
            sent: list[Any] = []  # deletes whose reply was lost may still have run

            def delete_once() -> ReleaseOutcome | None:
                if sent:  # a retry: an earlier delete may have run, or the session gone since
                    if any(result.successful() for result in sent):
                        return None
                    if _is_lost(lease):
                        return ReleaseOutcome.ALREADY_LOST
                session.releasing(lease)
                sent_at = time.monotonic()
                sent.append(self.client.delete_async(lease.node))
                self._wait(sent[-1], until_lost)
                session.answered_through_leader(sent_at)  # a write: the leader committed it
                return None

            try:
                if self.retry.run(delete_once, until_lost, wakeup.sleep, self._context):
                    return ReleaseOutcome.ALREADY_LOST
            except NoNode:
                same_session = session.session_id == lease.session_id
                if len(sent) > 1 and same_session:  # an earlier delete, answered late, did it
                    lease._transition(LeaseState.RELEASED, RELEASED_BY_HOLDER)
                    return ReleaseOutcome.RELEASED
                lease._transition(LeaseState.LOST, "lock node was already gone at release")
                return ReleaseOutcome.ALREADY_LOST
            except ZkLockError as error:
                if _is_lost(lease) or until_lost.expired():
                    lease._transition(LeaseState.LOST, "no answer to the release within the bound")
                    return ReleaseOutcome.ALREADY_LOST
                lease._transition(LeaseState.LOST, f"release failed: {error}")
                raise
            finally:
                session.unsubscribe(wakeup.event)
            lease._transition(LeaseState.RELEASED, RELEASED_BY_HOLDER)
            if log.isEnabledFor(logging.INFO):
                log.info("%s: released %s", self._context(), lease.node)
            return ReleaseOutcome.RELEASED
        finally:
            if lease.state is not LeaseState.RELEASED:
                if not _is_lost(lease):
                    # Interrupted (KeyboardInterrupt, say) before the delete was answered: the
                    # holder meant to let go, and its node must not block the queue until the
                    # session ends.
                    lease._transition(
                        LeaseState.RELEASED,
                        "released on kazoo's connection thread; the node is deleted in the background"
                        if on_connection_thread
                        else "release interrupted; the node is deleted in the background",
                    )
                session.delete_later(lease.node, lease.session_id)
            session.untrack(lease)

    # ------------------------------------------------------------------ inspection
    def contenders(self, deadline: Deadline) -> list[Contender]:
        """The queue in order: holders first, with identifiers, tokens and sessions."""
        self.check_started()
        self.check_may_wait("contenders()")
        try:
            return self._contenders(deadline)
        except _NoAnswerByDeadline as cut:  # the caller's bound, not a slow lock: a plain loss
            raise ConnectionLost(f"{self._context()}: no answer from ZooKeeper in time") from cut.__cause__

    def _contenders(self, deadline: Deadline) -> list[Contender]:
        children = self._children(deadline)
        if not children:
            return []
        queue = self._queue(children)
        pending = [(node, self.client.get_async(f"{self.path}/{node.name}")) for node in queue]
        found: list[Contender] = []
        for node, result in pending:
            try:
                data, stat = self._wait(result, deadline)
            except NoNode:
                continue  # left the queue while we looked
            found.append(
                Contender(
                    node=f"{self.path}/{node.name}",
                    # A node made by another client may carry no data at all (None).
                    identifier=(data or b"").decode("utf-8", "replace"),
                    token=stat.czxid,
                    session_id=stat.ephemeralOwner,
                    created_at=stat.ctime / 1000.0,
                )
            )
        return found
