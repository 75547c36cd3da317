"""zklock exec's signal router: what it passes on to the command (no processes, a fake clock)."""

from __future__ import annotations

import signal

import pytest

from zklock.cli import _signals
from zklock.cli._signals import SAME_DELIVERY, Mode, SignalRouter


class FakeCommand:
    """Stands in for the command: records what it is sent."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def signal(self, signum: int, spare_group: int | None = None) -> None:
        self.sent.append(signum)


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(_signals.time, "monotonic", lambda: now[0])
    return now


@pytest.fixture
def router():
    with SignalRouter() as router:
        yield router


def test_a_second_copy_within_the_window_is_not_passed_on(router, clock):
    command = FakeCommand()
    router.attach(command)  # type: ignore[arg-type]
    router.mode = Mode.FORWARD
    router._handle(signal.SIGTERM, None)
    clock[0] += SAME_DELIVERY / 2
    router._handle(signal.SIGTERM, None)  # timeout(1)'s copy to its group
    assert command.sent == [signal.SIGTERM]
    router._handle(signal.SIGHUP, None)  # another signal is another delivery
    assert command.sent == [signal.SIGTERM, signal.SIGHUP]
    clock[0] += SAME_DELIVERY
    router._handle(signal.SIGTERM, None)  # later: a new delivery, passed on
    assert command.sent == [signal.SIGTERM, signal.SIGHUP, signal.SIGTERM]
    assert router.received == [signal.SIGTERM] * 2 + [signal.SIGHUP, signal.SIGTERM]


def test_two_copies_that_came_before_the_command_started_reach_it_once(router, clock):
    router.mode = Mode.FORWARD
    router._handle(signal.SIGTERM, None)
    router._handle(signal.SIGTERM, None)
    command = FakeCommand()
    router.attach(command)  # type: ignore[arg-type]
    assert command.sent == [signal.SIGTERM]
