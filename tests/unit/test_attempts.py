"""zklock._attempts: the ledger that makes sure no node an acquire caused is left behind.

The create's reply is a callback we fire by hand (``PendingReply``), in any order we like.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from typing import Any, Callable

import pytest

from zklock._attempts import CreateLedger, OwnNode

Stat = namedtuple("Stat", "czxid ephemeralOwner")

SESSION, OTHER_SESSION = 0x100, 0x200
PARENT = "/locks/a"


class PendingReply:
    """A create's reply that has not arrived yet; ``arrive()`` / ``fail()`` deliver it."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[Any], None]] = []
        self._value: tuple[str, Stat] | None = None
        self._error: BaseException | None = None

    def rawlink(self, callback: Callable[[Any], None]) -> None:
        self._callbacks.append(callback)

    def get(self) -> tuple[str, Stat]:
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value

    def arrive(self, path: str, czxid: int, owner: int = SESSION) -> None:
        self._value = (path, Stat(czxid, owner))
        for callback in self._callbacks:
            callback(self)

    def fail(self, error: BaseException) -> None:
        self._error = error
        for callback in self._callbacks:
            callback(self)


def own(seq: int, owner: int = SESSION) -> OwnNode:
    return OwnNode(f"{PARENT}/{seq:032x}__lock__{seq:010d}", czxid=1000 + seq, session_id=owner)


@pytest.fixture
def late():
    return []


@pytest.fixture
def ledger(late):
    return CreateLedger(on_late_node=late.append)


def test_a_sent_create_is_unknown_until_its_followed_reply(ledger):
    reply = PendingReply()
    ledger.sent("a1")
    ledger.follow("a1", reply)
    assert ledger.unknown == {"a1"}
    reply.arrive(own(1).path, own(1).czxid)
    assert ledger.unknown == set()
    assert ledger.created == {"a1": own(1)}


def test_a_failed_reply_stays_unknown(ledger):
    # A connection loss says nothing about whether the create ran: find it by listing later.
    reply = PendingReply()
    ledger.sent("a1")
    ledger.follow("a1", reply)
    reply.fail(RuntimeError("connection loss"))
    assert ledger.unknown == {"a1"}
    assert ledger.created == {}


def test_a_sent_create_read_by_the_acquiring_thread_needs_no_follow(ledger, late):
    # The common path: the acquiring thread reads the reply itself; nothing is linked to it.
    reply = PendingReply()
    ledger.sent("a1")
    assert ledger.unknown == {"a1"}
    ledger.found("a1", own(1))
    ledger.use(own(1))
    reply.arrive(own(1).path, own(1).czxid)  # nobody followed it: no second report
    assert ledger.unknown == set()
    assert ledger.close(keep=own(1)) == ([], set())
    assert late == []


def test_refused_means_no_node(ledger):
    ledger.sent("a1")
    ledger.refused("a1")
    assert ledger.unknown == set()
    assert ledger.close(keep=None) == ([], set())


def test_use_then_close_keeps_the_held_node(ledger, late):
    reply = PendingReply()
    ledger.sent("a1")
    ledger.follow("a1", reply)
    reply.arrive(own(1).path, own(1).czxid)
    ledger.use(own(1))
    assert ledger.current == own(1)
    assert ledger.close(keep=own(1)) == ([], set())
    assert late == []


def test_close_returns_every_node_not_kept(ledger):
    for seq in (1, 2, 3):
        ledger.found(f"a{seq}", own(seq))
    ledger.use(own(3))
    extra, unknown = ledger.close(keep=own(3))
    assert sorted(extra, key=lambda n: n.path) == [own(1), own(2)]
    assert unknown == set()


def test_close_without_keeping_returns_all_and_the_unknown(ledger):
    ledger.found("a1", own(1))
    ledger.use(own(1))
    ledger.sent("a2")
    extra, unknown = ledger.close(keep=None)
    assert extra == [own(1)]
    assert unknown == {"a2"}
    assert ledger.created == {}


def test_a_late_reply_after_close_goes_to_on_late_node(ledger, late):
    reply = PendingReply()
    ledger.sent("a1")
    ledger.follow("a1", reply)
    extra, unknown = ledger.close(keep=None)  # the acquire gave up before the reply came
    assert (extra, unknown) == ([], {"a1"})
    reply.arrive(own(7).path, own(7).czxid)
    assert late == [own(7)]
    assert ledger.created == {}  # nothing is recorded after close
    assert ledger.unknown == set()


def test_a_late_find_after_close_goes_to_on_late_node(ledger, late):
    ledger.close(keep=None)
    ledger.found("a9", own(9))
    assert late == [own(9)]


def test_a_reply_before_close_is_not_late(ledger, late):
    reply = PendingReply()
    ledger.sent("a1")
    ledger.follow("a1", reply)
    reply.arrive(own(1).path, own(1).czxid)
    extra, _ = ledger.close(keep=None)
    assert extra == [own(1)]
    assert late == []


def test_a_reply_already_there_when_followed_is_recorded():
    # The recipe follows a reply only once it stops waiting, and the reply may be in by then.
    # kazoo calls a callback linked to a result that is already set at once.
    class Done(PendingReply):
        def rawlink(self, callback):
            callback(self)

    ledger = CreateLedger(on_late_node=lambda node: pytest.fail("not late"))
    reply = Done()
    reply._value = (own(1).path, Stat(own(1).czxid, SESSION))
    ledger.sent("a1")
    ledger.follow("a1", reply)
    assert ledger.created == {"a1": own(1)} and ledger.unknown == set()


# ---------------------------------------------------------------- adopt
def test_adopt_nothing(ledger):
    assert ledger.adopt(SESSION) is None
    assert ledger.current is None


def test_adopt_a_node_whose_reply_was_late_but_arrived(ledger):
    reply = PendingReply()
    ledger.sent("a1")
    ledger.follow("a1", reply)
    reply.arrive(own(1).path, own(1).czxid)
    assert ledger.adopt(SESSION) == own(1)
    assert ledger.current == own(1)


def test_adopt_ignores_other_sessions(ledger):
    ledger.found("old", own(1, owner=OTHER_SESSION))
    assert ledger.adopt(SESSION) is None
    assert ledger.created == {}  # dropped: it went with its session
    ledger.found("new", own(2))
    assert ledger.adopt(SESSION) == own(2)


def test_adopt_with_no_session_yet_judges_nothing_and_drops_nothing(ledger):
    # Before the client's first session is known, a node found may be that session's: it
    # must be neither adopted nor forgotten (forgotten, it would be nobody's to delete).
    ledger.found("a1", own(1))
    assert ledger.adopt(None) is None
    assert ledger.created == {"a1": own(1)}
    assert ledger.adopt(SESSION) == own(1)  # once the session is known


def test_adopt_keeps_the_current_node(ledger):
    ledger.found("a1", own(1))
    ledger.found("a2", own(2))
    ledger.use(own(2))
    assert ledger.adopt(SESSION) == own(2)
    extra, _ = ledger.close(keep=own(2))
    assert extra == [own(1)]


def test_adopt_drops_a_current_node_of_an_earlier_session(ledger):
    ledger.found("a1", own(1, owner=OTHER_SESSION))
    ledger.use(own(1, owner=OTHER_SESSION))
    # The session expired and kazoo reconnected with a new one: that node is gone.
    assert ledger.adopt(SESSION) is None


def test_forget_current(ledger):
    ledger.found("a1", own(1))
    ledger.found("a2", own(2))
    ledger.use(own(1))
    ledger.forget_current()
    assert ledger.current is None
    assert ledger.created == {"a2": own(2)}
    assert ledger.adopt(SESSION) == own(2)


def test_forget_current_without_one(ledger):
    ledger.forget_current()
    assert ledger.current is None


def test_replies_from_many_threads(ledger):
    replies = {f"a{i}": PendingReply() for i in range(50)}
    for attempt_id, reply in replies.items():
        ledger.sent(attempt_id)
        ledger.follow(attempt_id, reply)
    barrier = threading.Barrier(len(replies))

    def deliver(seq: int, reply: PendingReply) -> None:
        barrier.wait()
        reply.arrive(own(seq).path, own(seq).czxid)

    threads = [
        threading.Thread(target=deliver, args=(i, reply)) for i, reply in enumerate(replies.values())
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ledger.unknown == set()
    assert len(ledger.created) == 50


def test_a_second_report_of_the_kept_node_after_close_does_not_delete_it():
    # A node found by the listing for lost creates may be reported again by its followed
    # reply after the acquire has ended. The kept node must not be discarded.
    late: list[OwnNode] = []
    ledger = CreateLedger(on_late_node=late.append)
    node = OwnNode("/l/a__lock__0000000001", 11, 7)
    ledger.found("a", node)
    ledger.use(node)
    extra, unknown = ledger.close(keep=node)
    assert extra == [] and unknown == set()
    ledger.found("a", OwnNode(node.path, node.czxid, node.session_id))
    assert late == []


def test_a_create_answered_only_after_close_is_handed_over_for_deletion():
    late: list[OwnNode] = []
    ledger = CreateLedger(on_late_node=late.append)
    ledger.unknown.add("b")
    ledger.close(keep=None)
    node = OwnNode("/l/b__lock__0000000002", 12, 7)
    ledger.found("b", node)
    assert late == [node]
