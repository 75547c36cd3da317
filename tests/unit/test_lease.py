"""zklock.lease: the lease state machine, on a fake clock and a fake liveness record."""

from __future__ import annotations

import logging
import threading

import pytest

from zklock import errors
from zklock.errors import LeaseError, LockInDoubt, LockLost, NotHeld
from zklock.lease import Lease, LeaseState

HELD, SUSPENDED, LOST, RELEASED = LeaseState.HELD, LeaseState.SUSPENDED, LeaseState.LOST, LeaseState.RELEASED


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeLiveness:
    """Stands in for the session watcher: the server was last heard from ``T`` before this."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def contact_deadline(self) -> float:
        return self.deadline


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def liveness(clock):
    return FakeLiveness(clock.now + 10.0)


@pytest.fixture
def changes():
    return []


@pytest.fixture
def lease(clock, liveness, changes):
    return Lease(
        path="/locks/a",
        node="/locks/a/0123456789abcdef0123456789abcdef__lock__0000000004",
        token=0x1_0000_002A,
        session_id=0xABC,
        identifier="host:42",
        liveness=liveness,
        listeners=(lambda lease, state: changes.append(state),),
        clock=clock,
    )


def test_a_new_lease_is_held(lease, changes):
    assert lease.state is HELD
    assert lease.valid
    lease.check()
    assert lease.reason is None
    assert not lease.lost.is_set()
    assert changes == []


def test_value_fields(lease, clock):
    assert lease.path == "/locks/a"
    assert lease.node.endswith("__lock__0000000004")
    assert lease.token == 0x1_0000_002A
    assert lease.session_id == 0xABC
    assert lease.identifier == "host:42"
    assert lease.acquired_at == clock.now
    assert lease.acquired_at_wall > 0


def test_repr(lease):
    text = repr(lease)
    assert "token=4294967338" in text
    assert "session_id=0xabc" in text
    assert "state=held" in text


def test_suspended_then_held_again(lease, changes):
    assert lease._transition(SUSPENDED, "connection to ZooKeeper lost")
    assert lease.state is SUSPENDED
    assert not lease.valid
    assert lease.reason == "connection to ZooKeeper lost"
    assert not lease.lost.is_set()
    assert lease._transition(HELD)
    assert lease.state is HELD
    assert lease.valid
    assert lease.reason is None
    assert changes == [SUSPENDED, HELD]


def test_check_while_suspended_raises_in_doubt(lease):
    lease._transition(SUSPENDED, "connection to ZooKeeper lost")
    with pytest.raises(LockInDoubt, match="in doubt: connection to ZooKeeper lost") as raised:
        lease.check()
    assert isinstance(raised.value, LeaseError)
    assert raised.value.path == lease.path
    assert raised.value.node == lease.node


def test_lost_is_final(lease, changes):
    assert lease._transition(LOST, "session expired")
    assert lease.lost.is_set()
    for later in (HELD, SUSPENDED, RELEASED):
        assert lease._transition(later, "too late") is False
    assert lease.state is LOST
    assert lease.reason == "session expired"
    assert changes == [LOST]


def test_check_once_lost_raises_lock_lost(lease):
    lease._transition(SUSPENDED, "connection lost")
    lease._transition(LOST, "session expired")
    with pytest.raises(LockLost, match="was lost: session expired") as raised:
        lease.check()
    assert (raised.value.path, raised.value.node) == (lease.path, lease.node)


def test_released_is_final_and_not_lost(lease, changes):
    assert lease._transition(RELEASED)
    assert lease._transition(LOST, "late") is False
    assert lease.state is RELEASED
    assert not lease.lost.is_set()
    assert not lease.valid
    with pytest.raises(NotHeld, match="released"):
        lease.check()
    assert changes == [RELEASED]


def test_same_state_again_is_no_change(lease, changes):
    assert lease._transition(HELD) is False
    lease._transition(SUSPENDED, "a")
    assert lease._transition(SUSPENDED, "b") is False
    assert lease.reason == "a"
    assert changes == [SUSPENDED]


# ---------------------------------------------------------------- the local clock bound
def test_invalid_once_the_clock_passes_the_contact_deadline(lease, clock, liveness, changes):
    clock.now = liveness.deadline - 0.001
    assert lease.valid
    clock.now = liveness.deadline
    # No thread has run: reading the state is enough (a process waking from a long pause).
    assert not lease.valid
    assert lease.state is LOST
    assert lease.lost.is_set()
    assert "session timeout" in (lease.reason or "")
    assert changes == [LOST]
    with pytest.raises(LockLost):
        lease.check()


def test_a_suspended_lease_past_the_deadline_is_lost(lease, clock, liveness, changes):
    lease._transition(SUSPENDED, "connection lost")
    clock.now = liveness.deadline + 5
    with pytest.raises(LockLost):
        lease.check()
    assert changes == [SUSPENDED, LOST]


def test_fresh_contact_keeps_the_lease_valid(lease, clock, liveness):
    for _ in range(5):
        clock.now += 8.0
        liveness.deadline = clock.now + 10.0  # a heartbeat was answered
        assert lease.valid


def test_a_released_lease_stays_released_past_the_deadline(lease, clock, liveness):
    lease._transition(RELEASED)
    clock.now = liveness.deadline + 100
    assert lease.state is RELEASED
    assert not lease.lost.is_set()


def test_deadline_already_passed_at_creation(clock):
    lease = Lease(
        path="/l", node="/l/n", token=1, session_id=1, identifier="x",
        liveness=FakeLiveness(clock.now - 1), clock=clock,
    )
    assert lease.state is LOST


# ---------------------------------------------------------------- listeners
def test_listeners_get_the_lease_and_the_new_state(lease):
    seen = []
    lease.add_listener(lambda lease, state: seen.append((lease, state, lease.reason)))
    lease._transition(SUSPENDED, "why")
    lease._transition(LOST, "gone")
    assert seen == [(lease, SUSPENDED, "why"), (lease, LOST, "gone")]


def test_removed_listener_is_not_called(lease):
    seen = []

    def listener(lease, state):
        seen.append(state)

    lease.add_listener(listener)
    lease._transition(SUSPENDED, "x")
    lease.remove_listener(listener)
    lease._transition(HELD)
    assert seen == [SUSPENDED]


def test_a_failing_listener_is_logged_not_raised(lease, changes, caplog):
    def broken(lease, state):
        raise RuntimeError("listener bug")

    lease.add_listener(broken)
    after = []
    lease.add_listener(lambda lease, state: after.append(state))
    with caplog.at_level(logging.ERROR, logger="zklock.lease"):
        assert lease._transition(LOST, "session expired") is True
    assert lease.state is LOST
    assert lease.lost.is_set()
    assert changes == [LOST] and after == [LOST]  # the others still ran
    [record] = [r for r in caplog.records if r.name == "zklock.lease" and r.levelno == logging.ERROR]
    assert "listener" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def test_a_listener_may_read_the_lease_without_deadlock(lease):
    states = []
    lease.add_listener(lambda lease, state: states.append((lease.state, lease.valid)))
    lease._transition(SUSPENDED, "x")
    assert states == [(SUSPENDED, False)]


def test_lost_event_wakes_a_waiter(lease):
    woke = threading.Event()

    def waiter():
        if lease.lost.wait(5):
            woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    lease._transition(LOST, "node deleted")
    thread.join(5)
    assert woke.is_set()


def test_concurrent_transitions_notify_lost_once(lease, changes):
    barrier = threading.Barrier(8)

    def race():
        barrier.wait()
        lease._transition(LOST, "race")

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert changes == [LOST]


def test_removing_a_listener_never_added_is_a_usage_error(lease):
    with pytest.raises(errors.UsageError, match="not a listener"):
        lease.remove_listener(lambda lease, state: None)


def test_a_conditional_transition_is_refused_when_its_condition_fails(lease, changes):
    lease._transition(SUSPENDED, "x")
    assert lease._transition(HELD, only_if=lambda: False) is False
    assert lease.state is SUSPENDED
    assert lease._transition(HELD, only_if=lambda: True) is True
    assert lease.state is HELD


def test_a_transition_from_another_thread_waits_for_a_condition_being_asked(lease, changes):
    # The session's "still connected?" test and the move to HELD are one step: a drop
    # reported meanwhile (SUSPENDED) lands after the HELD, so the lease ends SUSPENDED.
    lease._transition(SUSPENDED, "dropped")
    asking = threading.Event()
    lease._mutex = mutex = _Contended(lease._mutex)

    def still_connected() -> bool:
        asking.set()
        # The other thread has tried its transition and waits for this one's to end.
        assert mutex.contended.wait(5)
        return True

    held = threading.Thread(target=lambda: lease._transition(HELD, only_if=still_connected))
    held.start()
    assert asking.wait(5)
    dropped = threading.Thread(target=lambda: lease._transition(SUSPENDED, "dropped again"))
    dropped.start()
    held.join(5)
    dropped.join(5)
    assert lease.state is SUSPENDED
    assert changes[-2:] == [HELD, SUSPENDED]
    assert lease.reason == "dropped again"


class _Contended:
    """A lease's mutex that notes when a thread finds it taken."""

    def __init__(self, inner: threading.Lock) -> None:
        self.inner = inner
        self.contended = threading.Event()

    def __enter__(self) -> None:
        if not self.inner.acquire(blocking=False):
            self.contended.set()
            self.inner.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.inner.release()


# ---------------------------------------------------------------- listener delivery order
class Gate:
    """A first listener that holds one thread inside the delivery of one state.

    It stands for that thread being preempted between moving the lease and calling the
    other listeners: ``entered`` is set once the thread is inside, ``release`` lets it go on.
    """

    def __init__(self, state: LeaseState) -> None:
        self.state = state
        self.thread: threading.Thread | None = None
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, lease: Lease, state: LeaseState) -> None:
        if threading.current_thread() is self.thread and state is self.state:
            if not self.entered.is_set():
                self.entered.set()
                assert self.release.wait(5)


def gated_lease(clock, liveness, gate, seen) -> Lease:
    return Lease(
        path="/l", node="/l/n", token=1, session_id=1, identifier="x", liveness=liveness,
        listeners=(gate, lambda lease, state: seen.append(state)), clock=clock,
    )


def run_gated(gate: Gate, move) -> None:
    """Start ``move`` on a thread and wait until it is held inside the gate."""
    gate.thread = threading.Thread(target=move, name="gated")
    gate.thread.start()
    assert gate.entered.wait(5)


def test_a_drop_during_a_reconnects_delivery_is_delivered_after_it(clock, liveness):
    # A reconnect's verify moves the lease SUSPENDED -> HELD and is preempted before telling
    # the listeners; kazoo's thread meanwhile reports a new drop (HELD -> SUSPENDED).  The
    # listener must end on SUSPENDED, not hear the HELD last.
    gate, seen = Gate(HELD), []
    lease = gated_lease(clock, liveness, gate, seen)
    lease._transition(SUSPENDED, "dropped")
    run_gated(gate, lambda: lease._transition(HELD, only_if=lambda: True))
    assert lease._transition(SUSPENDED, "dropped again")  # returns without waiting for the gate
    assert lease.state is SUSPENDED
    gate.release.set()
    gate.thread.join(5)
    assert not gate.thread.is_alive()
    assert seen == [SUSPENDED, HELD, SUSPENDED]
    assert seen[-1] is lease.state


def test_a_loss_during_a_suspended_delivery_is_delivered_after_it(clock, liveness):
    # kazoo's thread moves the lease HELD -> SUSPENDED and is preempted before telling the
    # listeners; a read of ``state`` past the deadline meanwhile finds it LOST.  The listener
    # must hear LOST last (and once), not SUSPENDED.
    gate, seen = Gate(SUSPENDED), []
    lease = gated_lease(clock, liveness, gate, seen)
    run_gated(gate, lambda: lease._transition(SUSPENDED, "connection lost"))
    clock.now = liveness.deadline
    assert lease.state is LOST  # no waiting for the delivery under way ...
    assert lease.lost.is_set()  # ... nor for the event
    gate.release.set()
    gate.thread.join(5)
    assert not gate.thread.is_alive()
    assert seen == [SUSPENDED, LOST]


def test_a_loss_from_the_watchdog_during_a_suspended_delivery(clock, liveness):
    gate, seen = Gate(SUSPENDED), []
    lease = gated_lease(clock, liveness, gate, seen)
    run_gated(gate, lambda: lease._transition(SUSPENDED, "connection lost"))
    assert lease._transition(LOST, "no reply from ZooKeeper within the session timeout")
    assert lease._transition(SUSPENDED, "late") is False
    gate.release.set()
    gate.thread.join(5)
    assert seen == [SUSPENDED, LOST]
    assert lease.reason == "no reply from ZooKeeper within the session timeout"


def released_during_a_suspended_delivery(clock, liveness) -> tuple[Gate, list, Lease]:
    """kazoo's thread is inside its SUSPENDED delivery when the holder releases (held back)."""
    gate, seen = Gate(SUSPENDED), []
    lease = gated_lease(clock, liveness, gate, seen)
    run_gated(gate, lambda: lease._transition(SUSPENDED, "connection lost"))
    lease._hold_back_listeners()
    assert lease._transition(RELEASED)
    return gate, seen, lease


def test_a_release_during_another_threads_delivery_is_heard_only_after_the_hold_back(
    clock, liveness
):
    # The delivering thread must not pass RELEASED on before the release ends its hold-back
    # (the Lock is not free before).
    gate, seen, lease = released_during_a_suspended_delivery(clock, liveness)
    gate.release.set()
    gate.thread.join(5)
    assert not gate.thread.is_alive()
    assert seen == [SUSPENDED]  # the delivering thread stopped at the hold-back
    lease._let_listeners_hear()
    assert seen == [SUSPENDED, RELEASED]
    lease._let_listeners_hear()  # harmless again, and without a hold-back
    assert seen == [SUSPENDED, RELEASED]


def test_a_hold_back_ending_while_another_thread_delivers_leaves_the_change_to_it(
    clock, liveness
):
    gate, seen, lease = released_during_a_suspended_delivery(clock, liveness)
    lease._let_listeners_hear()  # the other thread is still inside its call
    assert seen == []
    gate.release.set()
    gate.thread.join(5)
    assert seen == [SUSPENDED, RELEASED]  # it passed RELEASED on itself, once


def test_changes_superseded_during_a_delivery_are_skipped(clock, liveness):
    # HELD and SUSPENDED again while SUSPENDED is being delivered: the listener already saw
    # the state the lease is in, so it hears nothing more (and never a stale HELD).
    gate, seen = Gate(SUSPENDED), []
    lease = gated_lease(clock, liveness, gate, seen)
    run_gated(gate, lambda: lease._transition(SUSPENDED, "connection lost"))
    assert lease._transition(HELD)
    assert lease._transition(SUSPENDED, "connection lost again")
    gate.release.set()
    gate.thread.join(5)
    assert seen == [SUSPENDED]
    lease._transition(HELD)  # and the next change is delivered as usual
    assert seen == [SUSPENDED, HELD]


def test_a_listener_whose_read_makes_the_lease_lost(lease, clock, liveness, changes):
    # The first listener reads ``state`` past the deadline while SUSPENDED is delivered: that
    # read moves the lease to LOST on the delivering thread itself.  No deadlock, and every
    # listener hears SUSPENDED before LOST, each once.
    reader: list[tuple[LeaseState, LeaseState]] = []

    def read(lease, state):
        if state is SUSPENDED:
            clock.now = liveness.deadline + 1
        reader.append((state, lease.state))

    after: list[LeaseState] = []
    lease._listeners = (read, *lease._listeners)  # called first
    lease.add_listener(lambda lease, state: after.append(state))
    assert lease._transition(SUSPENDED, "connection lost")
    assert reader == [(SUSPENDED, LOST), (LOST, LOST)]
    assert changes == [SUSPENDED, LOST]
    assert after == [SUSPENDED, LOST]
    assert lease.lost.is_set()
    assert "session timeout" in (lease.reason or "")


def test_a_failing_listener_does_not_stop_a_later_change(clock, liveness, caplog):
    # A listener raising in the round that finds a newer state: the newer state still reaches
    # every listener, the raising one included.
    gate, seen = Gate(SUSPENDED), []
    lease = gated_lease(clock, liveness, gate, seen)
    broken: list[LeaseState] = []

    def broken_listener(lease, state):
        broken.append(state)
        raise RuntimeError("listener bug")

    lease.add_listener(broken_listener)
    with caplog.at_level(logging.ERROR, logger="zklock.lease"):
        run_gated(gate, lambda: lease._transition(SUSPENDED, "connection lost"))
        lease._transition(LOST, "session expired")
        gate.release.set()
        gate.thread.join(5)
    assert seen == [SUSPENDED, LOST]
    assert broken == [SUSPENDED, LOST]
    assert len([r for r in caplog.records if r.name == "zklock.lease" and r.exc_info]) == 2


def test_a_listener_escaping_with_a_base_exception_does_not_silence_the_lease(lease, changes):
    def interrupt(lease, state):
        if state is SUSPENDED:
            raise KeyboardInterrupt

    lease._listeners = (interrupt, *lease._listeners)  # called first
    with pytest.raises(KeyboardInterrupt):
        lease._transition(SUSPENDED, "connection lost")
    assert lease._transition(LOST, "session expired")
    assert changes == [LOST]


def test_a_listener_added_after_unheard_changes_hears_the_next_one(clock, liveness):
    lease = Lease(
        path="/l", node="/l/n", token=1, session_id=1, identifier="x", liveness=liveness,
        clock=clock,
    )
    lease._transition(SUSPENDED, "connection lost")  # nobody listening
    seen: list[LeaseState] = []
    lease.add_listener(lambda lease, state: seen.append(state))
    lease._transition(HELD)
    assert seen == [HELD]


def test_a_loss_made_while_a_listener_escapes_with_a_base_exception_is_still_heard(lease, changes):
    # A delivers SUSPENDED; B makes the lease LOST meanwhile and leaves it to A; A's listener
    # then escapes with KeyboardInterrupt.  LOST is final: nobody else would ever deliver it.
    inside, go = threading.Event(), threading.Event()

    def interrupt(lease, state):
        if state is SUSPENDED:
            inside.set()
            assert go.wait(5)
            raise KeyboardInterrupt

    lease._listeners = (interrupt, *lease._listeners)  # called first
    interrupted: list[BaseException] = []

    def deliver_suspended() -> None:
        try:
            lease._transition(SUSPENDED, "connection lost")
        except KeyboardInterrupt as error:
            interrupted.append(error)

    a = threading.Thread(target=deliver_suspended)
    a.start()
    assert inside.wait(5)
    assert lease._transition(LOST, "session expired")  # returns at once: A is delivering
    go.set()
    a.join(5)
    assert len(interrupted) == 1
    assert changes == [LOST]  # the escaping listener cut SUSPENDED short; LOST still came


@pytest.mark.parametrize("listener", [5, "on_change", None])
def test_a_listener_that_cannot_be_called_is_refused_when_added(lease, listener):
    with pytest.raises(errors.UsageError, match="listener"):
        lease.add_listener(listener)


def test_time_left_counts_down_to_the_bound_and_is_zero_once_over(lease, clock, liveness, changes):
    assert lease.time_left() == 10.0
    lease._transition(SUSPENDED, "connection lost")  # in doubt: the same bound runs on
    clock.now += 4.0
    assert lease.time_left() == 6.0
    liveness.deadline = clock.now + 10.0  # heard from again
    assert lease.time_left() == 10.0
    clock.now = liveness.deadline
    assert lease.time_left() == 0.0 and changes == [SUSPENDED, LOST]  # reading it tells the loss


def test_a_released_lease_has_no_time_left(lease, liveness):
    lease._transition(RELEASED)
    assert lease.time_left() == 0.0


def born_held_back(clock, liveness) -> tuple[Lease, list[LeaseState]]:
    """A lease as the recipe makes one (listeners held back), and what its listener heard."""
    seen: list[LeaseState] = []
    lease = Lease(
        path="/locks/a", node="/locks/a/x__lock__0000000001", token=1, session_id=0xABC,
        identifier="", liveness=liveness, listeners=(lambda _lease, state: seen.append(state),),
        clock=clock, held_back=True,
    )
    return lease, seen


def test_a_lease_born_held_back_tells_its_listeners_only_when_let_hear(clock, liveness):
    # The recipe's leases: a change before the lock object has taken the lease (a drop
    # between the grant and the tracking) is heard once it has, the latest state only.
    lease, seen = born_held_back(clock, liveness)
    assert lease._transition(SUSPENDED, "connection lost")
    assert lease.state is SUSPENDED and seen == []
    lease._let_listeners_hear()
    assert seen == [SUSPENDED]
    assert lease._transition(LOST, "session expired")
    assert seen == [SUSPENDED, LOST]  # no hold-back any more: heard at once


def test_a_lease_born_held_back_with_nothing_changed_tells_nothing(clock, liveness):
    lease, seen = born_held_back(clock, liveness)
    lease._let_listeners_hear()
    assert seen == []
    assert lease._transition(SUSPENDED, "connection lost")
    assert seen == [SUSPENDED]


def test_a_release_begun_before_the_birth_hold_back_ends_keeps_its_own(clock, liveness):
    # Another thread releases the lease between the lock object taking it and its acquirer
    # ending the birth hold-back: RELEASED is heard only once the release ends its own, when
    # the lock object takes an acquire again.
    lease, seen = born_held_back(clock, liveness)
    lease._hold_back_listeners()  # the releasing thread
    lease._let_listeners_hear()  # the acquirer, just after
    assert lease._transition(RELEASED)
    assert seen == []
    lease._let_listeners_hear()  # the release is over
    assert seen == [RELEASED]


def test_a_lease_cannot_be_copied_or_pickled_but_can_be_weakly_referenced(lease):
    # A copy would be watched by nobody and go on saying HELD; keyed weakly, user data goes
    # with the lease (docs: session-loss.md).
    import copy
    import pickle
    import weakref

    for duplicate in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(errors.UsageError, match="cannot be"):
            duplicate(lease)
    notes: weakref.WeakKeyDictionary[Lease, str] = weakref.WeakKeyDictionary()
    notes[lease] = "mine"
    assert notes[lease] == "mine"
