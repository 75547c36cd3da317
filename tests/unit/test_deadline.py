"""zklock._deadline: one shrinking budget, read on an injected clock."""

from __future__ import annotations

import inspect
import math
import time

import pytest

from zklock._deadline import Deadline


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


def test_counts_down_on_the_clock_it_was_given(clock):
    deadline = Deadline(5.0, clock=clock)
    assert deadline.remaining() == 5.0
    clock.advance(2.0)
    assert deadline.remaining() == 3.0
    assert not deadline.expired()
    clock.advance(2.5)
    assert deadline.remaining() == pytest.approx(0.5)


def test_expires_exactly_at_the_end(clock):
    deadline = Deadline(1.0, clock=clock)
    clock.advance(0.999)
    assert not deadline.expired()
    clock.advance(0.001)
    assert deadline.expired()
    assert deadline.remaining() == 0.0


def test_remaining_is_never_negative(clock):
    deadline = Deadline(1.0, clock=clock)
    clock.advance(100.0)
    assert deadline.remaining() == 0.0
    assert deadline.expired()


def test_zero_is_expired_at_once(clock):
    deadline = Deadline(0.0, clock=clock)
    assert deadline.expired()
    assert deadline.remaining() == 0.0


def test_start_is_read_once_at_creation(clock):
    deadline = Deadline(10.0, clock=clock)
    clock.advance(4.0)
    # A later reader does not restart the budget: it is one total budget, not a per-step one.
    assert deadline.remaining() == 6.0
    assert deadline.remaining() == 6.0
    clock.advance(6.0)
    assert deadline.expired()


@pytest.mark.parametrize("timeout", [None, math.inf])
def test_unbounded(clock, timeout):
    deadline = Deadline(timeout, clock=clock)
    clock.advance(1e12)
    assert deadline.remaining() is None
    assert not deadline.expired()


def test_unbounded_never_reads_the_clock_again(clock):
    deadline = Deadline(None, clock=clock)
    reads = clock.reads
    deadline.remaining()
    deadline.expired()
    deadline.cap(3.0)
    assert clock.reads == reads


def test_cap_takes_the_smaller(clock):
    deadline = Deadline(5.0, clock=clock)
    assert deadline.cap(2.0) == 2.0
    assert deadline.cap(9.0) == 5.0
    assert deadline.cap(None) == 5.0
    clock.advance(4.5)
    assert deadline.cap(2.0) == pytest.approx(0.5)
    clock.advance(10.0)
    assert deadline.cap(2.0) == 0.0


def test_cap_on_an_unbounded_deadline(clock):
    deadline = Deadline(None, clock=clock)
    assert deadline.cap(2.0) == 2.0
    assert deadline.cap(None) is None


def test_timeout_attribute_and_repr(clock):
    deadline = Deadline(3.0, clock=clock)
    clock.advance(1.0)
    assert deadline.timeout == 3.0
    assert repr(deadline) == "Deadline(timeout=3.0, remaining=2.0)"
    assert repr(Deadline(None, clock=clock)) == "Deadline(timeout=None, remaining=None)"


def test_default_clock_is_monotonic():
    # The default is bound when the class is defined: it must be time.monotonic itself, not
    # time.time (which jumps with the wall clock) nor any other clock.
    assert inspect.signature(Deadline).parameters["clock"].default is time.monotonic
    # And a deadline made without a clock reads that one.
    assert Deadline(60.0)._clock is time.monotonic
    assert Deadline(None)._clock is time.monotonic
