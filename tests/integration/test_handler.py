"""The lock contract with kazoo clients on zklock.handler.LeanHandler, against a real ZooKeeper.

Acquire/release, contention between two sessions, a watch firing, a dropped connection (the
session survives), a server-side session expiry, and the kazoo paths the handler runs inline
(create with makepath, ensure_path) under a flood of requests.
"""

from __future__ import annotations

import threading
import time

import pytest
from kazoo.protocol.states import KazooState

import zklock
from zklock.handler import BufferedSocket, LeanHandler
from zklock.testing import TcpProxy, expire_session


def _wait_for(predicate, timeout: float = 10.0, step: float = 0.01) -> bool:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture
def lean_client(zk_client_factory):
    """Make started clients on the lean handler (each with its own handler)."""

    def make(**kwargs):
        return zk_client_factory(handler=LeanHandler(), **kwargs)

    return make


@pytest.fixture
def proxy(zookeeper):
    with TcpProxy(zookeeper.connect_string) as proxy:
        yield proxy


class StateLog:
    def __init__(self) -> None:
        self.seen: list[zklock.LeaseState] = []

    def __call__(self, lease: zklock.Lease, state: zklock.LeaseState) -> None:
        self.seen.append(state)


def test_client_uses_the_handler(lean_client):
    client = lean_client()
    assert isinstance(client.handler, LeanHandler)
    assert client.command(b"ruok") == "imok"  # a side connection through create_connection
    assert client.server_version()


def test_acquire_release_and_lease(lean_client, zk_path):
    client = lean_client()
    lock = zklock.Lock(client, f"{zk_path}/a", identifier="lean")
    assert lock.acquire()
    lease = lock.lease
    assert lease is not None and lease.valid
    _data, stat = client.get(lease.node)
    assert stat.czxid == lease.token and stat.ephemeralOwner == client.client_id[0]
    assert [c.identifier for c in lock.contenders()] == ["lean"]
    lock.release()
    assert lease.state is zklock.LeaseState.RELEASED
    assert client.get_children(f"{zk_path}/a") == []
    for _ in range(50):  # the reused parent, many cycles
        with lock:
            pass


def test_contention_between_two_sessions(lean_client, zk_path):
    path = f"{zk_path}/c"
    first = zklock.Lock(lean_client(), path, identifier="first")
    second = zklock.Lock(lean_client(), path, identifier="second")
    assert first.acquire()
    assert second.acquire(blocking=False) is False
    assert second.acquire(timeout=0.2) is False
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(second.acquire(timeout=30)))
    waiter.start()
    assert _wait_for(lambda: len(first.contenders()) == 2)
    first.release()  # the waiter's predecessor watch fires
    waiter.join(30)
    assert got == [True]
    assert [c.identifier for c in second.contenders()] == ["second"]
    second.release()


def test_threads_and_processes_worth_of_contenders_exclude(lean_client, zk_path):
    path = f"{zk_path}/many"
    inside = []
    overlaps = []
    guard = threading.Lock()

    def work(lock: zklock.Lock) -> None:
        for _ in range(10):
            with lock:
                with guard:
                    inside.append(1)
                    if len(inside) > 1:
                        overlaps.append(len(inside))
                time.sleep(0.001)
                with guard:
                    inside.pop()

    locks = [zklock.Lock(lean_client(), path) for _ in range(4)]
    threads = [threading.Thread(target=work, args=(lock,)) for lock in locks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert overlaps == []


def test_watches_fire(lean_client, zk_path):
    client = lean_client()
    other = lean_client()
    client.ensure_path(zk_path)
    events: list[str] = []
    fired = threading.Event()

    def watch(event) -> None:
        events.append(event.type)
        fired.set()

    assert client.exists(f"{zk_path}/w", watch=watch) is None
    other.create(f"{zk_path}/w", b"1")
    assert fired.wait(10)
    seen: list[bytes] = []
    client.DataWatch(f"{zk_path}/w", lambda data, stat: seen.append(data))
    other.set(f"{zk_path}/w", b"2")
    assert _wait_for(lambda: seen[-1:] == [b"2"])
    assert events == ["CREATED"]
    other.delete(f"{zk_path}/w")


def test_short_connection_drop_keeps_session_and_lock(lean_client, zk_path, proxy):
    client = lean_client(hosts=proxy.connect_string, timeout=6.0)
    log = StateLog()
    lock = zklock.Lock(client, f"{zk_path}/drop", listener=log)
    with lock as lease:
        session = client.client_id[0]
        socket_before = client._connection._socket
        assert isinstance(socket_before, BufferedSocket)
        proxy.drop()
        assert _wait_for(lambda: zklock.LeaseState.SUSPENDED in log.seen, 5)
        assert _wait_for(lambda: log.seen[-1:] == [zklock.LeaseState.HELD], 10)
        assert client.client_id[0] == session
        assert lease.valid
        _data, stat = client.get(lease.node)  # the new connection's poller works
        assert stat.ephemeralOwner == session
    assert log.seen == [
        zklock.LeaseState.SUSPENDED, zklock.LeaseState.HELD, zklock.LeaseState.RELEASED
    ]


def test_waiter_survives_a_connection_drop(lean_client, zk_client_factory, zk_path, proxy):
    path = f"{zk_path}/wait-drop"
    holder = zklock.Lock(zk_client_factory(), path, identifier="holder")
    assert holder.acquire()
    waiter = zklock.Lock(lean_client(hosts=proxy.connect_string, timeout=6.0), path,
                         identifier="waiter")
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(waiter.acquire(timeout=30)))
    thread.start()
    assert _wait_for(lambda: len(holder.contenders()) == 2)
    proxy.drop()
    time.sleep(0.3)
    holder.release()
    thread.join(35)
    assert got == [True]
    waiter.release()


def test_session_expiry_loses_the_lease(lean_client, zk_path):
    path = f"{zk_path}/expiry"
    victim = lean_client(timeout=4.0)
    lock = zklock.Lock(victim, path)
    other = zklock.Lock(lean_client(), path)
    with pytest.raises(zklock.LockLost):
        with lock as lease:
            assert expire_session(victim)
            assert lease.lost.wait(10)
            assert lease.state is zklock.LeaseState.LOST
            assert other.acquire(timeout=10)
    other.release()
    # kazoo started a new session on the same handler: it works.
    assert _wait_for(lambda: victim.state == KazooState.CONNECTED, 15)
    with lock:
        pass


def test_inline_kazoo_completions_under_a_flood(lean_client, zk_path):
    """create(makepath) and ensure_path chain requests from the connection thread, while
    thousands of requests are queued; none may stall."""
    client = lean_client()
    results = [
        client.create_async(f"{zk_path}/flood/p{i % 50}/n", b"", sequence=True, makepath=True)
        for i in range(3000)
    ]
    paths = [result.get(timeout=60) for result in results]
    assert len(set(paths)) == 3000
    assert client.ensure_path_async(f"{zk_path}/flood/deep/a/b/c").get(timeout=30)
    assert client.exists(f"{zk_path}/flood/deep/a/b/c")
    client.delete(f"{zk_path}/flood", recursive=True)


def test_stop_and_restart_the_client(lean_client, zk_path):
    client = lean_client()
    client.ensure_path(zk_path)
    client.stop()
    client.start(timeout=15)
    with zklock.Lock(client, f"{zk_path}/restart"):
        pass
