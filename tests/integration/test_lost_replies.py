"""A create that ran on the server but whose reply was lost (kazoo issue #732), on a real ZooKeeper.

``TcpProxy.hold_replies()`` lets the client's requests reach the server and holds the server's
replies back; ``drop()`` then loses them with the connection, and the client reconnects on the
same session. The acquire must find its node again by the attempt id in its name, queue with
that very node (same name, same czxid), create no second one, and keep no node of a session
that is gone. The unit tests of ``CreateLedger`` and the recipe cover the bookkeeping; these
check it against the server.

Each proxied client logs on a logger of its own, recorded by ``KazooTraffic``, to count the
creates it sent and the replies to them it read (none, when the reply was lost).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from _threads import acquire_in_a_thread
from kazoo.client import KazooClient
from kazoo.protocol.states import ZnodeStat

import zklock
from zklock._kinds import EXCLUSIVE
from zklock.naming import NodeNaming
from zklock.testing import (
    KazooClientFactory,
    KazooTraffic,
    TcpProxy,
    ZooKeeperServer,
    expire_session_id,
    wait_until,
)

SESSION_TIMEOUT = 6.0
"""Requested session timeout of the proxied client: kazoo gives up on a silent connection
after two thirds of it (4 s), far longer than a reply is held here."""


@pytest.fixture
def proxy(zookeeper: ZooKeeperServer) -> Iterator[TcpProxy]:
    with TcpProxy(zookeeper.connect_string) as proxy:
        yield proxy


@pytest.fixture
def proxied(proxy: TcpProxy) -> Iterator[Callable[[], tuple[KazooClient, KazooTraffic]]]:
    """``proxied()`` -> (a client connected through ``proxy``, the traffic of that client alone).

    Its clients are closed before the proxy is, so that they end their sessions through it.
    """
    logger = logging.getLogger(f"zklock-test-lost-replies.{uuid.uuid4().hex[:8]}")
    factory = KazooClientFactory(proxy.connect_string, timeout=SESSION_TIMEOUT)
    with KazooTraffic.recording(logger) as traffic, factory:

        def make() -> tuple[KazooClient, KazooTraffic]:
            client = factory(logger=logger)
            traffic.take()  # the connect itself
            return client, traffic

        yield make


def _node_created_meanwhile(observer: KazooClient, path: str, before: set[str]) -> tuple[str, ZnodeStat]:
    """Wait for one new child of ``path`` (the create ran on the server); its name and stat."""
    assert wait_until(lambda: set(observer.get_children(path)) - before, 10), "the create never ran"
    (name,) = set(observer.get_children(path)) - before
    _data, stat = observer.get(f"{path}/{name}")
    return name, stat


def _replies_read(traffic: KazooTraffic, request: str) -> int:
    return sum(1 for what, name in traffic.seen if name == request and what in ("reply", "error"))


def test_a_create_whose_reply_was_lost_is_found_and_kept(proxied, zk_client_factory, zk_path, proxy):
    path = f"{zk_path}/lost-reply"
    observer = zk_client_factory()
    observer.ensure_path(path)
    client, traffic = proxied()
    session = client.client_id[0]
    lock = zklock.Lock(client, path, identifier="lost-reply")
    proxy.hold_replies()
    thread, outcome = acquire_in_a_thread(lock, timeout=10)
    try:
        name, stat = _node_created_meanwhile(observer, path, set())
        assert traffic.sent()[:1] == ["Create2"]
        assert stat.ephemeralOwner == session
        assert outcome == []  # its reply is held: the acquire does not know yet
        proxy.drop()  # the reply is lost with the connection; the session lives on
    finally:
        proxy.heal()
        thread.join(15)
    assert outcome == [True]
    lease = lock.lease
    assert lease is not None
    assert (lease.node, lease.token) == (f"{path}/{name}", stat.czxid)  # the node made in the dark
    assert lease.session_id == session == client.client_id[0]
    assert observer.get_children(path) == [name]  # and no second one
    assert traffic.requests()["Create2"] == 1
    assert _replies_read(traffic, "Create2") == 0  # the reply was lost indeed, not late
    lock.release()
    assert wait_until(lambda: observer.get_children(path) == [], 5)


def test_a_waiter_whose_create_reply_was_lost_queues_with_that_node(
    proxied, zk_client_factory, zk_path, proxy
):
    path = f"{zk_path}/lost-reply-contended"
    observer = zk_client_factory()
    holder = zklock.Lock(zk_client_factory(), path, identifier="holder")
    assert holder.acquire(timeout=10)
    assert holder.lease is not None
    holder_name = holder.lease.node.rsplit("/", 1)[1]
    client, traffic = proxied()
    lock = zklock.Lock(client, path, identifier="waiter")
    proxy.hold_replies()
    thread, outcome = acquire_in_a_thread(lock, timeout=10)
    try:
        name, stat = _node_created_meanwhile(observer, path, {holder_name})
        proxy.drop()
        proxy.heal()
        # Back on the same session, the acquire lists the children, reads its node found
        # there (one GetData) and then watches the holder's node (a second GetData).
        assert wait_until(lambda: traffic.sent().count("GetData") >= 2, 15), traffic.seen
        assert outcome == []  # waiting behind the holder
        assert sorted(observer.get_children(path)) == sorted([holder_name, name])
        assert traffic.requests()["Create2"] == 1
        holder.release()
    finally:
        proxy.heal()
        thread.join(15)
        if holder.locked():
            holder.release()
    assert outcome == [True]
    lease = lock.lease
    assert lease is not None
    assert (lease.node, lease.token) == (f"{path}/{name}", stat.czxid)
    assert observer.get_children(path) == [name]
    assert traffic.requests()["Create2"] == 1
    assert _replies_read(traffic, "Create2") == 0
    lock.release()
    assert wait_until(lambda: observer.get_children(path) == [], 5)


def test_a_lost_create_of_a_session_that_expired_meanwhile_is_not_kept(
    proxied, zookeeper, zk_client_factory, zk_path, proxy
):
    path = f"{zk_path}/lost-reply-expired"
    observer = zk_client_factory()
    observer.ensure_path(path)
    client, traffic = proxied()
    old_session, password = client.client_id
    lock = zklock.Lock(client, path, identifier="expired")
    proxy.hold_replies()
    thread, outcome = acquire_in_a_thread(lock, timeout=10)
    try:
        name, stat = _node_created_meanwhile(observer, path, set())
        assert stat.ephemeralOwner == old_session
        # The server ends the session; its node goes with it. The client hears nothing yet.
        expire_session_id(zookeeper.connect_string, old_session, password)
        assert wait_until(lambda: observer.get_children(path) == [], 5)
        proxy.drop()  # reconnecting, the client learns of the expiry and starts a new session
    finally:
        proxy.heal()
        thread.join(15)
    assert outcome == [True]
    lease = lock.lease
    assert lease is not None
    new_session = client.client_id[0]
    assert new_session != old_session
    assert lease.session_id == new_session
    assert lease.node != f"{path}/{name}" and lease.token > stat.czxid
    assert observer.get_children(path) == [lease.node.rsplit("/", 1)[1]]  # nothing else of ours
    _data, held = observer.get(lease.node)
    assert held.ephemeralOwner == new_session
    assert traffic.requests()["Create2"] == 2  # the lost one, and one of the new session
    lock.release()
    assert wait_until(lambda: observer.get_children(path) == [], 5)


def test_a_create_answered_after_the_acquire_stopped_waiting_is_kept_once(
    proxied, zk_client_factory, zk_path, proxy
):
    # The reply is late, not lost: the acquire gives up waiting for it (request timeout),
    # looks for the node by listing, and then both the late reply and the listing report it.
    path = f"{zk_path}/late-reply"
    observer = zk_client_factory()
    observer.ensure_path(path)
    client, traffic = proxied()
    session = client.client_id[0]
    lock = zklock.Lock(client, path, retry=zklock.RetryPolicy(request_timeout=0.5))
    proxy.hold_replies()
    thread, outcome = acquire_in_a_thread(lock, timeout=10)
    try:
        name, stat = _node_created_meanwhile(observer, path, set())
        # Past the request timeout, the acquire lists the children again to look for it.
        assert wait_until(lambda: traffic.sent().count("GetChildren") >= 2, 10), traffic.seen
        assert outcome == []
    finally:
        proxy.heal()  # every held reply arrives, late
        thread.join(15)
    assert outcome == [True]
    lease = lock.lease
    assert lease is not None
    assert (lease.node, lease.token, lease.session_id) == (f"{path}/{name}", stat.czxid, session)
    assert observer.get_children(path) == [name]
    assert traffic.requests()["Create2"] == 1
    assert _replies_read(traffic, "Create2") == 1  # read this time, after the listing was sent
    lock.release()
    assert wait_until(lambda: observer.get_children(path) == [], 5)


def test_a_lost_create_never_adopts_another_sessions_node_with_its_attempt_id(
    proxied, zk_client_factory, zk_path, proxy, monkeypatch
):
    # The node found by the attempt id after a lost reply is kept only if this session owns
    # it.  Here another session's node carries the id (an id is random: a stand-in for any
    # node not ours), and the client's own create never reached the server.
    path = f"{zk_path}/foreign"
    observer = zk_client_factory()
    observer.ensure_path(path)
    attempt_id = uuid.uuid4().hex
    fresh_ids = NodeNaming.new_attempt_id
    ids = iter([attempt_id])
    monkeypatch.setattr(NodeNaming, "new_attempt_id", lambda self: next(ids, None) or fresh_ids(self))
    foreign = observer.create(
        f"{path}/{NodeNaming.KAZOO.prefix(attempt_id, EXCLUSIVE)}", b"", ephemeral=True, sequence=True
    )
    client, traffic = proxied()
    session = client.client_id[0]
    lock = zklock.Lock(client, path)
    proxy.blackhole()  # the create never reaches the server
    thread, outcome = acquire_in_a_thread(lock, timeout=15)
    try:
        assert wait_until(lambda: "Create2" in traffic.sent(), 10)
        proxy.drop()  # its reply is lost with the connection; the session lives on
    finally:
        proxy.heal()
    # The acquire lists, finds the foreign node by the id, leaves it alone, creates its own
    # node and queues behind the foreign one.
    assert wait_until(lambda: len(observer.get_children(path)) == 2 or bool(outcome), 10)
    observer.delete(foreign)
    thread.join(15)
    assert outcome == [True]
    lease = lock.lease
    assert lease is not None and lease.node != foreign
    assert lease.session_id == session
    _data, stat = observer.get(lease.node)
    assert stat.ephemeralOwner == session
    lock.release()


def test_a_watch_reply_of_no_node_after_the_wait_ended_sends_nothing(
    proxied, zk_client_factory, zk_path, proxy
):
    # The node ahead goes before the watch reaches the server, and the NoNode answer comes
    # only after the acquire gave up: that answer must not send a listing for nobody.
    path = f"{zk_path}/late-no-node"
    observer = zk_client_factory()
    observer.ensure_path(path)
    first = observer.create(f"{path}/a__lock__", b"", ephemeral=True, sequence=True)
    second = observer.create(f"{path}/b__lock__", b"", ephemeral=True, sequence=True)
    client, traffic = proxied()
    send_get = client.get_async
    watched: list[str] = []

    def get_async(node, watch=None):
        if watch is not None and not watched:
            watched.append(node)
            observer.delete(second)
            proxy.hold_replies()
        return send_get(node, watch=watch)

    client.get_async = get_async
    lock = zklock.Lock(client, path)
    assert lock.acquire(timeout=1.0) is False  # the wait ends with the answer held back
    assert watched == [second]
    traffic.take()
    proxy.heal()
    assert wait_until(lambda: _replies_read(traffic, "GetData") == 1, 5), traffic.seen
    time.sleep(0.5)  # room for a listing its callback would send: none may follow
    assert "GetChildren" not in traffic.sent(), traffic.seen
    observer.delete(first)
