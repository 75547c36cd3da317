"""NodeNaming against a real ZooKeeper: Curator-named and kazoo-named contenders queue together.

The Java side (a real Curator InterProcessMutex) is in test_curator_interop.py; here the
contenders are zklock locks of both namings, kazoo's own Lock, and bare nodes spelled as
Curator spells them.
"""

from __future__ import annotations

import re
import threading

import pytest
from kazoo.recipe.lock import Lock as KazooLock

import zklock
from zklock.testing import wait_until

UUID36 = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def test_curator_naming_writes_protected_mutex_names(zk_client, zk_path):
    lock = zklock.Lock(zk_client, f"{zk_path}/lock", naming=zklock.NodeNaming.CURATOR)
    with lock as lease:
        name = lease.node.rsplit("/", 1)[1]
        assert re.fullmatch(rf"_c_{UUID36}-lock-\d{{10}}", name), name
        assert zk_client.get_children(f"{zk_path}/lock") == [name]
    assert zk_client.get_children(f"{zk_path}/lock") == []


@pytest.mark.parametrize(
    "first, second",
    [
        (zklock.NodeNaming.KAZOO, zklock.NodeNaming.CURATOR),
        (zklock.NodeNaming.CURATOR, zklock.NodeNaming.KAZOO),
    ],
    ids=["kazoo-then-curator", "curator-then-kazoo"],
)
def test_the_two_namings_exclude_each_other(zk_client_factory, zk_path, first, second):
    holder = zklock.Lock(zk_client_factory(), f"{zk_path}/lock", naming=first)
    waiter = zklock.Lock(zk_client_factory(), f"{zk_path}/lock", naming=second)
    assert holder.acquire(timeout=10)
    try:
        assert waiter.acquire(timeout=0.5) is False
        assert len(waiter.contenders()) == 1  # the timed-out waiter left no node
    finally:
        holder.release()
    assert waiter.acquire(timeout=10)
    waiter.release()


def test_a_curator_named_node_ahead_is_waited_for(zk_client, zk_client_factory, zk_path):
    # A node exactly as Curator's InterProcessMutex writes it, created by another session.
    other = zk_client_factory()
    other.ensure_path(f"{zk_path}/lock")
    curator_node = other.create(
        f"{zk_path}/lock/_c_1b4e28ba-2fa1-11d2-883f-0016d3cca427-lock-", b"10.0.0.7",
        ephemeral=True, sequence=True,
    )
    lock = zklock.Lock(zk_client, f"{zk_path}/lock")
    assert lock.acquire(timeout=0.5) is False
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: lock.acquire(timeout=10) and woke.set())
    waiter.start()
    try:
        assert not woke.wait(0.5)
        curator_token = other.exists(curator_node).czxid
        other.delete(curator_node)  # the Curator holder releases: exactly this wakes us
        assert woke.wait(10)
    finally:
        waiter.join(15)
    assert lock.lease is not None and lock.lease.token > curator_token
    lock.release()


def test_kazoo_lock_and_curator_named_zklock_through_a_zklock_queue(zk_client_factory, zk_path):
    # Order on one path: kazoo's Lock holds, a Curator-named zklock waits, a kazoo-named zklock
    # waits behind it.  Releases hand the lock on in creation order.
    path = f"{zk_path}/lock"
    kazoo_lock = KazooLock(zk_client_factory(), path)
    assert kazoo_lock.acquire(timeout=10)
    order: list[str] = []
    curator_named = zklock.Lock(zk_client_factory(), path, naming=zklock.NodeNaming.CURATOR)
    kazoo_named = zklock.Lock(zk_client_factory(), path)

    def take(lock: zklock.Lock, name: str) -> None:
        with lock.hold(timeout=20):
            order.append(name)

    first = threading.Thread(target=take, args=(curator_named, "curator-named"))
    first.start()
    assert wait_until(lambda: len(curator_named.contenders()) == 2, timeout=10)
    second = threading.Thread(target=take, args=(kazoo_named, "kazoo-named"))
    second.start()
    assert wait_until(lambda: len(kazoo_named.contenders()) == 3, timeout=10)
    assert order == []
    kazoo_lock.release()
    first.join(20)
    second.join(20)
    assert order == ["curator-named", "kazoo-named"]


def test_children_that_only_end_like_lock_nodes_are_not_waited_for(zk_client, zk_path):
    # Their suffix is not a sequence as ZooKeeper writes it (ten characters, "%010d"), so
    # they are not contenders, as kazoo's Lock also ignores them.
    path = f"{zk_path}/lock"
    for name in ("clock-1", "deadlock-7", "backup__lock__3"):
        zk_client.create(f"{path}/{name}", makepath=True)
    lock = zklock.Lock(zk_client, path)
    assert lock.acquire(timeout=5)
    assert [c.node.rsplit("/", 1)[1] for c in lock.contenders()] == [
        lock.lease.node.rsplit("/", 1)[1]
    ]
    lock.release()
    kazoo_lock = KazooLock(zk_client, path)
    assert kazoo_lock.acquire(timeout=5)  # kazoo agrees
    kazoo_lock.release()
