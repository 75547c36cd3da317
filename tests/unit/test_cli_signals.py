"""zklock exec's signal router: what it passes on to the command (no processes, a fake clock)."""

from __future__ import annotations

import signal

import pytest

from zklock.cli import _signals
from zklock.cli._signals import SAME_DELIVERY, Mode, SignalRouter


class FakeCommand:
    """Stands in for the command: records what it is sent, and which group was spared."""

    def __init__(self, group: int | None = 4242) -> None:
        self.group = group  # its own (zklock not in a terminal's foreground), or None: zklock's
        self.sent: list[int] = []
        self.spared: list[int | None] = []

    def signal(self, signum: int, spare_group: int | None = None) -> None:
        self.sent.append(signum)
        self.spared.append(spare_group)


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


@pytest.mark.parametrize("leads_the_session", [False, True])
def test_a_hang_up_after_the_terminal_went_away_spares_zklocks_group_unless_zklock_leads(
    leads_the_session, clock, monkeypatch
):
    # The kernel takes the terminal away, then signals the session's leader alone: a shell
    # leading it passes the SIGHUP on to its job, the command in zklock's group included.
    # A SIGHUP well after the hang-up is someone's kill -HUP to zklock: passed on.
    monkeypatch.setattr(_signals, "terminal_foreground", lambda: None)  # the terminal is gone
    monkeypatch.setattr(
        _signals.os, "getsid", lambda pid: _signals.os.getpid() if leads_the_session else 1
    )
    in_zklocks_group, in_its_own = FakeCommand(group=None), FakeCommand()
    for command in (in_zklocks_group, in_its_own):
        with SignalRouter() as fresh:
            fresh.attach(command)  # type: ignore[arg-type]
            fresh.mode = Mode.FORWARD
            fresh._handle(signal.SIGHUP, None)
            fresh._handle(signal.SIGTERM, None)
            clock[0] += _signals.HANG_UP_SPAN / 2
            fresh._handle(signal.SIGHUP, None)  # the shell's copy, after the kernel's
            clock[0] += _signals.HANG_UP_SPAN
            fresh._handle(signal.SIGHUP, None)  # a kill -HUP, later
    spared = None if leads_the_session else _signals.os.getpgrp()
    assert in_zklocks_group.spared == [spared, None, spared, None]
    assert in_its_own.spared == [None, None, None, None]  # outside the foreground: only zklock had it
