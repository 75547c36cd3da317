"""zklock._gate.LocalGate: threads of one process taking turns at one lock object (no server).

What the gate lets through is then tested with real contention in tests/integration/test_lock.py.
"""

from __future__ import annotations

import threading

import pytest

from zklock._deadline import Deadline
from zklock._gate import LocalGate
from zklock._wakeup import Wakeup
from zklock.errors import AcquireCancelled, AlreadyHeld
from zklock.testing import wait_until

LEASE = object()  # the gate only stores and hands back the lease


def enter_in_a_thread(
    gate: LocalGate, timeout: float | None, blocking: bool = True
) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(gate.enter(Wakeup(), Deadline(timeout), blocking))
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def held_by_this_thread() -> LocalGate:
    """A gate the calling thread went in at and now holds LEASE through."""
    gate = LocalGate("/l")
    wakeup = Wakeup()
    assert gate.enter(wakeup, Deadline(None), blocking=True)
    gate.acquired(wakeup, LEASE)  # type: ignore[arg-type]
    return gate


def test_the_thread_in_cannot_enter_again_with_no_deadline():
    gate = LocalGate("/l")
    wakeup = Wakeup()
    assert gate.enter(wakeup, Deadline(None), blocking=True)
    with pytest.raises(AlreadyHeld):
        gate.enter(Wakeup(), Deadline(None), blocking=True)
    gate.acquired(wakeup, LEASE)  # type: ignore[arg-type]
    with pytest.raises(AlreadyHeld):
        gate.enter(Wakeup(), Deadline(None), blocking=True)


def test_the_thread_in_waits_as_threading_lock_with_a_deadline_or_one_try():
    # Another thread may release it meanwhile (any thread may), so this is no sure deadlock.
    gate = held_by_this_thread()
    assert gate.enter(Wakeup(), Deadline(60.0), blocking=False) is False
    assert gate.enter(Wakeup(), Deadline(0.05), blocking=True) is False

    def release_elsewhere() -> None:
        assert gate.take_lease() is LEASE
        gate.leave()

    releaser = threading.Timer(0.1, release_elsewhere)
    releaser.start()
    assert gate.enter(Wakeup(), Deadline(5.0), blocking=True) is True
    releaser.join(5)


def test_the_thread_that_acquired_waits_for_a_release_another_thread_began():
    # The lease taken for a release, the thread that acquired holds nothing: its acquire,
    # with no deadline too, waits for the release to end rather than raising AlreadyHeld.
    gate = held_by_this_thread()
    taken = threading.Thread(target=gate.take_lease)
    taken.start()
    taken.join(5)
    leave = threading.Timer(0.1, gate.leave)
    leave.start()
    assert gate.enter(Wakeup(), Deadline(None), blocking=True) is True
    leave.join(5)


def test_another_thread_waits_until_the_release_has_ended():
    gate = held_by_this_thread()
    thread, outcome = enter_in_a_thread(gate, None)
    assert gate.take_lease() is LEASE
    assert gate.lease is None and gate.take_lease() is None
    thread.join(0.2)
    assert thread.is_alive() and outcome == []  # still out while the release runs
    gate.leave()
    thread.join(5)
    assert outcome == [True]


def test_a_failed_acquire_lets_the_next_thread_in():
    gate = LocalGate("/l")
    wakeup = Wakeup()
    gate.enter(wakeup, Deadline(None), blocking=True)
    thread, outcome = enter_in_a_thread(gate, None)
    gate.acquired(wakeup, None)
    thread.join(5)
    assert outcome == [True]


def test_a_wait_ends_at_its_deadline_and_a_one_try_at_once():
    gate = LocalGate("/l")
    wakeup = Wakeup()
    gate.enter(wakeup, Deadline(None), blocking=True)
    one_try, tried = enter_in_a_thread(gate, 60.0, blocking=False)
    waiting, waited = enter_in_a_thread(gate, 0.05)
    one_try.join(5)
    waiting.join(5)
    assert tried == [False] and waited == [False]


def test_cancel_reaches_the_thread_in_and_the_threads_waiting():
    gate = LocalGate("/l")
    inside = Wakeup()
    gate.enter(inside, Deadline(None), blocking=True)
    thread, outcome = enter_in_a_thread(gate, None)
    # cancel() reaches the waits pending when it is called: the thread's must be one of them.
    assert wait_until(lambda: len(gate._pending) == 2, 5)
    gate.cancel()
    thread.join(5)
    assert inside.cancelled
    assert len(outcome) == 1 and isinstance(outcome[0], AcquireCancelled)
    gate.acquired(inside, None)
    assert gate.enter(Wakeup(), Deadline(None), blocking=True)  # a later acquire is not cancelled
