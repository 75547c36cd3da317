"""Connection state: one kazoo listener per client drives every lease on that client.

:class:`SessionWatcher` is the only zklock code that listens to kazoo's connection states.  It
moves leases between HELD, SUSPENDED and LOST, knows when the server was last heard from,
wakes waiting acquires on any state change, and deletes nodes that a failed acquire could not
delete itself (retried on every reconnect while their session lives).

The local LOST bound.  The server expires a session once it has heard nothing from the client
for the session timeout ``T``; through a follower, once the *leader* has heard nothing of it.
:class:`~zklock._contact.ContactRecord` keeps the latest time the leader is known to have heard
from the session: answers are credited with their send time only once a later request,
answered through the leader, proves the server's report of them went through (see there).  At
``last + T`` the leader cannot yet have expired the session.  Once that bound is near and
nothing newer was credited, every lease on the client is declared LOST (Curator's "simulated
LOST"), before any other client can be granted the lock.  The watcher acts at
``last + 0.9 T``: the last tenth absorbs a watchdog woken late.

While leases are held or acquires wait, a watchdog thread keeps ``last`` fresh: it sends a
``sync`` (answered only through the leader) whenever no request answered through the leader
was sent for ``T / 5``, with an ``exists`` on a held lock node behind it; and it sends the pair
when a lease has gone ``T / 5`` without such a check (so a node deleted behind its holder's
back is noticed even on a client kept busy by other requests, whose answers say nothing about
this node).  It is also the thread that declares the local LOST.  It exits shortly after the
last lease is released and the last acquire returns.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any, Callable

from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState

from ._contact import ContactRecord
from ._fork import ForkGuard
from .errors import NoNode, translate_kazoo_errors
from .lease import Lease, LeaseState

__all__ = ["SessionWatcher"]

log = logging.getLogger("zklock.session")

_HEARTBEATS_PER_TIMEOUT = 5
_SAFETY_SHARE = 0.1  # of the session timeout, kept back from the local LOST bound
_IDLE_LINGER = 0.2  # seconds the watchdog thread outlives the last lease
_MAX_NAP = 1.0  # so an idle watchdog notices within about a second that it can exit


class SessionWatcher:
    """The state listener, liveness record and cleanup queue of one ``KazooClient``."""

    _registry: weakref.WeakKeyDictionary[KazooClient, SessionWatcher] = (
        weakref.WeakKeyDictionary()
    )
    _registry_lock = threading.Lock()

    @classmethod
    def of(cls, client: KazooClient) -> SessionWatcher:
        """The watcher of ``client``, created (and its listener added) on first use.

        Raises :class:`~zklock.errors.UsedAfterFork` in a child forked after zklock first used
        ``client``: the child would share the parent's session.
        """
        with cls._registry_lock:
            watcher = cls._registry.get(client)
            if watcher is None:
                watcher = cls._registry[client] = cls(client)
        watcher.fork_guard.check("this KazooClient")
        return watcher

    @classmethod
    def _after_fork_in_child(cls) -> None:
        # A parent's thread may have held the registry lock at the fork: the child's copy
        # would then stay locked forever.
        cls._registry_lock = threading.Lock()

    def __init__(self, client: KazooClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._client_ref = weakref.ref(client)
        self.fork_guard = ForkGuard()
        self._clock = clock
        self._mutex = threading.Lock()
        # Each lease tracked, with when its node was last checked (tracked, or a heartbeat's
        # exists): the heartbeat checks the one checked longest ago.
        self._leases: dict[Lease, float] = {}
        self._releasing: set[Lease] = set()
        self._wakeups: set[threading.Event] = set()
        self._waiting = 0  # acquires under way: the watchdog keeps their contact fresh too
        self._orphans: dict[str, int] = {}  # node path -> owning session id
        self._orphan_attempts: dict[tuple[str, str], int] = {}  # (parent, attempt id) -> session
        self._connected = False  # read below, once the listener is in place
        self._session_id: int | None = None
        # kazoo sets it once, from KazooClient(timeout=...), and never changes it.
        self._session_timeout = float(client._session_timeout) / 1000.0
        self._contact = ContactRecord(self._session_timeout, clock)
        # When the watchdog last sent a heartbeat, or an acquire began (it sends a create, a
        # write, at once): no heartbeat is due for a period after either.
        self._leader_request_sent = float("-inf")
        # When this listener heard the connection drop (SUSPENDED or LOST), on kazoo's
        # connection thread, before kazoo sent any request to connect again; None while no
        # drop was heard (a client first seen connecting: its attempt may be older).
        self._dropped_at: float | None = None
        self._generation = 0  # connection state changes seen
        self._drops = 0  # of which losses of the connection
        self._uses = 0  # leases tracked and acquires begun: tells the watchdog the client is busy
        self._watchdog: threading.Thread | None = None
        self._watchdog_wake = threading.Event()
        # The generation of a reconnect with the same session whose requests (read-backs,
        # queued deletes) the watchdog is to send; None when there is nothing to send.
        self._reconnect_due: int | None = None
        # The listener first, then the state: a change after this read reaches the listener,
        # one before it shows in the read (kazoo sets its state before telling listeners).
        client.add_listener(self._on_state)
        with self._mutex:
            self._connected = client.state == KazooState.CONNECTED
            self._session_id = self._current_session_id(client)

    def on_kazoo_thread(self, callback_threads_too: bool = False) -> bool:
        """Whether the caller runs on kazoo's connection thread (or its callback threads too).

        The callback threads are its handler's workers, asked of with ``callback_threads_too``.

        On the connection thread (state listeners, inline callbacks) a call must not wait for
        a reply: the thread it blocks is the one that would read it, and that reconnects.  On
        a callback thread an acquire must not wait either: under kazoo's own handler a
        create's answer reaches its caller through a completion queued for that very thread.
        kazoo keeps the connection thread as its connection's ``_connection_routine`` (what
        its handler's ``spawn`` returned), and the callback threads as its handler's
        ``_workers``.
        """
        client = self._client_ref()
        me = threading.current_thread()
        if getattr(getattr(client, "_connection", None), "_connection_routine", None) is me:
            return True
        return callback_threads_too and me in getattr(getattr(client, "handler", None), "_workers", ())

    def on_watchdog_thread(self) -> bool:
        """Whether the caller is this session's watchdog (lease listeners told of LOST, say).

        A wait there stalls every other lease's loss bound, heartbeat and read-back.
        """
        return threading.current_thread() is self._watchdog

    # ------------------------------------------------------------------ liveness
    @property
    def session_timeout(self) -> float:
        """The session timeout in seconds, as requested by the client.

        kazoo does not keep the negotiated value; servers clamp it to
        ``[minSessionTimeout, maxSessionTimeout]``, so the server's maximum must not be lower.
        """
        return self._session_timeout

    def contact_deadline(self) -> float:
        """Monotonic time after which the server may soon expire the session.

        A safety share of the timeout is kept back, so that a watchdog woken a little late
        by the scheduler still declares the loss before the server can act on it.
        """
        return self._contact.last + self._session_timeout * (1.0 - _SAFETY_SHARE)

    def contact_is_fresh(self) -> bool:
        """True while more than a quarter of the session timeout is left before the bound.

        A watch event does not say when the server last heard from us: only a session heard
        from this recently may take a lock on an event alone, without a request.  While an
        acquire waits, the watchdog's heartbeats keep about ``T / 2`` left (a sync every
        ``T / 5`` credits the one before it).
        """
        return self.contact_deadline() - self._clock() > self._session_timeout / 4

    def answered(self, sent_at: float) -> None:
        """A request sent at ``sent_at`` was answered (by any server: see ``ContactRecord``)."""
        self._contact.answered(sent_at)

    def answered_through_leader(self, sent_at: float) -> None:
        """A request sent at ``sent_at`` was answered through the leader (a sync or a write)."""
        self._contact.answered_through_leader(sent_at)

    def credit_when_answered(self, synced: Any, sent_at: float) -> None:
        """Call :meth:`answered_through_leader` once the sync ``synced`` is answered.

        At once if its answer is handed over already, else from its callback: never waiting
        for kazoo's callback thread (which hands answers over, and a user's callback may hold
        up).
        """
        if synced.ready():
            if synced.successful():
                self.answered_through_leader(sent_at)
            return

        def reached_the_leader(result: Any) -> None:
            if result.successful():
                self.answered_through_leader(sent_at)

        synced.rawlink(reached_the_leader)

    @property
    def connected(self) -> bool:
        """True while kazoo reports the connection up (as of its last state change)."""
        return self._connected

    @property
    def drops(self) -> int:
        """How many times the connection was lost so far (SUSPENDED or LOST; see :meth:`track`)."""
        return self._drops

    @property
    def session_id(self) -> int | None:
        """The id of the client's current session, or None before the first connect."""
        return self._session_id

    # ------------------------------------------------------------------ leases and waiters
    def track(self, lease: Lease, drops_before: int | None = None) -> None:
        """Drive ``lease`` from now on; start the watchdog if it is not running.

        ``drops_before`` is :attr:`drops` read before the request that granted the lease was
        sent.  If the connection was lost since, the grant may have come over the earlier
        connection, and the reconnect's check of every held node missed this one: the lease
        starts SUSPENDED and is verified with a request, as those were.  If the session
        itself ended since, the lease is LOST at once and not tracked.
        """
        # No wake-up here or in untrack: a lingering watchdog naps at most _MAX_NAP, and the
        # contact of a new lease is fresh.  Two thread wake-ups per lock cycle were measurable.
        with self._mutex:
            ended = lease.session_id != self._session_id
            if not ended:
                self._track(lease)
            connected, generation = self._connected, self._generation
            dropped = drops_before is not None and drops_before != self._drops
        if ended:  # between the answer that granted it and now
            lease._transition(LeaseState.LOST, "session expired during acquire")
            return
        if not connected or dropped:  # the connection dropped after the request that granted it
            lease._transition(LeaseState.SUSPENDED, "connection to ZooKeeper lost")
            with self._mutex:
                reconnected = self._connected and (dropped or self._generation != generation)
                generation = self._generation
            client = self._client_ref()
            if reconnected and client is not None:  # the reconnect's verify may have missed it
                self._verify(client, lease, generation)

    def _track(self, lease: Lease) -> None:
        """Add ``lease`` and start the watchdog if needed (called holding ``_mutex``)."""
        self._leases[lease] = self._clock()
        self._uses += 1
        self._start_watchdog()

    def _start_watchdog(self) -> None:
        """Start the watchdog thread if it is not running (called holding ``_mutex``)."""
        if self._watchdog is None:
            self._watchdog_wake.clear()
            self._watchdog = threading.Thread(
                target=self._watchdog_loop,
                name=f"zklock-watchdog-0x{self._session_id or 0:x}",
                daemon=True,
            )
            self._watchdog.start()

    def untrack(self, lease: Lease) -> None:
        """Stop driving ``lease`` (released or lost)."""
        with self._mutex:
            self._leases.pop(lease, None)
            self._releasing.discard(lease)

    def releasing(self, lease: Lease) -> None:
        """``lease``'s node is being deleted by its holder: its absence is no longer news."""
        with self._mutex:
            self._releasing.add(lease)

    def subscribe(self, event: threading.Event) -> None:
        """Set ``event`` on every connection state change (wakes a waiting acquire)."""
        with self._mutex:
            self._wakeups.add(event)

    def waiting(self, event: threading.Event) -> None:
        """An acquire starts: :meth:`subscribe` ``event``, and keep contact fresh meanwhile.

        A waiter's lease is bounded by the same contact record as any other: without the
        watchdog's heartbeats, one that waited longer than ``T`` would be granted a lease
        already past its bound.
        """
        now = self._clock()
        with self._mutex:
            self._wakeups.add(event)
            self._waiting += 1
            self._uses += 1
            if now > self._leader_request_sent:
                self._leader_request_sent = now
            self._start_watchdog()

    def done_waiting(self, event: threading.Event) -> None:
        """Undo :meth:`waiting`."""
        with self._mutex:
            self._wakeups.discard(event)
            self._waiting -= 1

    def unsubscribe(self, event: threading.Event) -> None:
        """Undo :meth:`subscribe`."""
        with self._mutex:
            self._wakeups.discard(event)

    # ------------------------------------------------------------------ cleanup queue
    def delete_later(self, node: str, session_id: int) -> None:
        """Delete ``node`` (owned by ``session_id``) now if possible, else after reconnecting.

        Given up only when that session is gone, since its ephemeral nodes go with it.
        """
        with self._mutex:
            if session_id != self._session_id:
                return
            self._orphans[node] = session_id
            connected = self._connected
        if connected:
            self._send_delete(node, session_id)

    def find_and_delete_later(self, parent: str, attempt_ids: set[str], session_id: int) -> None:
        """Delete the nodes of create attempts whose outcome is unknown, once they can be listed.

        A listing sent after the create (kazoo sends one session's requests in order) shows
        the node if the create ran; then the matching nodes are deleted with :meth:`delete_later`.
        """
        with self._mutex:
            if session_id != self._session_id or not attempt_ids:
                return
            for attempt_id in attempt_ids:
                self._orphan_attempts[(parent, attempt_id)] = session_id
            connected = self._connected
        if connected:
            self._search_abandoned_creates(parent, set(attempt_ids), session_id)

    def _search_abandoned_creates(self, parent: str, attempt_ids: set[str], session_id: int) -> None:
        client = self._client_ref()
        if client is None:
            return

        def listed(result: Any) -> None:
            try:
                with translate_kazoo_errors():
                    children = result.get()
            except NoNode:
                children = []
            except Exception as error:  # stays queued until the next reconnect
                log.warning("listing %s for abandoned creates failed: %r", parent, error)
                return
            with self._mutex:
                for attempt_id in attempt_ids:
                    self._orphan_attempts.pop((parent, attempt_id), None)
            for name in children:
                if any(attempt_id in name for attempt_id in attempt_ids):
                    self.delete_later(f"{parent}/{name}", session_id)

        try:
            # A create whose reply was lost may still be on its way through the ensemble to
            # the server now serving us: sync first (its answer is not needed: the listing
            # is served after it), so that the listing shows whatever the create did.
            client.sync_async(parent)
            client.get_children_async(parent).rawlink(listed)
        except Exception as error:
            log.warning("could not list %s: %r", parent, error)

    def _send_delete(self, node: str, session_id: int) -> None:
        client = self._client_ref()
        if client is None:
            return

        def done(result: Any) -> None:
            try:
                with translate_kazoo_errors():
                    result.get()
            except NoNode:
                pass
            except Exception as error:  # stays queued until the next reconnect
                log.warning("delete of %s (session 0x%x) failed: %r; retry on reconnect",
                            node, session_id, error)
                return
            with self._mutex:
                self._orphans.pop(node, None)
            log.info("deleted abandoned node %s (session 0x%x)", node, session_id)

        try:
            client.delete_async(node).rawlink(done)
        except Exception as error:
            log.warning("could not send delete of %s: %r", node, error)

    def pending_deletes(self) -> list[str]:
        """Nodes still waiting to be deleted (for tests and diagnostics)."""
        with self._mutex:
            return sorted(self._orphans) + sorted(
                f"{parent}/*{attempt}*" for parent, attempt in self._orphan_attempts
            )

    # ------------------------------------------------------------------ kazoo's listener
    @staticmethod
    def _current_session_id(client: KazooClient) -> int | None:
        client_id = client.client_id
        return int(client_id[0]) if client_id else None

    def _on_state(self, state: str) -> None:
        # Runs in kazoo's connection thread: never block here, nor send a request (below).
        heard_at = self._clock()
        client = self._client_ref()
        if client is None:
            return
        with self._mutex:
            self._generation += 1
            generation = self._generation
            leases = list(self._leases)
            wakeups = list(self._wakeups)
            old_session = self._session_id
            if state == KazooState.CONNECTED:
                self._connected = True
                self._session_id = self._current_session_id(client)
                if self._dropped_at is not None:
                    self._contact.reconnected(self._dropped_at)
            else:
                self._connected = False
                self._drops += 1
                self._dropped_at = heard_at
                if state == KazooState.LOST:
                    # The session is over: nothing may be judged as still its own (a grant,
                    # a found node, a delete) until kazoo reports the next one.
                    self._session_id = None
            new_session = self._session_id != old_session
            if state == KazooState.LOST or new_session:
                self._orphans.clear()  # their session, and so the nodes, are gone
                self._orphan_attempts.clear()
                self._leases.clear()
            # Not sent from here: this is kazoo's connection thread, and on kazoo's own
            # handler every request rings a socket pair that only this thread reads.  A few
            # hundred requests (one per held lease) would fill it, and the send would block
            # this thread for good.  The watchdog's thread sends them.
            to_send = self._leases or self._orphans or self._orphan_attempts
            reconnected = state == KazooState.CONNECTED and not new_session and bool(to_send)
            self._reconnect_due = generation if reconnected else None
            if reconnected:
                self._start_watchdog()
        session = f"0x{old_session:x}" if old_session else "none"
        log.info("client state %s (session %s, %d leases)", state, session, len(leases))

        if state == KazooState.SUSPENDED:
            for lease in leases:
                lease._transition(LeaseState.SUSPENDED, "connection to ZooKeeper lost")
        elif state == KazooState.LOST:
            for lease in leases:
                lease._transition(LeaseState.LOST, "session expired or client closed")
        elif new_session:
            for lease in leases:
                lease._transition(LeaseState.LOST, "reconnected with a new session")
        self._watchdog_wake.set()
        for event in wakeups:
            event.set()

    def _after_reconnect(self, generation: int) -> None:
        """Read back every held node and send the queued deletes and searches (same session).

        Runs on the watchdog's thread (see :meth:`_on_state`), unless a later change of the
        connection has made this reconnect's work moot.
        """
        client = self._client_ref()
        if client is None:
            return
        with self._mutex:
            session_id = self._session_id
            if generation != self._generation or session_id is None:
                return
            leases = list(self._leases)
            orphans = dict(self._orphans)
            orphan_attempts: dict[str, set[str]] = {}
            for (parent, attempt_id), _owner in self._orphan_attempts.items():
                orphan_attempts.setdefault(parent, set()).add(attempt_id)
        try:
            for lease in leases:
                self._verify(client, lease, generation)
            for node, owner in orphans.items():
                self._send_delete(node, owner)
            for parent, attempt_ids in orphan_attempts.items():
                self._search_abandoned_creates(parent, attempt_ids, session_id)
        except Exception as error:  # the watchdog must live on; the next reconnect retries
            log.warning("requests after reconnecting not sent: %r", error)

    def _verify(self, client: KazooClient, lease: Lease, generation: int) -> None:
        """After a reconnect with the same session: HELD again only if the node is still ours.

        Asked with ``exists``, which ZooKeeper answers without an ACL check: a ``get`` needs
        READ on the node, and a holder refused it would stay SUSPENDED while connected.
        """
        sent_at = self._clock()

        def verified(result: Any) -> None:
            with self._mutex:
                if lease in self._releasing:  # its holder is deleting the node right now
                    return
            try:
                with translate_kazoo_errors():
                    stat = result.get()
            except Exception as error:  # connection lost again: the next reconnect retries
                log.info("could not verify %s after reconnect: %r", lease.node, error)
                return
            if stat is None:
                lease._transition(LeaseState.LOST, "lock node was deleted")
                self.untrack(lease)
                return
            if stat.ephemeralOwner != lease.session_id:
                lease._transition(LeaseState.LOST, "lock node belongs to another session")
                self.untrack(lease)
                return
            self.answered(sent_at)

            def still_connected() -> bool:
                # Asked under the lease's lock, without ours (plain reads): _on_state changes
                # these before it moves any lease, so a drop that lands after this test moves
                # the lease back to SUSPENDED after the HELD below, never before it.
                return generation == self._generation and self._connected

            lease._transition(LeaseState.HELD, None, only_if=still_connected)

        client.exists_async(lease.node).rawlink(verified)

    # ------------------------------------------------------------------ watchdog thread
    def _watchdog_loop(self) -> None:
        idle_since: float | None = None
        uses = self._uses
        while True:
            # Cleared before the state is read, not after the wait: a wake-up set between
            # the wait's end and a clear would be lost, and its work left for a whole nap.
            self._watchdog_wake.clear()
            now = self._clock()
            with self._mutex:
                reconnect, self._reconnect_due = self._reconnect_due, None
                if not self._leases and not self._waiting and reconnect is None:
                    # Linger a moment: a lock taken again right away reuses this thread.  A
                    # lease tracked or an acquire begun since the last look means the client
                    # is not idle, though nothing is under way at either look.
                    if idle_since is None or uses != self._uses:
                        idle_since, uses = now, self._uses
                    elif now - idle_since >= _IDLE_LINGER:
                        self._watchdog = None
                        return
                else:
                    idle_since = None
                connected = self._connected
                leases = list(self._leases)
                # The lease whose node has gone unchecked longest, and since when.
                stalest = min(self._leases.items(), key=lambda item: item[1], default=None)
            if reconnect is not None:
                self._after_reconnect(reconnect)
            deadline = self.contact_deadline()
            period = max(0.01, self.session_timeout / _HEARTBEATS_PER_TIMEOUT)
            if leases and now >= deadline:
                for lease in leases:
                    lease._transition(
                        LeaseState.LOST, "no reply from ZooKeeper within the session timeout"
                    )
                    self.untrack(lease)
                continue
            # Contact is fresh only while requests reach the leader: a sync when none was
            # sent for a period.  And only an exists on a lease's own node tells that it is
            # still there: a client busy with other locks still checks each held node in
            # turn.  A lease held less than a period on a busy client gets nothing more, so
            # back-to-back cycles send nothing more.
            due = period  # until the next heartbeat, if none is sent now
            if idle_since is None and connected:
                leader_due = max(self._contact.last_through_leader, self._leader_request_sent) + period
                lease_due = stalest[1] + period if stalest is not None else float("inf")
                if now >= min(leader_due, lease_due):
                    self._heartbeat(stalest[0] if stalest is not None else None)
                else:
                    due = max(0.01, min(leader_due, lease_due) - now)
            # Wake at the deadline even while kazoo still believes it is connected: a silent
            # partition is only noticed by kazoo after two thirds of the timeout.
            if idle_since is not None:
                wait = _IDLE_LINGER
            elif leases:
                wait = min(due, deadline - now, _MAX_NAP)
            else:
                wait = min(due, _MAX_NAP)
            self._watchdog_wake.wait(wait)

    def _heartbeat(self, lease: Lease | None) -> None:
        """Send a ``sync``, and an ``exists`` on ``lease``'s node (the one checked longest ago).

        The sync's answer comes through the leader and refreshes the contact record; the
        exists tells a lease whose node was deleted behind its back (by an operator, say)
        that it is LOST.  With no lease held (acquires waiting), the sync alone.
        """
        client = self._client_ref()
        if client is None:
            return
        sent_at = self._clock()
        self._leader_request_sent = sent_at
        try:
            # A sync: only the leader expires sessions, and a follower cut off from it goes
            # on answering reads (an exists, kazoo's pings) until it gives up, after
            # syncLimit x tickTime, maybe long after the leader expired the session and
            # granted the lock to someone else.  A sync is answered only through the leader.
            synced = client.sync_async(lease.node if lease is not None else "/")
            checked = client.exists_async(lease.node) if lease is not None else None
        except Exception as error:
            log.debug("heartbeat not sent: %r", error)
            return

        self.credit_when_answered(synced, sent_at)
        if lease is None or checked is None:
            return
        with self._mutex:
            if lease in self._leases:
                self._leases[lease] = sent_at

        def answered(result: Any) -> None:
            # No need to wait for the sync here: a server behind the leader can only still
            # show a node the leader deleted, never miss one it has.
            if not result.successful():
                return
            stat = result.get()
            with self._mutex:
                watched = lease in self._leases and lease not in self._releasing
            if watched and (stat is None or stat.ephemeralOwner != lease.session_id):
                lease._transition(LeaseState.LOST, "lock node was deleted")
                self.untrack(lease)

        checked.rawlink(answered)

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=SessionWatcher._after_fork_in_child)
