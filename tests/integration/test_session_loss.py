"""Session loss, fencing tokens and retries, against a real ZooKeeper (issue: session loss).

Timings printed by these tests are measured figures (run pytest with -s to see them).
"""

from __future__ import annotations

import json
import logging
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from _threads import acquire_in_a_thread
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from kazoo.handlers.threading import SequentialThreadingHandler
from kazoo.protocol.states import KazooState
from tenacity import stop_after_attempt, wait_fixed

import zklock
from zklock._kinds import ExclusiveKind
from zklock._session import SessionWatcher
from zklock.testing import (
    KazooClientFactory,
    KazooTraffic,
    TcpProxy,
    ZooKeeperEnsemble,
    expire_session,
    expire_session_id,
    wait_until,
)

WORKERS = Path(__file__).parent / "workers"


def _read_json_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> dict:
    """The child's next JSON line, or a test failure after ``timeout`` (never a hang)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no line from the child within {timeout} s"
    line = proc.stdout.readline()
    assert line, "the child closed its output"
    return json.loads(line)


def _kill_and_reap(procs: list[subprocess.Popen[str]]) -> None:
    """Kill the workers still running (SIGKILL ends a stopped one too), reap all of them."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


class StateLog:
    """A lease listener recording (state, monotonic time)."""

    def __init__(self) -> None:
        self.seen: list[tuple[zklock.LeaseState, float]] = []

    def __call__(self, lease: zklock.Lease, state: zklock.LeaseState) -> None:
        self.seen.append((state, time.monotonic()))

    def states(self) -> list[zklock.LeaseState]:
        return [state for state, _ in self.seen]

    def first(self, state: zklock.LeaseState) -> float:
        return next(at for seen, at in self.seen if seen is state)


class GrantWatch:
    """A waiter acquiring in a thread of its own, noting when it got the lock and the state
    the holder's lease was in at that moment."""

    def __init__(self, waiter: zklock.Lock, holder_lease: zklock.Lease) -> None:
        self._seen: list[object] = []

        def wait_for_the_lock() -> None:
            if waiter.acquire(timeout=30):
                self._seen.extend([time.monotonic(), holder_lease.state])

        self._thread = threading.Thread(target=wait_for_the_lock)
        self._thread.start()

    def assert_holder_lost_first(self, log: StateLog, fault_at: float, fault: str) -> None:
        """The waiter got the lock, after the holder's lease was LOST (as ``log`` heard it)."""
        self._thread.join(40)
        assert not self._thread.is_alive() and self._seen, "the waiter never got the lock"
        granted_at, holder_state = self._seen
        assert holder_state is zklock.LeaseState.LOST, (holder_state, log.seen, granted_at)
        lost_at = log.first(zklock.LeaseState.LOST)
        print(f"\nTIMING {fault}: holder LOST {lost_at - fault_at:.2f}s after it, "
              f"waiter granted {granted_at - fault_at:.2f}s after it")
        assert lost_at < granted_at


@pytest.fixture
def proxy(zookeeper):
    with TcpProxy(zookeeper.connect_string) as proxy:
        yield proxy


def test_server_side_expiry_while_holding(zk_client_factory, zk_path):
    path = f"{zk_path}/expiry"
    victim = zk_client_factory(timeout=4.0)
    log = StateLog()
    lock = zklock.Lock(victim, path, listener=log)
    other = zklock.Lock(zk_client_factory(), path)
    with pytest.raises(zklock.LockLost):
        with lock as lease:
            expired_at = time.monotonic()
            expire_session(victim)
            assert lease.lost.wait(10)
            lost_at = time.monotonic()
            assert lease.state is zklock.LeaseState.LOST and not lease.valid
            with pytest.raises(zklock.LockLost):
                lease.check()
            assert not lock.locked()
            assert other.acquire(timeout=10)
            other_at = time.monotonic()
    assert log.states()[-1] is zklock.LeaseState.LOST
    print(f"\nTIMING expiry->lost event {lost_at - expired_at:.3f}s, "
          f"listener {log.first(zklock.LeaseState.LOST) - expired_at:.3f}s, "
          f"other acquired {other_at - expired_at:.3f}s")
    other.release()


def test_short_connection_drop_suspends_then_restores(zk_client_factory, zk_path, proxy):
    client = zk_client_factory(hosts=proxy.connect_string, timeout=6.0)
    log = StateLog()
    lock = zklock.Lock(client, f"{zk_path}/drop", listener=log)
    with lock as lease:
        session = client.client_id[0]
        proxy.drop()
        assert wait_until(lambda: zklock.LeaseState.SUSPENDED in log.states(), 5)
        assert wait_until(lambda: log.states()[-1:] == [zklock.LeaseState.HELD], 10)
        assert client.client_id[0] == session
        assert lease.valid
        _data, stat = client.get(lease.node)
        assert stat.ephemeralOwner == session
    assert log.states() == [
        zklock.LeaseState.SUSPENDED, zklock.LeaseState.HELD, zklock.LeaseState.RELEASED
    ]


def test_a_lease_in_doubt_says_so_on_check_until_the_connection_is_back(
    zk_client_factory, zk_path, proxy
):
    client = zk_client_factory(hosts=proxy.connect_string, timeout=6.0)
    log = StateLog()
    lock = zklock.Lock(client, f"{zk_path}/in-doubt", listener=log)
    with lock as lease:
        lease.check()  # held: nothing to say
        proxy.blackhole()  # no reconnect either, until healed
        proxy.drop()
        try:
            assert wait_until(lambda: zklock.LeaseState.SUSPENDED in log.states(), 5)
            with pytest.raises(zklock.LockInDoubt):
                lease.check()
            assert lock.locked() and not lease.valid
        finally:
            proxy.heal()
        assert wait_until(lambda: log.states()[-1:] == [zklock.LeaseState.HELD], 10)
        lease.check()
    with pytest.raises(zklock.NotHeld):
        lease.check()


def test_a_listener_may_let_go_on_suspended_without_stalling_kazoos_thread(
    zk_client_factory, zk_path, proxy
):
    # Curator's habit: stop and release when the lock is in doubt.  The listener runs on
    # kazoo's connection thread, which must read the delete's answer and reconnect: release()
    # there returns at once (the node is deleted once reconnected), and an acquire() there,
    # which would wait for itself, is refused.  Before, the release stalled that thread until
    # the lease was LOST and raised LockLost, though the session lived on.
    client = zk_client_factory(hosts=proxy.connect_string, timeout=6.0)
    path = f"{zk_path}/let-go"
    seen: list[object] = []

    def let_go(lease: zklock.Lease, state: zklock.LeaseState) -> None:
        seen.append(state)
        if state is zklock.LeaseState.SUSPENDED:
            began = time.monotonic()
            lock.release()
            seen.append(time.monotonic() - began)
            try:
                lock.acquire(timeout=5)
            except zklock.UsageError as error:
                seen.append(error)

    lock = zklock.Lock(client, path, listener=let_go)
    assert lock.acquire(timeout=10)
    session = client.client_id[0]
    proxy.drop()
    assert wait_until(lambda: zklock.LeaseState.RELEASED in seen, 10), seen
    suspended, took, refused, released = seen
    assert suspended is zklock.LeaseState.SUSPENDED and released is zklock.LeaseState.RELEASED
    assert isinstance(took, float) and took < 1.0, seen
    assert isinstance(refused, zklock.UsageError) and "kazoo's threads" in str(refused)
    assert not lock.locked()
    assert wait_until(lambda: client.connected and client.client_id[0] == session, 10)
    assert wait_until(lambda: client.get_children(path) == [], 10)  # deleted after the reconnect
    assert lock.acquire(timeout=10)  # from an ordinary thread, as before
    lock.release()


def test_a_reconnect_that_finds_the_node_deleted_turns_the_lease_lost(
    zk_client_factory, zk_path, proxy
):
    # docs/session-loss.md, "Reconnected, same session": the held node is read back, and a
    # node deleted while the holder was cut off makes the lease LOST, though the session lives.
    session_timeout = 10.0  # the cut must stay well inside the local LOST bound (0.9 x T)
    holder_client = zk_client_factory(hosts=proxy.connect_string, timeout=session_timeout)
    operator = zk_client_factory()
    log = StateLog()
    lock = zklock.Lock(holder_client, f"{zk_path}/deleted-while-away", listener=log)
    assert lock.acquire(timeout=10)
    lease = lock.lease
    session = holder_client.client_id[0]
    proxy.blackhole()  # reconnect attempts are held, not forwarded
    proxy.drop()  # the connection closes: kazoo knows at once, no heartbeat gets through
    try:
        assert wait_until(lambda: log.states() == [zklock.LeaseState.SUSPENDED], session_timeout)
        operator.delete(lease.node)  # an operator "frees" the lock meanwhile
    finally:
        proxy.heal()
    assert lease.lost.wait(session_timeout)
    # ``lost`` is set just before the listeners are called: wait for the listener's record.
    assert wait_until(lambda: zklock.LeaseState.LOST in log.states(), 5), log.states()
    assert log.states() == [zklock.LeaseState.SUSPENDED, zklock.LeaseState.LOST]
    assert lease.reason == "lock node was deleted"  # the reconnect's read-back said so
    assert holder_client.client_id[0] == session  # on the same session, not a new one
    assert holder_client.state == KazooState.CONNECTED
    with pytest.raises(zklock.LockLost):
        lock.release()


def test_partition_longer_than_session_holder_hears_first(zk_client_factory, zk_path, proxy):
    path = f"{zk_path}/partition"
    holder_client = zk_client_factory(hosts=proxy.connect_string, timeout=2.0)
    log = StateLog()
    holder = zklock.Lock(holder_client, path, listener=log)
    other = zklock.Lock(zk_client_factory(), path)
    assert holder.acquire()
    lease = holder.lease
    cut_at = time.monotonic()
    proxy.blackhole()
    assert other.acquire(timeout=20)
    other_at = time.monotonic()
    assert lease.lost.is_set()
    lost_at = log.first(zklock.LeaseState.LOST)
    print(f"\nTIMING partition: holder declared LOST after {lost_at - cut_at:.3f}s, "
          f"other acquired after {other_at - cut_at:.3f}s (margin {other_at - lost_at:.3f}s)")
    assert lost_at < other_at
    proxy.heal()
    with pytest.raises(zklock.LockLost):
        holder.release()
    other.release()
    assert wait_until(lambda: holder_client.state == KazooState.CONNECTED, 15)


def test_a_lost_listener_on_the_watchdog_may_not_wait_there_for_another_lock(
    zk_client_factory, zk_path, proxy
):
    # The watchdog declares the loss when the connection stays silent past the bound, and
    # tells the lease's listeners on its own thread: an acquire() there would stall its watch
    # over every other lease of the session, and is refused.
    client = zk_client_factory(hosts=proxy.connect_string, timeout=2.0)
    observer = zk_client_factory()
    again = zklock.Lock(client, f"{zk_path}/again")
    heard: list[tuple[str, object]] = []

    def take_another(lease: zklock.Lease, state: zklock.LeaseState) -> None:
        if state is zklock.LeaseState.LOST:
            try:
                outcome: object = again.acquire(timeout=1)
            except zklock.UsageError as refused:
                outcome = refused
            heard.append((threading.current_thread().name, outcome))

    lock = zklock.Lock(client, f"{zk_path}/watched", listener=take_another)
    assert lock.acquire(timeout=10)
    proxy.blackhole()
    try:
        assert wait_until(lambda: heard, 15)  # nobody reads the lease's state meanwhile
    finally:
        proxy.heal()
    ((thread, outcome),) = heard
    assert thread.startswith("zklock-watchdog"), thread
    assert isinstance(outcome, zklock.UsageError) and "watchdog" in str(outcome), outcome
    with pytest.raises(zklock.LockLost):
        lock.release()
    # Lost by the local bound, the session may yet live: its node goes with the delete queued
    # for the reconnect, or with the session's expiry.
    assert wait_until(lambda: observer.get_children(f"{zk_path}/watched") == [], 20)


def test_sigstopped_holder_knows_on_waking(zookeeper, zk_client_factory, zk_path):
    path = f"{zk_path}/frozen"
    session_timeout = 2.0
    child = subprocess.Popen(
        [sys.executable, str(WORKERS / "hold_then_freeze.py"), zookeeper.connect_string, path,
         str(session_timeout)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        held = _read_json_line(child)
        child.send_signal(signal.SIGSTOP)
        other = zklock.Lock(zk_client_factory(), path, identifier="other")
        assert other.acquire(timeout=20)  # the frozen holder's session expired
        assert other.lease.token > held["held"]
        child.send_signal(signal.SIGCONT)
        report = _read_json_line(child)
        # The other session got the lock, so the server expired the frozen one: it heard
        # nothing from it for the session timeout, counted from a request sent no earlier
        # than the holder's last contact.  More than 0.9 x T has passed on the holder's clock,
        # and its very first look says LOST (docs/session-loss.md), never merely in doubt.
        assert report["state"] == zklock.LeaseState.LOST.value, report
        assert report["valid"] is False, report
        assert report["check"] == "LockLost", report
        assert other.lease.valid  # the other process holds it all along
        other.release()
        assert child.wait(timeout=20) == 0
    finally:
        _kill_and_reap([child])


@pytest.mark.ensemble
def test_leader_killed_while_holding_the_lease_survives(zookeeper_ensemble):
    # Every server drops its clients when the leader goes (a follower without a leader stops
    # serving): the lease is in doubt until the client is back on its session, then HELD.
    ensemble = zookeeper_ensemble
    factory = KazooClientFactory(ensemble.connect_string)  # ZKLOCK_TEST_HANDLER applies
    path = f"/zklock-test/leader-kill-{uuid.uuid4().hex[:8]}"
    try:
        client = factory(timeout=15.0)
        log = StateLog()
        lock = zklock.Lock(client, path, listener=log)
        assert lock.acquire(timeout=10)
        lease = lock.lease
        session = client.client_id[0]
        leader = ensemble.leader()
        ensemble.kill(leader)
        try:
            assert wait_until(lambda: zklock.LeaseState.SUSPENDED in log.states(), 30)
            assert wait_until(lambda: client.state == KazooState.CONNECTED
                             and lease.state is zklock.LeaseState.HELD, 30)
            assert client.client_id[0] == session
            lease.check()
            _data, stat = client.get(lease.node)
            assert stat.ephemeralOwner == session
            lock.release()
        finally:
            ensemble.start(leader)
        states = log.states()
        assert states[0] is zklock.LeaseState.SUSPENDED, states
        assert states[-2:] == [zklock.LeaseState.HELD, zklock.LeaseState.RELEASED], states
        assert zklock.LeaseState.LOST not in states, states
    finally:
        try:
            # A client of its own: the test's may be the one cut off, and a failed delete
            # must not keep the clients from being closed.
            cleaner = factory(timeout=15.0)
            cleaner.retry(cleaner.delete, path, recursive=True)
        except NoNodeError:
            pass
        finally:
            factory.close_all()


def _a_follower_to_cut_off(
    ensemble: ZooKeeperEnsemble,
) -> tuple[Callable[[], None], KazooClientFactory, KazooClientFactory]:
    """A follower that can be cut off from the other servers while its clients reach it.

    Returns the cut (taking the follower off the ensemble's network), client factories for
    the follower (reached over Docker's default bridge, which the cut leaves in place) and
    for the leader.
    """
    follower = ensemble.followers()[0]
    container = ensemble.nodes[follower].get_wrapped_container()
    (peers,) = container.attrs["NetworkSettings"]["Networks"]  # the ensemble's only
    container.client.networks.get("bridge").connect(container)
    container.reload()
    ip = container.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    on_follower = KazooClientFactory(f"{ip}:2181")  # ZKLOCK_TEST_HANDLER applies
    leader_host, leader_port = ensemble.address(ensemble.leader())
    on_leader = KazooClientFactory(f"{leader_host}:{leader_port}")
    return (lambda: container.client.networks.get(peers).disconnect(container)), on_follower, on_leader


@pytest.mark.ensemble
def test_a_holder_on_a_follower_cut_off_from_the_leader_is_lost_before_another_is_granted():
    # Only the leader expires sessions; a follower cut off from it goes on answering its
    # clients' reads and pings for syncLimit x tickTime (25 x 0.2 s here), longer than the
    # holder's session timeout.  The holder's heartbeat goes through the leader (a sync), so
    # its local bound runs from before the cut and it hears LOST before the leader, having
    # expired its session, lets the waiter (on the leader) have the lock.  A dedicated
    # ensemble: the cut is made by taking the follower off the ensemble's network, and its
    # clients reach it on Docker's default bridge meanwhile.
    with ZooKeeperEnsemble(3, sync_limit=25) as ensemble:
        cut_off, on_follower, on_leader = _a_follower_to_cut_off(ensemble)
        path = f"/zklock-test/cut-off-{uuid.uuid4().hex[:8]}"
        try:
            log = StateLog()
            holder_client = on_follower(timeout=3.0)
            holder = zklock.Lock(holder_client, path, "holder", listener=log)
            assert holder.acquire(timeout=10)
            waiter = zklock.Lock(on_leader(timeout=10.0), path, "waiter")
            grant = GrantWatch(waiter, holder.lease)
            assert wait_until(lambda: len(waiter.contenders()) == 2, 10)
            time.sleep(1.0)  # a few heartbeats answered through the leader first
            cut_off()
            grant.assert_holder_lost_first(log, time.monotonic(), "follower cut off")
            waiter.release()
        finally:
            on_follower.close_all()
            on_leader.close_all()


@pytest.mark.ensemble
def test_a_follower_frozen_right_after_a_holders_create_cannot_give_the_holder_extra_time():
    # The leader hears of a follower's clients only in the follower's answers to its pings,
    # every half tick (0.5 s here).  The holder's create is answered, and its follower frozen
    # before its next report: the leader's last word of the session is then the holder's
    # request before the create, 2.2 s earlier (kazoo pings an idle connection only every
    # T / 3 = 2.67 s, less up to 0.4 s of jitter).  Counted from the create, the holder's
    # lease would stay valid about a second into the waiter's turn.
    with ZooKeeperEnsemble(3, tick_time=1000) as ensemble:
        follower = ensemble.followers()[0]
        follower_host, follower_port = ensemble.address(follower)
        on_follower = KazooClientFactory(f"{follower_host}:{follower_port}")
        leader_host, leader_port = ensemble.address(ensemble.leader())
        on_leader = KazooClientFactory(f"{leader_host}:{leader_port}")
        path = f"/zklock-test/frozen-{uuid.uuid4().hex[:8]}"
        frozen = False
        try:
            on_leader(timeout=10.0).ensure_path(path)
            log = StateLog()
            holder = zklock.Lock(on_follower(timeout=8.0), path, "holder", listener=log)
            waiter = zklock.Lock(on_leader(timeout=10.0), path, "waiter")
            assert holder.contenders() == []  # the holder's last request before its create
            time.sleep(2.2)
            assert holder.acquire(timeout=5)
            ensemble.pause(follower, wait=False)  # well within the half tick, mostly
            frozen_at = time.monotonic()
            frozen = True
            grant = GrantWatch(waiter, holder.lease)
            grant.assert_holder_lost_first(log, frozen_at, "follower frozen after a create")
            waiter.release()
        finally:
            if frozen:
                ensemble.unpause(follower, wait=False)
            on_follower.close_all()
            on_leader.close_all()


def _listen_ahead_of_zklock(client: KazooClient, listener_for: Callable[[], Callable]) -> None:
    """Add a state listener that kazoo calls before zklock's own.

    kazoo keeps its listeners in a set and calls them in the set's order, which follows the
    objects' hashes: new listeners are made until one lands ahead of zklock's (the ones
    that did not are kept alive meanwhile, so that no new one takes a freed one's place).
    """
    rejected = []
    for _ in range(1000):
        listener = listener_for()
        client.add_listener(listener)
        order = list(client.state_listeners)
        zklocks = [i for i, known in enumerate(order)
                   if isinstance(getattr(known, "__self__", None), SessionWatcher)]
        assert len(zklocks) == 1, order
        if order.index(listener) < zklocks[0]:
            return
        client.remove_listener(listener)
        rejected.append(listener)
    raise AssertionError("no listener landed ahead of zklock's")


@pytest.mark.ensemble
def test_a_reconnect_through_a_follower_answered_late_cannot_give_the_holder_extra_time():
    # The leader touches a session when it validates the session's reconnect; the answer that
    # says CONNECTED can reach zklock much later.  Here a state listener that kazoo calls
    # before zklock's holds CONNECTED back, and cuts the follower off the ensemble at once,
    # so the leader hears nothing more of the session.  Counted from when zklock heard
    # CONNECTED, the holder's lease would stay valid into the waiter's turn (with the credit
    # so given, the waiter got the lock 16.85 s after CONNECTED while the holder's lease was
    # HELD, on either handler); counted from when zklock heard the connection drop, before
    # the reconnect was asked for, it is LOST first.  The sizes: held back longer than the
    # bound's margin (0.1 T) plus a tick, the leader's rounding of expiry times, and shorter
    # than what is left of the bound at the drop (the credited contact trails the clock),
    # hence a long session timeout.
    stall = 4.0
    with ZooKeeperEnsemble(3, tick_time=1000, sync_limit=25) as ensemble:
        cut_off, on_follower, on_leader = _a_follower_to_cut_off(ensemble)
        path = f"/zklock-test/late-reconnect-{uuid.uuid4().hex[:8]}"
        armed = threading.Event()
        connected_at: list[float] = []

        def stalling_listener() -> Callable[[str], None]:
            def hold_back_connected(state: str) -> None:
                if state == KazooState.CONNECTED and armed.is_set():
                    armed.clear()
                    connected_at.append(time.monotonic())
                    cut_off()
                    time.sleep(max(0.0, connected_at[0] + stall - time.monotonic()))
            return hold_back_connected

        try:
            log = StateLog()
            holder_client = on_follower(timeout=16.0)
            holder = zklock.Lock(holder_client, path, "holder", listener=log)
            assert holder.acquire(timeout=10)
            _listen_ahead_of_zklock(holder_client, stalling_listener)
            waiter = zklock.Lock(on_leader(timeout=10.0), path, "waiter")
            grant = GrantWatch(waiter, holder.lease)
            assert wait_until(lambda: len(waiter.contenders()) == 2, 10)
            time.sleep(1.0)  # a few heartbeats answered through the leader first
            armed.set()
            holder_client._connection._socket.shutdown(socket.SHUT_RDWR)  # as a TCP reset would
            assert wait_until(lambda: bool(connected_at), 20), "the holder never reconnected"
            grant.assert_holder_lost_first(log, connected_at[0], "CONNECTED held back 4 s")
            assert zklock.LeaseState.SUSPENDED in log.states()
            waiter.release()
        finally:
            on_follower.close_all()
            on_leader.close_all()


def test_tokens_strictly_increase_across_processes_and_parent_recreation(
    zookeeper, zk_client, zk_path
):
    path = f"{zk_path}/tokens/lock"
    counter = f"{zk_path}-tokens-counter"
    zk_client.create(counter, b"0", makepath=True)
    sections = []
    procs: list[subprocess.Popen[str]] = []  # every worker started, of both phases
    try:
        for phase in range(2):
            phase_procs = []
            for i in range(4):
                phase_procs.append(subprocess.Popen(
                    [sys.executable, str(WORKERS / "contend.py"), zookeeper.connect_string, path,
                     counter, "125", f"p{phase}-{i}"],
                    stdout=subprocess.PIPE, text=True,
                ))
                procs.append(phase_procs[-1])
            for proc in phase_procs:
                out, _ = proc.communicate(timeout=180)
                assert proc.returncode == 0
                sections += [json.loads(line) for line in out.splitlines()]
            zk_client.delete(f"{zk_path}/tokens", recursive=True)  # parent gone: counter restarts
    finally:
        _kill_and_reap(procs)  # a failed worker or a timeout must not leave the others running
        zk_client.delete(counter)
    assert len(sections) == 1000
    sections.sort(key=lambda s: s["enter"])
    tokens = [s["token"] for s in sections]
    assert all(a < b for a, b in zip(tokens, tokens[1:]))


def test_connection_loss_during_create_leaks_nothing(zk_client_factory, zk_path, proxy):
    path = f"{zk_path}/create-loss"
    logger = _own_logger()
    client = zk_client_factory(hosts=proxy.connect_string, timeout=6.0, logger=logger)
    observer = zk_client_factory()
    lock = zklock.Lock(client, path, retry=zklock.RetryPolicy(request_timeout=0.5))
    observer.ensure_path(path)
    proxy.blackhole()
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(lock.acquire(timeout=15)))
    with KazooTraffic.recording(logger) as traffic:
        thread.start()
        # The create is on its way into the void (else the drop would come first, and the
        # acquire would meet no lost create at all).
        assert wait_until(lambda: "Create2" in traffic.sent(), 10)
    proxy.drop()
    proxy.heal()
    thread.join(20)
    assert got == [True]
    assert len(observer.get_children(path)) == 1  # exactly one node: no leak, no double
    lock.release()
    assert wait_until(lambda: observer.get_children(path) == [], 5)


def test_a_deadline_that_passes_before_zookeeper_answers_is_a_timeout_not_a_lost_connection(
    zk_client_factory, zk_path, proxy
):
    path = f"{zk_path}/slow"
    client = zk_client_factory(hosts=proxy.connect_string, timeout=6.0)
    observer = zk_client_factory()
    observer.ensure_path(path)
    lock = zklock.Lock(client, path)  # requests may go unanswered for the session's 6 s
    one_try = zklock.Lock(client, path, retry=zklock.RetryPolicy(request_timeout=0.5))
    proxy.blackhole()  # a server slower than the deadline looks the same from here
    try:
        assert lock.acquire(timeout=0.5) is False  # as threading.Lock: the time ran out
        with pytest.raises(zklock.LockTimeout):
            with lock.hold(timeout=0.5):
                pytest.fail("held without an answer")
        # One try's bound is the request timeout: no answer in it is a lost connection.
        with pytest.raises(zklock.ConnectionLost) as lost:
            one_try.acquire(blocking=False)
        assert type(lost.value) is zklock.ConnectionLost  # no private class in the caller's face
        with pytest.raises(zklock.ConnectionLost) as lost:
            lock.contenders(timeout=0.5)
        assert type(lost.value) is zklock.ConnectionLost
        # A cancel that lands while the request is unanswered wins over the deadline.
        waiting, outcome = acquire_in_a_thread(lock, timeout=1.0)
        time.sleep(0.3)  # its create is on its way into the void
        # cancel() reaches acquires under way, not one yet to start (a thread started late on a
        # busy machine): cancel until one lands.
        assert wait_until(lambda: lock.cancel() or outcome, 5)
        waiting.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], zklock.AcquireCancelled), outcome
    finally:
        proxy.heal()
    assert not lock.locked() and not one_try.locked()
    # The creates held by the partition run now; their late replies get them deleted.
    watcher = SessionWatcher.of(client)
    assert wait_until(lambda: client.state == KazooState.CONNECTED, 15)
    assert wait_until(lambda: watcher.pending_deletes() == [] and observer.get_children(path) == [], 10)
    assert lock.acquire(timeout=5)
    lock.release()


@pytest.mark.parametrize(
    "session_timeout",
    [
        # kazoo's read timeout (2/3 T = 1 s) ends the connection within the deadline: the
        # create fails with a real connection loss, and the default policy tries again.
        1.5,
        # The request timeout (T = 6 s) outlives the deadline: nothing fails before it.
        6.0,
    ],
    ids=["loss-noticed-before-the-deadline", "request-outlives-the-deadline"],
)
def test_the_default_policy_ends_an_acquire_cut_off_from_zookeeper_at_its_deadline(
    zk_client_factory, zk_path, proxy, session_timeout
):
    path = f"{zk_path}/cut-off"
    client = zk_client_factory(hosts=proxy.connect_string, timeout=session_timeout)
    observer = zk_client_factory()
    observer.ensure_path(path)
    lock = zklock.Lock(client, path)  # the default policy: request timeout = session timeout
    assert zklock.RetryPolicy().request_timeout is None
    request_timeout = session_timeout
    timeout = 2.0
    proxy.blackhole()
    try:
        started = time.monotonic()
        try:
            outcome: object = lock.acquire(timeout=timeout)
        except zklock.ConnectionLost as error:  # a real loss, and no time left to retry it
            outcome = error
        elapsed = time.monotonic() - started
    finally:
        proxy.heal()
    print(f"\nTIMING cut off, acquire(timeout={timeout}) with T={session_timeout}: "
          f"{outcome!r} after {elapsed:.3f}s")
    assert outcome is False or isinstance(outcome, zklock.ConnectionLost), outcome
    if outcome is False:
        assert elapsed >= timeout  # False means the time ran out, not that it gave up early
    # No wait for a reply runs past the deadline (each is capped by what is left of it), so
    # the acquire ends well before even one more request timeout could have passed.
    assert elapsed < timeout + request_timeout / 4, elapsed
    assert not lock.locked()
    # Whatever the held requests did on the server once the partition healed is undone:
    # nodes of the same session are deleted by its cleanup queue, those of an expired
    # session went with it.
    watcher = SessionWatcher.of(client)
    assert wait_until(lambda: client.state == KazooState.CONNECTED, 15)
    assert wait_until(
        lambda: watcher.pending_deletes() == [] and observer.get_children(path) == [], 10
    )


def test_retry_policy_limits_are_honoured_and_nothing_leaks(zk_client_factory, zk_path, proxy):
    path = f"{zk_path}/limits"
    client = zk_client_factory(hosts=proxy.connect_string, timeout=6.0)
    observer = zk_client_factory()
    observer.ensure_path(path)
    policy = zklock.RetryPolicy(stop=stop_after_attempt(2), request_timeout=0.3)
    lock = zklock.Lock(client, path, retry=policy)
    proxy.blackhole()
    started = time.monotonic()
    with pytest.raises(zklock.ConnectionLost):
        lock.acquire(timeout=30)
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed  # two attempts of 0.3 s plus one short backoff, not 30 s
    assert not lock.locked()
    proxy.heal()
    # Whatever the blackholed creates did on the server is cleaned up after reconnecting:
    # the bytes held by the partition reach the server only now, so wait for the client to
    # be connected and its cleanup queue to drain before looking.
    watcher = SessionWatcher.of(client)
    assert wait_until(lambda: client.state == KazooState.CONNECTED, 15)
    assert wait_until(lambda: watcher.pending_deletes() == [], 10)
    assert observer.get_children(path) == []


def _kazoo_states(client: KazooClient) -> list[str]:
    """A list that records ``client``'s connection states from now on."""
    states: list[str] = []
    client.add_listener(states.append)
    return states


def test_a_waiter_granted_by_its_first_listing_after_a_reconnect_holds_without_doubt(
    zk_client_factory, zk_path, proxy
):
    # The waiter's connection drops; the holder releases meanwhile.  The drop wakes the waiter,
    # whose next listing goes out after the drop and is answered on the new connection: the
    # lease it grants is not in doubt, and must not be reported SUSPENDED.
    path = f"{zk_path}/relist"
    holder = zklock.Lock(zk_client_factory(), path, identifier="holder")
    assert holder.acquire()
    heard: list[zklock.LeaseState] = []
    waiter_client = zk_client_factory(hosts=proxy.connect_string, timeout=6.0)
    waiter = zklock.Lock(waiter_client, path, identifier="waiter",
                         listener=lambda _lease, state: heard.append(state))
    waiting, got = acquire_in_a_thread(waiter, timeout=20)
    try:
        assert wait_until(lambda: len(holder.contenders()) == 2)
        states = _kazoo_states(waiter_client)
        proxy.blackhole()
        holder.release()
        proxy.drop()
        proxy.heal()
        waiting.join(20)
        assert got == [True]
        assert KazooState.SUSPENDED in states and KazooState.LOST not in states
        assert waiter.lease is not None and waiter.lease.state is zklock.LeaseState.HELD
        assert heard == []  # no SUSPENDED then HELD for a grant made on the new connection
        waiter.release()
    finally:
        waiter.cancel()


def test_connection_drop_while_waiting(zk_client_factory, zk_path, proxy):
    # A waiter whose connection drops keeps its session, so it keeps its node and its place
    # in the queue: it gets the lock on that very node, before a contender queued behind it.
    path = f"{zk_path}/wait-loss"
    holder = zklock.Lock(zk_client_factory(), path, identifier="holder")
    assert holder.acquire()
    waiter_client = zk_client_factory(hosts=proxy.connect_string, timeout=6.0)
    waiter = zklock.Lock(waiter_client, path, identifier="waiter")
    waiting, waiter_got = acquire_in_a_thread(waiter, timeout=20)
    assert wait_until(lambda: len(holder.contenders()) == 2)
    queued = holder.contenders()
    assert [c.identifier for c in queued] == ["holder", "waiter"]
    waiter_node = queued[1].node
    third = zklock.Lock(zk_client_factory(), path, identifier="third")
    third_waiting, third_got = acquire_in_a_thread(third, timeout=30)
    try:
        assert wait_until(lambda: [c.identifier for c in holder.contenders()]
                          == ["holder", "waiter", "third"])
        states = _kazoo_states(waiter_client)
        assert proxy.drop() == 1
        # Back on its session: SUSPENDED, then CONNECTED again.
        assert wait_until(lambda: states[:1] == [KazooState.SUSPENDED]
                          and waiter_client.state == KazooState.CONNECTED, 10)
        assert KazooState.LOST not in states
        assert holder.contenders()[1].node == waiter_node
        holder.release()
        waiting.join(25)
        assert waiter_got == [True]
        assert waiter.lease.node == waiter_node  # the node it queued with before the drop
        # The third contender is still queued behind it.
        assert third_got == []
        assert [c.identifier for c in waiter.contenders()] == ["waiter", "third"]
        waiter.release()
        third_waiting.join(25)
        assert third_got == [True]
        third.release()
    finally:
        waiter.cancel()
        third.cancel()
        waiting.join(25)
        third_waiting.join(25)


def test_connection_loss_during_release(zk_client_factory, zk_path, proxy):
    path = f"{zk_path}/release-loss"
    client = zk_client_factory(hosts=proxy.connect_string, timeout=6.0)
    lock = zklock.Lock(client, path, retry=zklock.RetryPolicy(request_timeout=0.5))
    other = zklock.Lock(zk_client_factory(), path)
    assert lock.acquire()
    acquired_at = time.monotonic()
    lease = lock.lease
    # A fresh client's first answers vouch for less than T: only the first heartbeat (after
    # T / 5) moves the release's bound to 0.9 T past them, room for the partition below.
    assert wait_until(lambda: SessionWatcher.of(client).contact_deadline() > acquired_at + 4.5, 5)
    proxy.blackhole()
    done: list[BaseException | None] = []

    def release() -> None:
        try:
            lock.release()
            done.append(None)
        except BaseException as error:
            done.append(error)

    thread = threading.Thread(target=release)
    thread.start()
    time.sleep(1.0)
    assert not done  # still trying: the session may live
    assert other.acquire(blocking=False) is False  # and nobody else holds it meanwhile
    proxy.heal()
    thread.join(15)
    assert done == [None]
    assert lease.state is zklock.LeaseState.RELEASED
    assert other.acquire(timeout=5)
    other.release()


def test_waiter_whose_session_expires_queues_again_with_the_new_session(
    zk_client_factory, zk_path
):
    path = f"{zk_path}/waiter-expiry"
    holder = zklock.Lock(zk_client_factory(), path, identifier="holder")
    assert holder.acquire()
    waiter_client = zk_client_factory(timeout=4.0)
    waiter = zklock.Lock(waiter_client, path, identifier="waiter")
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(waiter.acquire(timeout=30)))
    thread.start()
    assert wait_until(lambda: len(holder.contenders()) == 2)
    old_session = waiter_client.client_id[0]
    assert expire_session(waiter_client)
    # The old node went with the old session; the waiter queues again with its new one.
    assert wait_until(
        lambda: [(c.identifier, c.session_id != old_session) for c in holder.contenders()]
        == [("holder", True), ("waiter", True)],
        15,
    )
    holder.release()
    thread.join(20)
    assert got == [True]
    assert waiter.lease.session_id == waiter_client.client_id[0] != old_session
    waiter.release()


def test_a_node_deleted_behind_the_holders_back_turns_the_lease_lost(zk_client_factory, zk_path):
    path = f"{zk_path}/deleted"
    holder_client = zk_client_factory(timeout=2.0)
    log = StateLog()
    lock = zklock.Lock(holder_client, path, listener=log)
    assert lock.acquire()
    lease = lock.lease
    deleted_at = time.monotonic()
    zk_client_factory().delete(lease.node)  # an operator "frees" the lock by hand
    # The watchdog checks each held node (sync + exists) about every T/5, on the lease's clock.
    assert lease.lost.wait(5)
    assert wait_until(lambda: zklock.LeaseState.LOST in log.states(), 5)  # the listener heard it
    print(f"\nTIMING node deleted -> lease LOST {log.first(zklock.LeaseState.LOST) - deleted_at:.3f}s")
    assert lease.reason == "lock node was deleted"
    with pytest.raises(zklock.LockLost):
        lock.release()



def test_a_node_deleted_behind_a_busy_holders_back_turns_the_lease_lost(zk_client_factory, zk_path):
    # Answers to the client's other requests keep its session's contact fresh but say nothing
    # of this node: the held node is checked on its own clock all the same.
    holder_client = zk_client_factory(timeout=2.0)
    lock = zklock.Lock(holder_client, f"{zk_path}/deleted")
    other = zklock.Lock(holder_client, f"{zk_path}/busy")
    assert lock.acquire()
    lease = lock.lease
    stop = threading.Event()

    def keep_the_client_busy() -> None:
        while not stop.is_set():
            with other:
                pass
            lock.contenders()
            stop.wait(0.05)

    busy = threading.Thread(target=keep_the_client_busy)
    busy.start()
    try:
        zk_client_factory().delete(lease.node)  # an operator "frees" the lock by hand
        assert lease.lost.wait(10), lease.state
    finally:
        stop.set()
        busy.join(10)
    assert lease.reason == "lock node was deleted"
    with pytest.raises(zklock.LockLost):
        lock.release()


def test_a_release_that_finds_its_node_deleted_raises_lock_lost(zk_client_factory, zk_path):
    # The release comes before the watchdog's check (about every T/5 = 3 s here): its own
    # delete meets NoNode, and the section it ended was not protected.
    holder_client = zk_client_factory(timeout=15.0)
    operator = zk_client_factory()  # connected first: the window before that check is short
    lock = zklock.Lock(holder_client, f"{zk_path}/deleted")
    assert lock.acquire()
    lease = lock.lease
    operator.delete(lease.node)  # an operator "frees" the lock by hand
    assert lease.state is zklock.LeaseState.HELD  # nobody has looked yet
    with pytest.raises(zklock.LockLost):
        lock.release()
    assert lease.state is zklock.LeaseState.LOST
    assert lease.reason == "lock node was already gone at release"


def test_a_session_that_expires_as_the_lock_is_granted_queues_again(
    zookeeper, zk_client_factory, zk_path
):
    # The session ends between the listing that says "you hold" and the lease: the node went
    # with it.  The acquire must queue again on the new session, not hand out a lease that
    # is LOST from its first instant.
    client = zk_client_factory(timeout=4.0)
    old_session, password = client.client_id
    expired: list[str] = []

    class ExpiringAtTheGrant(ExclusiveKind):
        def decide(self, queue, me):
            decision = super().decide(queue, me)
            if decision.holds and not expired:
                expired.append(me.name)
                expire_session_id(zookeeper.connect_string, old_session, password)
                watcher = SessionWatcher.of(client)
                assert wait_until(lambda: watcher.session_id not in (None, old_session), 15)
            return decision

    class ExpiringLock(zklock.Lock):
        kind = ExpiringAtTheGrant()

    lock = ExpiringLock(client, f"{zk_path}/grant-expiry")
    assert lock.acquire(timeout=20)
    lease = lock.lease
    new_session = client.client_id[0]
    assert expired and new_session != old_session
    assert lease.state is zklock.LeaseState.HELD, (lease.state, lease.reason)
    assert lease.session_id == new_session
    _data, stat = zk_client_factory().get(lease.node)
    assert stat.ephemeralOwner == new_session
    lock.release()


def _watchdogs(client: KazooClient) -> set[threading.Thread]:
    """The running watchdog threads of ``client``'s session (objects: an ident is reused)."""
    name = f"zklock-watchdog-0x{client.client_id[0]:x}"
    return {thread for thread in threading.enumerate() if thread.name == name}


def test_a_client_taking_locks_back_to_back_keeps_one_watchdog_thread(zk_client_factory, zk_path):
    # The watchdog lingers a moment after the last lease, so that a lock taken again reuses
    # it.  Back-to-back cycles hold nothing part of the time: two idle looks in a row must
    # not be taken for an idle client when leases came and went in between.  A 1 s session
    # makes the watchdog look every 0.2 s (T/5) while a lease is held.
    zk_client = zk_client_factory(timeout=1.0)
    lock = zklock.Lock(zk_client, f"{zk_path}/busy")
    seen: set[threading.Thread] = set()
    cycles = 0
    until = time.monotonic() + 2.0  # ten of the watchdog's looks
    while time.monotonic() < until:
        with lock:
            seen |= _watchdogs(zk_client)
        cycles += 1
    assert cycles > 20  # a few per look; many more on an idle machine
    assert len(seen) == 1, f"{len(seen)} watchdog threads over {cycles} lock cycles"
    # Idle for real: it still goes away.
    assert wait_until(lambda: not _watchdogs(zk_client), timeout=5)


def test_a_lost_create_on_a_lock_path_not_made_yet_still_acquires(
    zk_client_factory, zk_path, proxy
):
    # The first acquire of a new path loses its create's reply.  Looking for that create's
    # node then finds no lock path at all, which only means the create never ran.
    path = f"{zk_path}/create-loss-new-path"
    logger = _own_logger()
    client = zk_client_factory(hosts=proxy.connect_string, timeout=6.0, logger=logger)
    observer = zk_client_factory()
    lock = zklock.Lock(client, path, retry=zklock.RetryPolicy(request_timeout=0.5))
    proxy.blackhole()
    with KazooTraffic.recording(logger) as traffic:
        thread, outcome = acquire_in_a_thread(lock, timeout=15)
        assert wait_until(lambda: "Create2" in traffic.sent(), 10)  # on its way into the void
    proxy.drop()  # and is lost with the connection
    proxy.heal()
    thread.join(20)
    assert outcome == [True]
    assert observer.get_children(path) == [lock.lease.node.rsplit("/", 1)[1]]
    lock.release()
    assert wait_until(lambda: observer.get_children(path) == [], 5)


def _own_logger() -> logging.Logger:
    """A logger for one client alone, whose traffic KazooTraffic can record."""
    return logging.getLogger(f"zklock-test-session-loss.{uuid.uuid4().hex[:8]}")


class _Interrupted(BaseException):
    """Raised by a signal handler, as KeyboardInterrupt is."""


def test_an_interrupted_release_still_frees_the_lock(zk_client_factory, zk_path, proxy):
    path = f"{zk_path}/release-interrupted"
    client = zk_client_factory(hosts=proxy.connect_string, timeout=6.0)
    policy = zklock.RetryPolicy(request_timeout=0.5, wait=wait_fixed(3))
    lock = zklock.Lock(client, path, retry=policy)
    other = zklock.Lock(zk_client_factory(), path)
    assert lock.acquire()
    acquired_at = time.monotonic()
    lease = lock.lease
    # The first heartbeat (after T / 5) vouches for the acquire's answers, and the release's
    # bound becomes 0.9 T from them: room for the back-off below.
    assert wait_until(lambda: SessionWatcher.of(client).contact_deadline() > acquired_at + 5.0, 5)
    proxy.blackhole()  # the delete goes unanswered; the release backs off before retrying

    def interrupt(signum, frame):
        raise _Interrupted()

    previous = signal.signal(signal.SIGUSR1, interrupt)
    main = threading.main_thread().ident
    timer = threading.Timer(1.0, signal.pthread_kill, (main, signal.SIGUSR1))
    timer.start()
    try:
        with pytest.raises(_Interrupted):
            lock.release()  # interrupted in the back-off after the first delete timed out
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGUSR1, previous)
    assert lease.state is zklock.LeaseState.RELEASED
    assert "interrupted" in lease.reason
    assert not lock.locked()
    proxy.drop()  # the unanswered deletes are lost with the connection
    proxy.heal()
    # The session lives on, and its cleanup queue deletes the node after reconnecting.
    assert other.acquire(timeout=10)
    other.release()
    assert wait_until(lambda: SessionWatcher.of(client).pending_deletes() == [], 5)


def test_a_watch_reply_of_nonode_read_before_its_callback_lists_again(
    zk_client_factory, zk_path, proxy
):
    # On kazoo's stock handler the watch request's reply is handled on its completion thread.
    # Here that thread is kept busy, and the node ahead is deleted just before the watch is
    # sent, so the reply (NoNode) is in but unhandled when a connection blip wakes the waiter.
    path = f"{zk_path}/watch-nonode"
    holder = zklock.Lock(zk_client_factory(), path, identifier="holder")
    assert holder.acquire()
    waiter_client = zk_client_factory(
        hosts=proxy.connect_string, timeout=6.0, handler=SequentialThreadingHandler()
    )
    waiter = zklock.Lock(waiter_client, path, identifier="waiter")
    completions_free = threading.Event()
    waiter_client.handler.completion_queue.put(lambda: completions_free.wait(20))
    watches: list[object] = []
    real_get_async = waiter_client.get_async

    def get_async(node, watch=None):
        if watch is not None and not watches:
            holder.release()  # the node ahead goes just before the watch is set on it
        answer = real_get_async(node, watch=watch)
        if watch is not None:
            watches.append(answer)
        return answer

    waiter_client.get_async = get_async
    thread, outcome = acquire_in_a_thread(waiter, timeout=15)
    try:
        assert wait_until(lambda: watches and watches[0].ready(), 10)
        assert watches[0].exception is not None  # NoNode, its callback not run yet
        proxy.drop()  # the state change wakes the waiter
        thread.join(15)
    finally:
        completions_free.set()
    assert outcome == [True]
    waiter.release()
    del waiter_client.get_async


def test_the_contact_time_is_read_before_a_listing_is_sent(zk_client_factory, zk_path):
    # A freeze between sending a request and reading the clock must not make the reply look
    # newer than the server's view of the session.
    path = f"{zk_path}/contact"
    client = zk_client_factory()
    client.ensure_path(path)
    lock = zklock.Lock(client, path)
    watcher = SessionWatcher.of(client)
    real_get_children_async = client.get_children_async
    sent: list[float] = []

    def frozen_after_sending(*args, **kwargs):
        result = real_get_children_async(*args, **kwargs)
        sent.append(time.monotonic())
        time.sleep(0.3)
        return result

    client.get_children_async = frozen_after_sending
    try:
        assert lock.contenders() == []
    finally:
        del client.get_children_async
    assert len(sent) == 1
    (listed_sent_at, _answered, _first) = watcher._contact._unconfirmed[-1]
    assert listed_sent_at <= sent[0]  # read before the send, not 0.3 s after it


def test_an_acquire_interrupted_once_its_node_was_granted_leaves_no_node(
    zk_client, zk_path, monkeypatch
):
    # The node is ours, the lease not yet handed over (Ctrl-C at that moment, say): nobody
    # would ever release it, so the acquire deletes it on the way out.
    path = f"{zk_path}/granted-interrupted"
    lock = zklock.Lock(zk_client, path)

    def interrupted(self, lease, drops_before=None):
        raise _Interrupted()

    monkeypatch.setattr(SessionWatcher, "track", interrupted)
    with pytest.raises(_Interrupted):
        lock.acquire(timeout=5)
    monkeypatch.undo()
    assert not lock.locked()
    assert wait_until(lambda: zk_client.get_children(path) == [], 5)
    again = zklock.Lock(zk_client, path)
    assert again.acquire(timeout=5)  # nobody's ghost is ahead of it
    again.release()


@pytest.mark.parametrize("handler", ["stock", "lean"])
def test_a_reconnect_with_hundreds_of_leases_verifies_them_all_without_blocking_kazoo(
    handler, zk_client_factory, zk_path, proxy
):
    # After a reconnect with the same session each held node is read back, one request per
    # lease.  Sent from kazoo's state listener, on its connection thread, those requests
    # each rang kazoo's stock doorbell, a socket pair only that thread reads: past a few
    # hundred bytes the send blocked, and the thread with it, for good (no reply read, no
    # ping sent, every later request of the client stuck).  They are sent from the session
    # watchdog's thread instead.
    from zklock.handler import LeanHandler

    count = 400  # a socket pair holds fewer one-byte writes than this (278 here)
    client = zk_client_factory(
        hosts=proxy.connect_string, timeout=10.0,
        handler=SequentialThreadingHandler() if handler == "stock" else LeanHandler(),
    )
    locks = [zklock.Lock(client, f"{zk_path}/many/{index}") for index in range(count)]
    for lock in locks:
        assert lock.acquire(timeout=10)
    leases = [lock.lease for lock in locks]
    session = client.client_id[0]
    proxy.drop()
    try:
        assert wait_until(lambda: any(lease.state is zklock.LeaseState.SUSPENDED for lease in leases), 5)
        assert wait_until(
            lambda: all(lease.state is zklock.LeaseState.HELD for lease in leases), 8
        ), sorted({lease.state.value for lease in leases})
        assert client.client_id[0] == session  # the same session: read back, not lost
        other = zklock.Lock(client, f"{zk_path}/after")
        assert other.acquire(timeout=5)  # the client still answers
        other.release()
    finally:
        for lock in locks:
            if lock.locked():
                lock.release()


def test_a_listener_told_of_a_drop_during_the_acquire_may_release_the_lock(
    zk_client_factory, zk_path, proxy
):
    # The connection drops after the answer that grants the lock and before the lease is
    # tracked: the lease starts SUSPENDED (the grant may have come over the old connection).
    # The Lock's listener hears it once the Lock holds the lease, and may let go there, as
    # on any SUSPENDED.  Before, it heard it while the acquire was still handing the lease
    # over: its release() raised NotHeld (logged and swallowed), and the lock stayed held.
    client = zk_client_factory(hosts=proxy.connect_string, timeout=10.0)
    seen: list[zklock.LeaseState] = []

    def let_go(lease: zklock.Lease, state: zklock.LeaseState) -> None:
        seen.append(state)
        if state is zklock.LeaseState.SUSPENDED:
            lock.release()

    path = f"{zk_path}/dropped-at-grant"
    lock = zklock.Lock(client, path, listener=let_go)
    watcher = SessionWatcher.of(client)
    real_track = watcher.track

    def track_after_a_drop(lease: zklock.Lease, drops_before: int | None = None) -> None:
        proxy.drop()  # a real drop, between the grant and the lease's tracking
        assert wait_until(lambda: watcher.drops != drops_before, 5)
        real_track(lease, drops_before)

    watcher.track = track_after_a_drop  # type: ignore[method-assign]
    try:
        assert lock.acquire(timeout=15)  # granted; then let go by the listener
    finally:
        del watcher.track
    assert seen == [zklock.LeaseState.SUSPENDED, zklock.LeaseState.RELEASED], seen
    assert not lock.locked()
    assert wait_until(lambda: client.connected and client.get_children(path) == [], 10)
