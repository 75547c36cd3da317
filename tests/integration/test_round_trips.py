"""The requests issue 4 promises, read off what kazoo writes to and reads from the socket.

Each client gets a logger of its own, recorded by ``zklock.testing.KazooTraffic``: that
client's requests, replies, errors and watch events, in order, from kazoo's own log lines.
These tests count requests and check their order; they time nothing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
from kazoo.client import KazooClient

import zklock
from zklock.testing import KazooClientFactory, KazooTraffic, wait_until


@pytest.fixture
def wired(
    zk_client_factory: KazooClientFactory,
) -> Iterator[Callable[[], tuple[KazooClient, KazooTraffic]]]:
    """``wired()`` -> (a started client, the :class:`KazooTraffic` of that client alone)."""
    with contextlib.ExitStack() as recordings:

        def make() -> tuple[KazooClient, KazooTraffic]:
            # A logger of its own, so that the recording holds this client's traffic only.
            logger = logging.getLogger(f"zklock-test-wire.{uuid.uuid4().hex[:8]}")
            wire = recordings.enter_context(KazooTraffic.recording(logger))
            # A long session: heartbeats (a sync every T / 5) stay out of the recordings, and
            # a waiter's contact stays fresh long enough to take a lock on a deletion alone.
            client = zk_client_factory(logger=logger, timeout=20.0)  # the harness's maximum
            wire.take()  # the connect itself
            return client, wire

        yield make


def test_an_uncontended_cycle_is_a_pipelined_create_and_listing_then_one_delete(wired, zk_path):
    client, wire = wired()
    lock = zklock.Lock(client, zk_path)
    with lock:  # the first acquire also creates the lock path
        pass
    wire.take()
    cycles = 10
    for _ in range(cycles):
        assert lock.acquire()
        lock.release()
    seen = wire.take()
    assert [name for what, name in seen if what == "send"] == [
        "Create2", "GetChildren", "Delete"
    ] * cycles, seen
    assert all(what in ("send", "reply") for what, _ in seen), seen  # no error, no event
    # Pipelined: the listing goes out before the create's reply is read.  Not demanded of
    # every cycle: a scheduler may pause the caller between its two calls for longer than a
    # round trip on a busy machine, and the listing then simply follows the reply.
    steps = [seen[i:i + 6] for i in range(0, len(seen), 6)]
    pipelined = sum(
        step[:4] == [("send", "Create2"), ("send", "GetChildren"),
                     ("reply", "Create2"), ("reply", "GetChildren")]
        for step in steps
    )
    assert pipelined > cycles // 2, seen


def test_a_new_lock_on_an_existing_path_does_not_check_the_path(wired, zk_path):
    first, _ = wired()
    with zklock.Lock(first, zk_path):  # makes the path
        pass
    client, wire = wired()
    lock = zklock.Lock(client, zk_path)
    assert lock.acquire()
    lock.release()
    assert wire.sent() == ["Create2", "GetChildren", "Delete"]


def test_a_missing_path_is_created_on_the_no_node_answer_not_checked_before(wired, zk_path):
    client, wire = wired()
    lock = zklock.Lock(client, f"{zk_path}/a/b")
    assert lock.acquire()
    lock.release()
    seen = wire.take()
    # The pipelined pair goes out first and is refused; only then is the path made (kazoo's
    # ensure_path, which asks Exists itself), and the pair sent again.
    assert seen[:2] == [("send", "Create2"), ("send", "GetChildren")], seen
    refused = seen.index(("error", "Create2"))
    assert ("send", "Exists") not in seen[:refused], seen
    sent = [name for what, name in seen if what == "send"]
    assert sent[-3:] == ["Create2", "GetChildren", "Delete"], seen
    assert "Create2" not in sent[2:-3] and "Delete" not in sent[:-1], seen


def test_a_hand_off_costs_the_woken_waiter_one_listing_or_none(wired, zk_path):
    holder_client, _ = wired()
    holder = zklock.Lock(holder_client, zk_path)
    assert holder.acquire()
    second_client, second_wire = wired()
    third_client, third_wire = wired()
    second, third = zklock.Lock(second_client, zk_path), zklock.Lock(third_client, zk_path)
    held = {"second": threading.Event(), "third": threading.Event()}
    may_release = {"second": threading.Event(), "third": threading.Event()}

    def wait_for(lock: zklock.Lock, name: str) -> None:
        assert lock.acquire(timeout=30)
        held[name].set()
        may_release[name].wait(30)
        lock.release()

    threads = [threading.Thread(target=wait_for, args=(second, "second"))]
    threads[0].start()
    assert wait_until(lambda: len(holder.contenders()) == 2)
    threads.append(threading.Thread(target=wait_for, args=(third, "third")))
    threads[1].start()
    assert wait_until(lambda: len(holder.contenders()) == 3)
    # Each waiter: the pipelined pair, then a watch on the node right ahead (GetData).
    for wire in (second_wire, third_wire):
        assert wait_until(lambda wire=wire: ("reply", "GetData") in wire.seen), wire.seen
        assert wire.sent() == ["Create2", "GetChildren", "GetData"], wire.seen
    second_wire.take()
    third_wire.take()

    holder.release()
    assert held["second"].wait(30)
    # The second had only the holder ahead of it: the deletion alone hands it the lock.
    assert second_wire.take() == [("event", "deleted")]
    may_release["second"].set()
    assert held["third"].wait(30)
    # The third had two nodes ahead when it listed: one listing confirms that both are gone.
    assert third_wire.take() == [("event", "deleted"), ("send", "GetChildren"),
                                 ("reply", "GetChildren")]
    may_release["third"].set()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert second_wire.sent() == ["Delete"] and third_wire.sent() == ["Delete"]


def test_a_wait_that_ended_sends_nothing_when_its_old_watch_fires_later(wired, zk_path):
    # kazoo cannot take a watch back: the one a finished wait set stays on the server, and its
    # event still comes.  It must not send a listing (nor wake a later wait of the same lock).
    holder_client, _ = wired()
    holder = zklock.Lock(holder_client, zk_path)
    assert holder.acquire()
    middle = zklock.Lock(wired()[0], zk_path)
    outcome: list[BaseException] = []

    def wait_in_the_middle() -> None:
        try:
            middle.acquire()
        except zklock.AcquireCancelled as cancelled:
            outcome.append(cancelled)

    waiting = threading.Thread(target=wait_in_the_middle)
    waiting.start()
    assert wait_until(lambda: len(holder.contenders()) == 2)
    late_client, late_wire = wired()
    late = zklock.Lock(late_client, zk_path)
    assert not late.acquire(timeout=0.5)  # watched the middle's node, then gave up
    # Giving up deletes the late node; the holder may list before that delete's reply is read
    # by the late client, so wait for the reply itself before starting a clean recording.
    assert wait_until(lambda: ("reply", "Delete") in late_wire.seen), late_wire.seen
    assert late_wire.sent() == ["Create2", "GetChildren", "GetData", "Delete"], late_wire.seen
    assert len(holder.contenders()) == 2
    late_wire.take()

    middle.cancel()  # the middle's node goes: the late waiter's old watch fires
    waiting.join(30)
    assert not waiting.is_alive() and len(outcome) == 1
    assert wait_until(lambda: ("event", "deleted") in late_wire.seen), late_wire.seen
    assert late_wire.take() == [("event", "deleted")]
    holder.release()
    # The next acquire of the same lock is not disturbed by it either.
    assert late.acquire(timeout=10)
    late.release()
    assert late_wire.sent() == ["Create2", "GetChildren", "Delete"]
