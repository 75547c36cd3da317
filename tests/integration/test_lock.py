"""The exclusive Lock against a real ZooKeeper: exclusion, deadlines, with/decorator, threads,
cancellation, kazoo interop, no herd, no leaked nodes."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _threads import acquire_in_a_thread
from kazoo.protocol.states import KeeperState
from kazoo.recipe.lock import Lock as KazooLock

import zklock
from benchmarks.server import watches_below  # the servers' wchp, counted below one parent
from zklock.testing import KazooTraffic, TcpProxy, wait_until

WORKERS = Path(__file__).parent / "workers"

# The contract every lock kind must meet. A new kind (reentrant, read/write, semaphore...)
# joins by adding its class here; tests written for exclusive-only behaviour say so.
LOCK_KINDS = [zklock.Lock]


@pytest.fixture(params=LOCK_KINDS, ids=lambda kind: kind.__name__)
def lock_class(request):
    return request.param


def test_processes_contending_never_overlap_and_lose_no_update(zookeeper, zk_client, zk_path):
    processes, rounds = 8, 6
    counter = f"{zk_path}-counter"
    zk_client.create(counter, b"0", makepath=True)
    procs: list[subprocess.Popen[str]] = []
    try:
        for i in range(processes):
            procs.append(subprocess.Popen(
                [sys.executable, str(WORKERS / "contend.py"), zookeeper.connect_string,
                 f"{zk_path}/lock", counter, str(rounds), f"worker-{i}"],
                stdout=subprocess.PIPE, text=True,
            ))
        sections = []
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0
            sections += [json.loads(line) for line in out.splitlines()]
        value, _ = zk_client.get(counter)
    finally:
        for proc in procs:  # a failed worker must not leave the others running
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
        zk_client.delete(counter)
    assert len(sections) == processes * rounds
    assert int(value) == processes * rounds  # no lost update
    sections.sort(key=lambda s: s["enter"])
    for before, after in zip(sections, sections[1:]):
        assert before["exit"] <= after["enter"], f"overlap: {before} / {after}"
        assert before["token"] < after["token"]  # fencing tokens follow the order of holding
    assert {s["who"] for s in sections} == {f"worker-{i}" for i in range(processes)}


def test_acquire_release_locked_and_lease(zk_client, zk_path, lock_class):
    lock = lock_class(zk_client, f"{zk_path}/a", identifier="me")
    assert not lock.locked() and lock.lease is None
    assert lock.acquire() is True
    assert lock.locked()
    lease = lock.lease
    assert lease is not None and lease.state is zklock.LeaseState.HELD and lease.valid
    assert lease.node.startswith(f"{zk_path}/a/") and "__lock__" in lease.node
    assert lease.session_id == zk_client.client_id[0]
    _data, stat = zk_client.get(lease.node)
    assert stat.czxid == lease.token and stat.ephemeralOwner == lease.session_id
    assert [c.identifier for c in lock.contenders()] == ["me"]
    lock.release()
    assert not lock.locked() and lease.state is zklock.LeaseState.RELEASED
    assert lease.reason == "released by its holder"
    assert zk_client.get_children(f"{zk_path}/a") == []
    with pytest.raises(zklock.NotHeld):
        lock.release()


def test_timeout_is_a_total_deadline_with_waiters_ahead(zk_client_factory, zk_path, lock_class):
    path = f"{zk_path}/deadline"
    holder = lock_class(zk_client_factory(), path, identifier="holder")
    assert holder.acquire()
    # Waiters ahead of us that give up one after another: kazoo restarts its timeout on each
    # predecessor wait; ours must not.  They are all queued first, then leave on a schedule
    # that starts with our acquire (a timeout of their own would start with their threads).
    ahead = [lock_class(zk_client_factory(), path, identifier=f"ahead-{i}") for i in range(3)]
    leave_after = [0.6, 1.2, 1.8]

    def wait_ahead(lock) -> None:
        with contextlib.suppress(zklock.AcquireCancelled):
            lock.acquire(timeout=30)

    threads = []
    for queued, lk in enumerate(ahead, start=2):
        threads.append(threading.Thread(target=wait_ahead, args=(lk,)))
        threads[-1].start()  # queued in this order, one after another
        assert wait_until(lambda n=queued: len(holder.contenders()) == n)
    leaving = [threading.Timer(at, lk.cancel) for lk, at in zip(ahead, leave_after)]
    waiter = lock_class(zk_client_factory(), path, identifier="late")
    started = time.monotonic()
    for timer in leaving:
        timer.start()
    assert waiter.acquire(timeout=2.0) is False
    elapsed = time.monotonic() - started
    for thread in (*leaving, *threads):
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    # A timeout restarted when the last waiter ahead gives up would end 2 s after that, at
    # the earliest (3.8 s); the gap to it is the slack a loaded machine gets.
    restarted_end = leave_after[-1] + 2.0
    assert 2.0 <= elapsed < restarted_end - 0.5, (elapsed, restarted_end)
    # Every waiter's node is deleted: the last one's delete is sent as its acquire returns
    # and not waited for (guarantees.md, "abandoning"), so the holder's session may see it
    # for a moment.
    assert wait_until(lambda: [c.identifier for c in holder.contenders()] == ["holder"])
    holder.release()


def test_non_blocking_and_zero_timeout(zk_client_factory, zk_path, lock_class):
    path = f"{zk_path}/nb"
    first = lock_class(zk_client_factory(), path)
    other = lock_class(zk_client_factory(), path)
    assert first.acquire(blocking=False)
    assert other.acquire(blocking=False) is False
    assert other.acquire(timeout=0) is False
    assert wait_until(lambda: len(first.contenders()) == 1)  # the failed tries left no node
    first.release()
    assert other.acquire(blocking=False)
    other.release()


def test_with_block_releases_on_exception_and_yields_the_lease(zk_client, zk_path, lock_class):
    lock = lock_class(zk_client, f"{zk_path}/w")
    with pytest.raises(RuntimeError, match="boom"):
        with lock as lease:
            assert isinstance(lease, zklock.Lease) and lease.valid
            raise RuntimeError("boom")
    assert not lock.locked()
    assert zk_client.get_children(f"{zk_path}/w") == []


def test_hold_raises_lock_timeout(zk_client_factory, zk_path, lock_class):
    path = f"{zk_path}/h"
    holder = lock_class(zk_client_factory(), path)
    with holder.hold(timeout=1) as lease:
        assert lease.valid
        with pytest.raises(zklock.LockTimeout) as caught:
            with lock_class(zk_client_factory(), path).hold(timeout=0.2):
                pytest.fail("body ran without the lock")
        assert isinstance(caught.value, TimeoutError)


def test_decorators_on_functions_and_methods(zk_client, zk_path, lock_class):
    lock = lock_class(zk_client, f"{zk_path}/d1")
    seen: list[bool] = []

    @lock
    def critical() -> str:
        seen.append(lock.locked())
        return "done"

    class Account:
        @zklock.locked(zk_client, f"{zk_path}/d2", timeout=5)
        def debit(self, amount: int) -> int:
            seen.append(zk_client.get_children(f"{zk_path}/d2") != [])
            return amount

    assert critical() == "done" and critical() == "done"
    assert Account().debit(7) == 7
    assert seen == [True, True, True]
    assert not lock.locked()


def test_shared_lock_object_between_threads(zk_client, zk_path, lock_class):
    path = f"{zk_path}/threads"
    lock = lock_class(zk_client, path)
    inside = 0
    max_inside = 0
    max_nodes = 0
    sections = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, max_inside, max_nodes, sections
        for _ in range(5):
            with lock:
                with guard:
                    inside += 1
                    max_inside = max(max_inside, inside)
                max_nodes = max(max_nodes, len(zk_client.get_children(path)))
                time.sleep(0.005)
                with guard:
                    inside -= 1
                    sections += 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sections == 20  # no thread died on the way (that would also keep max_inside at 1)
    assert max_inside == 1
    assert max_nodes == 1  # the other threads waited locally, without znodes


def test_reentry_by_the_holding_thread_fails_fast_or_waits_as_threading_lock(
    zk_client, zk_path, lock_class
):
    # With no timeout only another thread's release could end the wait: refused at once.
    # With a timeout, or one try, as threading.Lock: another thread may release meanwhile.
    lock = lock_class(zk_client, f"{zk_path}/re")
    with lock:
        with pytest.raises(zklock.AlreadyHeld):
            lock.acquire()
        with pytest.raises(zklock.AlreadyHeld):
            with lock:
                pass
        assert lock.acquire(blocking=False) is False
        assert lock.acquire(timeout=0.2) is False
        assert lock.locked()


def test_a_new_thread_given_a_finished_holders_ident_waits_and_is_not_told_it_holds(
    zk_client, zk_path, lock_class
):
    # Any thread may release; the holder here ends first.  Python hands its ident to a later
    # thread (glibc reuses a finished thread's stack).  Other threads may end meanwhile (a
    # zklock watchdog, kazoo's), so the successors that did not get it stay alive until one
    # does: each new thread then takes another cached stack, and the holder's comes up.
    lock = lock_class(zk_client, f"{zk_path}/ident")
    holder = threading.Thread(target=lock.acquire)
    holder.start()
    holder.join()
    outcome: list[object] = []
    checked: list[bool] = []  # per successor: did it get the holder's ident
    done = threading.Event()

    def try_it() -> None:
        mine = threading.get_ident() == holder.ident
        checked.append(mine)
        if not mine:
            done.wait(30)  # keep this stack out of the cache until the end
            return
        try:
            outcome.append(lock.acquire(timeout=0.2))
        except Exception as error:
            outcome.append(error)

    successors: list[threading.Thread] = []
    try:
        for started in range(1, 51):
            successors.append(threading.Thread(target=try_it))
            successors[-1].start()
            assert wait_until(lambda n=started: len(checked) == n, 10)
            if checked[-1]:
                successors[-1].join(30)
                break
    finally:
        done.set()
        for successor in successors:
            successor.join(30)
    assert outcome, "no new thread got the finished holder's ident"
    assert outcome == [False]  # it waited for the lock (held) and gave up, as threading.Lock
    lock.release()


def test_cancel_from_another_thread(zk_client_factory, zk_path, lock_class):
    path = f"{zk_path}/cancel"
    holder = lock_class(zk_client_factory(), path)
    assert holder.acquire()
    waiter = lock_class(zk_client_factory(), path)
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            waiter.acquire()
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=wait)
    thread.start()
    assert wait_until(lambda: len(holder.contenders()) == 2)  # queued: the cancel meets a waiter
    waiter.cancel()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], zklock.AcquireCancelled)
    assert wait_until(lambda: len(holder.contenders()) == 1)  # the cancelled waiter's node goes
    holder.release()
    assert waiter.acquire(timeout=5)  # a cancel is not sticky
    waiter.release()


def test_interop_with_kazoo_lock_both_ways(zk_client_factory, zk_path, lock_class):
    path = f"{zk_path}/interop"
    ours = lock_class(zk_client_factory(), path, identifier="zklock")
    theirs = KazooLock(zk_client_factory(), path, identifier="kazoo")
    assert ours.acquire()
    assert theirs.acquire(blocking=False) is False
    assert theirs.contenders() == ["zklock"]
    ours.release()
    assert theirs.acquire(timeout=5)
    assert ours.acquire(blocking=False) is False
    assert [c.identifier for c in ours.contenders()] == ["kazoo"]
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(ours.acquire(timeout=5)))
    thread.start()
    assert wait_until(lambda: len(theirs.contenders()) == 2)  # ours queued behind kazoo's
    theirs.release()
    thread.join()
    assert got == [True]
    ours.release()


def test_no_herd_one_release_wakes_one_waiter(zookeeper, zk_client_factory, zk_path, lock_class):
    path = f"{zk_path}/herd"
    clients = [zk_client_factory() for _ in range(5)]
    holder = lock_class(clients[0], path, identifier="holder")
    assert holder.acquire()
    waiters = [lock_class(clients[i % 5], path, identifier=f"w{i}") for i in range(50)]
    results: list = []
    release_next = threading.Event()

    def wait(lock) -> None:
        assert lock.acquire(timeout=60)
        results.append(lock)
        release_next.wait(60)
        lock.release()

    threads = [threading.Thread(target=wait, args=(w,)) for w in waiters]
    for thread in threads:
        thread.start()
    try:
        assert wait_until(lambda: len(holder.contenders()) == 51, timeout=30)
        # Every waiter parked: the server holds one watch per waiter, on the node ahead.
        assert wait_until(lambda: watches_below(zookeeper.connect_string, path) == 50, timeout=30), (
            watches_below(zookeeper.connect_string, path)
        )
        # Every watch event any client hears, whatever code path asked for it.
        with KazooTraffic.recording("kazoo.client") as traffic:
            holder.release()
            assert wait_until(lambda: results, timeout=30)
            # A herd would show within a few round trips; the waiters' watches are the proof
            # that nobody else was told: 49 left, one fewer than before (the woken one's).
            assert wait_until(lambda: watches_below(zookeeper.connect_string, path) == 49, timeout=30)
            time.sleep(0.3)
            events = traffic.events()
        assert events == 1
        assert len(results) == 1
        assert watches_below(zookeeper.connect_string, path) == 49
    finally:
        release_next.set()
        for thread in threads:
            thread.join(60)
    assert len(results) == 50


def test_hand_off_to_a_waiter_that_waited_longer_than_its_session_timeout(
    zk_client_factory, zk_path, lock_class
):
    # The waiter's last request is older than its session timeout when the holder releases;
    # the wake-up alone must not hand it a lease that its own clock already counts as lost.
    holder = lock_class(zk_client_factory(), f"{zk_path}/lock")  # a default, ample session
    waiter = lock_class(zk_client_factory(timeout=2.0), f"{zk_path}/lock")
    assert holder.acquire(timeout=10)
    outcome: list[bool] = []
    thread = threading.Thread(target=lambda: outcome.append(waiter.acquire(timeout=30)))
    thread.start()
    try:
        time.sleep(3.0)
    finally:
        holder.release()
        thread.join(30)
    assert outcome == [True]
    assert waiter.lease is not None
    assert waiter.lease.state is zklock.LeaseState.HELD and waiter.lease.valid
    waiter.release()


@pytest.mark.parametrize("bad", ["relative", "/trailing/", "/zookeeper/x", "/a//b", "/ctl\x07"])
def test_bad_paths_are_refused_with_a_typed_error(zk_client, bad, lock_class):
    with pytest.raises(zklock.InvalidPath):
        lock_class(zk_client, bad)


def test_bad_identifier_and_timeout(zk_client, zk_path, lock_class):
    with pytest.raises(zklock.InvalidIdentifier):
        lock_class(zk_client, f"{zk_path}/x", identifier="x" * 5000)
    lock = lock_class(zk_client, f"{zk_path}/x")
    with pytest.raises(zklock.InvalidTimeout):
        lock.acquire(timeout=-5)
    with pytest.raises(zklock.InvalidTimeout):
        lock.acquire(blocking=False, timeout=3)


def test_client_never_started_or_closed_fails_fast(zookeeper, zk_path, lock_class):
    from kazoo.client import KazooClient

    fresh = KazooClient(hosts=zookeeper.connect_string)
    started = time.monotonic()
    with pytest.raises(zklock.ClientNotConnected):
        lock_class(fresh, f"{zk_path}/x").acquire(timeout=5)
    fresh.start()
    fresh.stop()
    fresh.close()
    with pytest.raises(zklock.ClientNotConnected):
        lock_class(fresh, f"{zk_path}/x").acquire()
    assert time.monotonic() - started < 5


def test_acquire_right_after_start_async_waits_for_the_connection(zk_client_factory, zk_path, lock_class):
    # kazoo reports CLOSED until its connection thread first runs, and fails requests sent
    # meanwhile as if the client were closed: that is starting, not stopped.  The thread is
    # held back here before it says CONNECTING (it first works out the hosts' addresses), so
    # that the acquire surely meets that window.
    client = zk_client_factory(start=False)
    connection = client._connection
    addresses_of_hosts = connection._expand_client_hosts
    sent_while_closed = threading.Event()
    send = client._call  # where every request of kazoo's *_async methods goes

    def noting_a_request_sent_while_closed(request, async_object):
        if client.client_state == KeeperState.CLOSED:
            sent_while_closed.set()
        return send(request, async_object)

    def after_the_acquires_first_try() -> list:
        sent_while_closed.wait(10)  # the acquire's first try has met CLOSED
        return addresses_of_hosts()

    client._call = noting_a_request_sent_while_closed
    connection._expand_client_hosts = after_the_acquires_first_try
    client.start_async()
    assert client.client_state == KeeperState.CLOSED
    lock = lock_class(client, f"{zk_path}/x")
    assert lock.acquire(timeout=15)
    assert sent_while_closed.is_set()
    lock.release()


def test_missing_parent_is_created_and_deleted_parent_recreated(zk_client, zk_path, lock_class):
    path = f"{zk_path}/deep/er/lock"
    lock = lock_class(zk_client, path)
    with lock:
        pass
    zk_client.delete(f"{zk_path}/deep", recursive=True)
    with lock:  # the same object again: nothing cached says the parent exists
        assert zk_client.exists(path)


def test_a_waiter_whose_node_and_lock_path_went_queues_again_on_a_new_path(
    zk_client, zk_client_factory, zk_path
):
    # The waiter's own node deleted (by hand here; its session's expiry does the same), then
    # the lock path with everything left in it: the waiter's next listing finds no path.
    # That is its node gone, as an empty listing would say: it queues again, on a new path.
    path = f"{zk_path}/vanishing"
    other = zk_client_factory()
    holder = zklock.Lock(other, path)
    assert holder.acquire(timeout=10)
    middle = other.create(f"{path}/{'m' * 32}__lock__", b"m", ephemeral=True, sequence=True)
    lock = zklock.Lock(zk_client, path)
    waiting, outcome = acquire_in_a_thread(lock, timeout=20)
    try:
        assert wait_until(lambda: len(other.get_children(path)) == 3, 10)
        (mine,) = set(other.get_children(path)) - {middle.rsplit("/", 1)[1]} - {
            holder.lease.node.rsplit("/", 1)[1]
        }
        other.delete(f"{path}/{mine}")
        # In one step, so that the waiter, woken by the middle node's deletion, lists a
        # path that is already gone.
        gone = other.transaction()
        gone.delete(middle)
        gone.delete(holder.lease.node)
        gone.delete(path)
        assert all(result is True for result in gone.commit())
    finally:
        waiting.join(20)
    assert outcome == [True], outcome
    assert lock.lease is not None and other.exists(lock.lease.node) is not None
    lock.release()
    with pytest.raises(zklock.LockLost):  # its node went with the path
        holder.release()


def test_a_listener_that_hears_released_may_take_the_lock_again(zk_client, zk_path):
    # The lock object is free when its lease's listeners hear RELEASED, from the releasing
    # thread itself as from another one.
    lock = zklock.Lock(zk_client, f"{zk_path}/again")
    results: list[object] = []

    def take_again(lease: zklock.Lease, state: zklock.LeaseState) -> None:
        if state is zklock.LeaseState.RELEASED:
            try:
                results.append(lock.acquire(timeout=5))
            except Exception as error:  # a listener's exception is only logged: keep it
                results.append(error)

    assert lock.acquire(timeout=10)
    lock.lease.add_listener(take_again)
    lock.release()  # on this thread
    assert results == [True] and lock.locked()
    lock.lease.add_listener(take_again)
    releaser = threading.Thread(target=lock.release)  # on another thread
    releaser.start()
    releaser.join(30)
    assert not releaser.is_alive()
    assert results == [True, True] and lock.locked()
    lock.release()


def test_a_thread_whose_lock_another_thread_releases_may_acquire_it_again(
    zookeeper, zk_client_factory, zk_path
):
    # As with threading.Lock.  The release another thread began is held open here (its
    # delete's answer held back by the proxy): the thread that acquired holds nothing, so
    # its acquire with no timeout waits for the release rather than raise AlreadyHeld.  With
    # a timeout it may even wait for a release not begun yet (asyncio.to_thread reuses a
    # worker for the next task's acquire while the first task still holds).
    path = f"{zk_path}/handed"
    with TcpProxy(zookeeper.connect_string) as proxy:
        client = zk_client_factory(hosts=proxy.connect_string)
        lock = zklock.Lock(client, path)
        assert lock.acquire(timeout=10)
        proxy.hold_replies()
        releaser = threading.Thread(target=lock.release)
        releaser.start()
        assert wait_until(lambda: not lock.locked(), 10)  # the release has begun, unanswered
        healed = threading.Timer(0.3, proxy.heal)
        healed.start()
        assert lock.acquire()  # no timeout: waits for the release to end
        releaser.join(10)
        healed.join(10)
        later = threading.Timer(0.2, lock.release)
        later.start()
        assert lock.acquire(timeout=10)  # held by this thread until the timer releases it
        later.join(10)
        lock.release()
        assert client.get_children(path) == []


def test_a_with_block_never_releases_a_lease_another_thread_took_meanwhile(zk_client, zk_path):
    # Any thread may release (a listener letting go on SUSPENDED, say), and another thread
    # may then take the object: the first block's end must leave that thread's lease alone.
    lock = zklock.Lock(zk_client, f"{zk_path}/blocks")
    b_holds, b_may_go = threading.Event(), threading.Event()
    b_leases: list[zklock.Lease] = []

    def b_works() -> None:
        with lock as lease:
            b_leases.append(lease)
            b_holds.set()
            b_may_go.wait(10)

    with lock as a_lease:
        releaser = threading.Thread(target=lock.release)  # let go elsewhere, mid-block
        releaser.start()
        releaser.join(10)
        b = threading.Thread(target=b_works)
        b.start()
        assert b_holds.wait(10)
    assert a_lease.state is zklock.LeaseState.RELEASED
    assert b_leases[0].state is zklock.LeaseState.HELD and lock.locked()  # untouched
    b_may_go.set()
    b.join(10)
    assert not b.is_alive() and not lock.locked()
    assert b_leases[0].state is zklock.LeaseState.RELEASED
    assert zk_client.get_children(f"{zk_path}/blocks") == []


def test_with_blocks_that_end_on_another_thread_than_they_began_leave_the_lock_free(
    zk_client, zk_path
):
    # A context manager run by a thread pool (a web framework's dependency with ``yield``)
    # may enter on one thread and exit on another.  The first block's entry, left behind on
    # the thread it began on, must not stand in for a later block that thread ends.
    from concurrent.futures import ThreadPoolExecutor

    path = f"{zk_path}/pooled"
    lock = zklock.Lock(zk_client, path)
    with ThreadPoolExecutor(1) as t1, ThreadPoolExecutor(1) as t2:
        first = t1.submit(lock.__enter__).result(10)
        t2.submit(lock.__exit__, None, None, None).result(10)
        assert first.state is zklock.LeaseState.RELEASED and not lock.locked()
        second = t2.submit(lock.__enter__).result(10)
        t1.submit(lock.__exit__, None, None, None).result(10)  # t1 still has the first's entry
        assert second.state is zklock.LeaseState.RELEASED, second
        assert not lock.locked()
        third = t1.submit(lock.acquire, True, 5).result(10)
        assert third
        t1.submit(lock.release).result(10)
    assert zk_client.get_children(path) == []


def test_a_block_let_go_of_elsewhere_may_end_on_another_thread_and_leaves_later_blocks_whole(
    zk_client, zk_path
):
    # A block's lease released from elsewhere (a listener on SUSPENDED, say), and the block
    # then ended on another thread: that end is quiet, as on its own thread, and the entry
    # left behind on the first thread must not stand in for a later block it ends.
    from concurrent.futures import ThreadPoolExecutor

    path = f"{zk_path}/let-go-pooled"
    lock = zklock.Lock(zk_client, path)
    with ThreadPoolExecutor(1) as t1, ThreadPoolExecutor(1) as t2, ThreadPoolExecutor(1) as t3:
        first = t1.submit(lock.__enter__).result(10)
        lock.release()  # let go of elsewhere, mid-block
        t2.submit(lock.__exit__, None, None, None).result(10)  # quiet, not NotHeld
        assert first.state is zklock.LeaseState.RELEASED
        second = t3.submit(lock.__enter__).result(10)
        t1.submit(lock.__exit__, None, None, None).result(10)  # t1 still has the first's entry
        assert second.state is zklock.LeaseState.RELEASED, second
        assert not lock.locked()
    assert zk_client.get_children(path) == []


def test_a_block_let_go_of_elsewhere_ending_on_another_thread_never_ends_a_running_block(
    zk_client, zk_path
):
    # Block A's lease let go of elsewhere, block C then entered on its own thread, and A
    # ended on a third thread: which block ends cannot be told, and it must not be taken
    # for C, whose body still runs (its lease released, another process would get in).
    from concurrent.futures import ThreadPoolExecutor

    path = f"{zk_path}/running-block"
    lock = zklock.Lock(zk_client, path)
    with ThreadPoolExecutor(1) as t1, ThreadPoolExecutor(1) as t2, ThreadPoolExecutor(1) as t3:
        block_a = t1.submit(lock.__enter__).result(10)
        lock.release()  # let go of elsewhere, mid-block
        block_c = t2.submit(lock.__enter__).result(10)
        t3.submit(lock.__exit__, None, None, None).result(10)  # A's end, on another thread
        assert block_a.state is zklock.LeaseState.RELEASED
        assert block_c.state is zklock.LeaseState.HELD, block_c
        assert lock.locked() and len(zk_client.get_children(path)) == 1
        t2.submit(lock.__exit__, None, None, None).result(10)  # C's own end
        assert block_c.state is zklock.LeaseState.RELEASED
        assert not lock.locked()
    assert zk_client.get_children(path) == []


def test_an_acquire_in_a_kazoo_callback_is_refused_not_left_to_hang(zk_client, zk_path):
    # On kazoo's callback thread, the create's answer would be handed over by that very
    # thread (under kazoo's own handler): the acquire would wait out its request timeout.
    lock = zklock.Lock(zk_client, f"{zk_path}/in-callback")
    trigger = f"{zk_path}/trigger"
    outcome: list[object] = []
    done = threading.Event()

    def on_event(_event: object) -> None:
        try:
            outcome.append(lock.acquire(timeout=5))
        except zklock.UsageError as error:
            outcome.append(error)
        done.set()

    zk_client.exists(trigger, watch=on_event)
    zk_client.create(trigger, makepath=True)
    assert done.wait(10)
    assert isinstance(outcome[0], zklock.UsageError) and "kazoo's threads" in str(outcome[0])
    assert not lock.locked()
    zk_client.delete(trigger)


def test_contenders_refuses_a_zero_timeout_and_takes_minus_one_as_the_request_timeout(
    zk_client, zk_path
):
    lock = zklock.Lock(zk_client, f"{zk_path}/listed", "me")
    with lock:
        with pytest.raises(zklock.InvalidTimeout, match="contenders"):
            lock.contenders(timeout=0)
        for unbounded in (None, -1, float("inf")):
            assert [c.identifier for c in lock.contenders(timeout=unbounded)] == ["me"]


@pytest.mark.parametrize("below", ["", "/inner"])
def test_a_lock_path_at_or_under_an_ephemeral_node_gets_a_typed_error(zk_client, zk_path, below):
    ephemeral = f"{zk_path}/ephemeral"
    zk_client.create(ephemeral, ephemeral=True, makepath=True)
    with pytest.raises(zklock.InvalidPath, match="or one of its parents is an ephemeral node"):
        zklock.Lock(zk_client, f"{ephemeral}{below}").acquire(timeout=10)
    assert zk_client.get_children(ephemeral) == []
    zk_client.delete(ephemeral)
