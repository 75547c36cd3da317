"""NodeNaming against a real ZooKeeper: Curator-named and kazoo-named contenders queue together.

The Java side (a real Curator InterProcessMutex) is in test_curator_interop.py; here the
contenders are zklock locks of both namings, kazoo's own Lock, ReadLock and WriteLock, and bare
nodes spelled as Curator spells them.
"""

from __future__ import annotations

import re
import threading

import pytest
from kazoo.recipe.lock import Lock as KazooLock
from kazoo.recipe.lock import ReadLock, WriteLock

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


# ------------------------------------------------------------------ kazoo's ReadLock and WriteLock
# docs/interop.md and docs/guarantees.md: a zklock Lock queues behind kazoo's ``__rlock__``
# nodes as well as its ``__lock__`` ones, kazoo's readers wait behind zklock's nodes, and
# kazoo's WriteLock queues with it as its Lock does.


@pytest.mark.parametrize("kazoo_kind", [ReadLock, WriteLock], ids=["ReadLock", "WriteLock"])
def test_kazoo_read_and_write_locks_cannot_take_a_lock_zklock_holds(
    zk_client_factory, zk_path, kazoo_kind
):
    path = f"{zk_path}/lock"
    lock = zklock.Lock(zk_client_factory(), path)
    kazoo_lock = kazoo_kind(zk_client_factory(), path)
    assert lock.acquire(timeout=10)
    try:
        assert kazoo_lock.acquire(blocking=False) is False
        assert not kazoo_lock.is_acquired
        # kazoo took its node away again: only zklock's is queued.
        assert [c.node for c in lock.contenders()] == [lock.lease.node]
    finally:
        lock.release()
    assert kazoo_lock.acquire(timeout=10)
    try:
        assert lock.acquire(blocking=False) is False  # and now the other way round
    finally:
        kazoo_lock.release()


@pytest.mark.parametrize("kazoo_kind", [ReadLock, WriteLock], ids=["ReadLock", "WriteLock"])
def test_zklock_waits_behind_a_kazoo_read_or_write_lock_and_gets_it_on_release(
    zk_client_factory, zk_path, kazoo_kind
):
    path = f"{zk_path}/lock"
    kazoo_client = zk_client_factory()
    kazoo_lock = kazoo_kind(kazoo_client, path)
    assert kazoo_lock.acquire(timeout=10)
    kazoo_node = f"{path}/{kazoo_lock.node}"
    kazoo_token = kazoo_client.exists(kazoo_node).czxid
    lock = zklock.Lock(zk_client_factory(), path, identifier="zklock")
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(lock.acquire(timeout=20)))
    try:
        assert lock.acquire(blocking=False) is False  # kazoo's node is ahead of ours
        waiter.start()
        # Queued behind kazoo's node, which zklock lists as a contender of its own queue.
        assert wait_until(
            lambda: [c.node for c in lock.contenders()][:1] == [kazoo_node]
            and len(lock.contenders()) == 2,
            timeout=10,
        )
        assert got == [] and lock.lease is None
    finally:
        kazoo_lock.release()  # exactly this wakes the zklock waiter
        if waiter.ident is not None:
            waiter.join(25)
    assert got == [True]
    assert lock.lease.token > kazoo_token
    assert [c.identifier for c in lock.contenders()] == ["zklock"]
    lock.release()


def test_a_kazoo_reader_zklock_and_a_kazoo_writer_take_the_lock_in_queue_order(
    zk_client_factory, zk_path
):
    # kazoo's ReadLock holds; a zklock Lock queues behind it, a kazoo WriteLock behind that.
    # The writer waits for zklock's node as for any ``__lock__`` node ahead of it.
    path = f"{zk_path}/lock"
    reader = ReadLock(zk_client_factory(), path)
    assert reader.acquire(timeout=10)
    lock = zklock.Lock(zk_client_factory(), path, identifier="zklock")
    writer = WriteLock(zk_client_factory(), path, identifier="kazoo-writer")
    order: list[str] = []
    zklock_holds = threading.Event()
    zklock_may_release = threading.Event()

    def take_zklock() -> None:
        with lock.hold(timeout=20):
            order.append("zklock")
            zklock_holds.set()
            zklock_may_release.wait(20)

    def take_writer() -> None:
        if writer.acquire(timeout=20):
            order.append("kazoo-writer")
            writer.release()

    first = threading.Thread(target=take_zklock)
    second = threading.Thread(target=take_writer)
    try:
        first.start()
        assert wait_until(lambda: len(lock.contenders()) == 2, timeout=10)
        second.start()
        assert wait_until(lambda: len(writer.contenders()) == 3, timeout=10)
        assert order == []
        reader.release()
        assert zklock_holds.wait(20)
        assert order == ["zklock"]
        # The writer stays queued behind zklock's node while zklock holds.
        assert [c.identifier for c in lock.contenders()] == ["zklock", "kazoo-writer"]
    finally:
        if reader.is_acquired:
            reader.release()
        zklock_may_release.set()
        if first.ident is not None:
            first.join(25)
        if second.ident is not None:
            second.join(25)
            if second.is_alive():  # still waiting, the test having failed: give up
                writer.cancel()
                second.join(25)
    assert order == ["zklock", "kazoo-writer"]


def test_the_queue_runs_on_across_the_32_bit_wrap_of_the_sequence(zk_client, zk_client_factory, zk_path):
    # Nodes named as ZooKeeper names them just before and after its counter wraps (made by
    # hand: a real wrap takes 2**31 creations). By text, "-2147483648" would come first.
    other = zk_client_factory()
    path = f"{zk_path}/wrap"
    other.ensure_path(path)
    names = [
        f"{'a' * 32}__lock__2147483646",
        f"{'b' * 32}__lock__2147483647",
        f"{'c' * 32}__lock__-2147483648",
        f"{'d' * 32}__lock__-2147483647",
    ]
    for name in reversed(names):  # creation order must not be what orders them
        other.create(f"{path}/{name}", name[0].encode(), ephemeral=True)
    seen = zklock.Lock(zk_client, path).contenders(timeout=10)
    assert [c.node.rsplit("/", 1)[1] for c in seen] == names
    assert [c.identifier for c in seen] == ["a", "b", "c", "d"]
    other.delete(path, recursive=True)
