"""zklock._session.SessionWatcher against a stand-in for kazoo's client state (no server).

Only the order of registering and reading is checked here; everything that locks is tested
against a real ZooKeeper in tests/integration.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from kazoo.protocol.states import KazooState

from zklock._session import SessionWatcher
from zklock.lease import Lease, LeaseState
from zklock.testing import wait_until


class ConnectingClient:
    """A client whose CONNECTED lands right after its state is first read, as kazoo's would:
    state set first, then the registered listeners told, on kazoo's own thread."""

    _session_timeout = 10_000

    def __init__(self) -> None:
        self._state = KazooState.SUSPENDED  # kazoo's word while it is still connecting
        self.client_id: tuple[int, bytes] | None = None
        self.listeners: list = []
        self.told: threading.Thread | None = None

    @property
    def state(self) -> str:
        seen = self._state
        if self.told is None:  # the connection completes just after this read
            self._state, self.client_id = KazooState.CONNECTED, (0x5, b"pw")
            listeners = list(self.listeners)
            self.told = threading.Thread(target=lambda: [fn(KazooState.CONNECTED) for fn in listeners])
            self.told.start()
        return seen

    def add_listener(self, listener) -> None:
        self.listeners.append(listener)


def test_a_connection_completed_while_the_watcher_starts_is_not_missed():
    client = ConnectingClient()
    watcher = SessionWatcher(client)  # type: ignore[arg-type]
    assert client.told is not None
    client.told.join(5)
    assert watcher._connected and watcher.session_id == 0x5


class ConnectedClient:
    """A connected client's state and the requests sent through it (none answered)."""

    _session_timeout = 10_000

    def __init__(self) -> None:
        self.state = KazooState.CONNECTED
        self.client_id: tuple[int, bytes] | None = (0x5, b"pw")
        self.listeners: list = []
        self.sent: list[tuple[str, str]] = []

    def add_listener(self, listener) -> None:
        self.listeners.append(listener)

    def tell(self, state: str, session_id: int | None = None) -> None:
        if session_id is not None:
            self.client_id = (session_id, b"pw")
        self.state = state
        for listener in list(self.listeners):
            listener(state)

    def exists_async(self, path: str) -> Unanswered:
        self.sent.append(("exists", path))
        return Unanswered()

    def sync_async(self, path: str) -> Unanswered:
        self.sent.append(("sync", path))
        return Unanswered()


class Unanswered:
    def ready(self) -> bool:
        return False

    def rawlink(self, callback) -> None:
        pass


def lease_of(watcher: SessionWatcher, session_id: int = 0x5) -> Lease:
    return Lease(
        path="/l", node="/l/__lock__0000000001", token=1, session_id=session_id,
        identifier="me", liveness=watcher,
    )


def test_a_lost_session_is_forgotten_until_the_next_one():
    client = ConnectedClient()
    watcher = SessionWatcher(client)  # type: ignore[arg-type]
    assert watcher.session_id == 0x5
    client.tell(KazooState.LOST)
    assert watcher.session_id is None  # a grant, a found node or a delete of 0x5 is judged stale
    client.tell(KazooState.CONNECTED, session_id=0x6)
    assert watcher.session_id == 0x6


@contextlib.contextmanager
def acquiring(watcher: SessionWatcher) -> Iterator[None]:
    """As the recipe's acquire does around its grant: the watcher knows an acquire began (its
    create went through the leader), so no heartbeat is due while the test looks at what
    was sent.  (Without it, the watchdog that track() starts may send one at once.)"""
    woken = threading.Event()
    watcher.waiting(woken)
    try:
        yield
    finally:
        watcher.done_waiting(woken)


def test_a_grant_asked_before_a_drop_is_verified_not_trusted():
    client = ConnectedClient()
    watcher = SessionWatcher(client)  # type: ignore[arg-type]
    with acquiring(watcher):
        drops_before = watcher.drops
        client.tell(KazooState.SUSPENDED)  # the answer granting the lease came before this...
        client.tell(KazooState.CONNECTED)  # ... and the same session is back before track()
        lease = lease_of(watcher)
        watcher.track(lease, drops_before)
    assert lease._state is LeaseState.SUSPENDED  # until the node is seen again
    assert client.sent == [("exists", lease.node)]
    watcher.untrack(lease)


def test_a_grant_asked_on_the_current_connection_is_held_at_once():
    client = ConnectedClient()
    watcher = SessionWatcher(client)  # type: ignore[arg-type]
    with acquiring(watcher):
        client.tell(KazooState.SUSPENDED)
        client.tell(KazooState.CONNECTED)
        lease = lease_of(watcher)
        watcher.track(lease, watcher.drops)
    assert lease._state is LeaseState.HELD and client.sent == []
    watcher.untrack(lease)


def test_a_lease_of_a_session_that_ended_before_track_is_lost_at_once():
    client = ConnectedClient()
    watcher = SessionWatcher(client)  # type: ignore[arg-type]
    lease = lease_of(watcher)  # granted on session 0x5...
    client.tell(KazooState.LOST)  # ... which ended before the lease was handed over
    watcher.track(lease, watcher.drops)
    assert lease._state is LeaseState.LOST and lease.reason == "session expired during acquire"
    assert lease not in watcher._leases and client.sent == []


def test_only_a_session_heard_from_within_the_first_part_of_its_timeout_is_fresh():
    # A hand-off on a watch event alone is taken only while contact is fresh: more than a
    # quarter of the timeout (10 s here) left before the loss bound, which keeps back 10 %.
    now = [100.0]
    client = ConnectedClient()  # held: the watcher keeps only a weak reference
    watcher = SessionWatcher(client, clock=lambda: now[0])  # type: ignore[arg-type]
    assert not watcher.contact_is_fresh()  # nothing known of a client first seen
    client.tell(KazooState.SUSPENDED)  # heard at 100.0, before kazoo tries to connect again
    now[0] = 100.5
    client.tell(KazooState.CONNECTED)  # the leader validated the session after 100.0
    now[0] = 106.4
    assert watcher.contact_is_fresh()  # 100.0 + 9.0 - 106.4 = 2.6 s left
    now[0] = 106.6
    assert not watcher.contact_is_fresh()  # 2.4 s left
    watcher.answered(106.0)  # a read sent at 106.0, answered at 106.6: no news of the leader
    assert not watcher.contact_is_fresh()
    now[0] = 107.9
    watcher.answered_through_leader(107.9)  # a sync sent 1.3 s (more than T / 8) after it
    assert watcher.contact_is_fresh()  # the read is credited: 115.0 - 107.9 s left
    assert watcher.contact_deadline() == 106.0 + 9.0


def test_a_reconnect_is_credited_from_when_the_drop_was_heard_not_when_it_succeeded():
    # The leader touches the session when it validates the reconnect, maybe seconds before
    # the client hears CONNECTED (a reply held up on the way): only the time the drop was
    # heard, before kazoo sent its connect request, is sure to come before that touch.
    now = [100.0]
    client = ConnectedClient()
    watcher = SessionWatcher(client, clock=lambda: now[0])  # type: ignore[arg-type]
    client.tell(KazooState.CONNECTED)  # a client first seen connected: no drop heard yet
    assert watcher.contact_deadline() < now[0]  # nothing credited
    now[0] = 102.0
    client.tell(KazooState.SUSPENDED)
    now[0] = 105.0
    client.tell(KazooState.CONNECTED)
    assert watcher.contact_deadline() == 102.0 + 9.0


def test_a_waiting_acquire_gets_heartbeats_and_an_idle_client_none():
    # A waiter's lease will be bounded by the contact record: while it waits, the watchdog
    # sends a sync (through the leader) every T / 5, with no exists (no node is held).
    client = ConnectedClient()
    client._session_timeout = 500  # heartbeats every 0.1 s
    watcher = SessionWatcher(client)  # type: ignore[arg-type]
    woken = threading.Event()
    watcher.waiting(woken)
    try:
        assert wait_until(lambda: client.sent.count(("sync", "/")) >= 2, 10)
        assert all(kind == "sync" for kind, _ in client.sent)
    finally:
        watcher.done_waiting(woken)
    assert wait_until(lambda: watcher._watchdog is None, 10)  # gone once nobody waits
    sent = len(client.sent)
    time.sleep(0.3)
    assert len(client.sent) == sent
