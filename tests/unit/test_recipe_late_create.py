"""A create whose reply comes after its acquire ended: the recipe deletes the node it made.

Against a server this path hides behind another: an acquire that ends with a create still
unanswered also lists the lock path after it and deletes what it finds.  Only when that listing
fails does the late reply alone find the node, so the wiring is checked here without a server:
the recipe's one try is a stand-in that sends a "create", stops waiting and gives up.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable

from kazoo.client import KazooClient

from zklock import RetryPolicy
from zklock._attempts import CreateLedger, OwnNode
from zklock._deadline import Deadline
from zklock._kinds import EXCLUSIVE
from zklock._recipe import LockRecipe
from zklock._wakeup import Wakeup
from zklock.errors import _NoAnswerByDeadline


class LateReply:
    """A create's async result, answered by the test once the acquire has returned."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[Any], None]] = []
        self._value: Any = None

    def rawlink(self, callback: Callable[[Any], None]) -> None:
        self._callbacks.append(callback)

    def get(self) -> Any:
        return self._value

    def arrive(self, path: str, czxid: int, owner: int) -> None:
        self._value = (path, SimpleNamespace(czxid=czxid, ephemeralOwner=owner))
        for callback in self._callbacks:
            callback(self)


def test_a_create_answered_after_the_acquire_ended_is_deleted(monkeypatch):
    client = KazooClient(hosts="127.0.0.1:1")  # never started: nothing is sent
    try:
        recipe = LockRecipe(client, "/lock", EXCLUSIVE, "me", RetryPolicy(request_timeout=0.2))
        discarded: list[OwnNode] = []
        monkeypatch.setattr(recipe, "_discard", discarded.append)
        reply = LateReply()

        def one_try(deadline: Deadline, blocking: bool, wakeup: Wakeup, ledger: CreateLedger) -> None:
            ledger.sent("attempt-1")
            ledger.follow("attempt-1", reply)  # stopped waiting for its answer
            raise _NoAnswerByDeadline("no answer in time")

        monkeypatch.setattr(recipe, "_run", one_try)
        assert recipe.acquire(Deadline(1.0), True, Wakeup()) is None
        assert discarded == []
        reply.arrive("/lock/_c_attempt-1-lock-0000000001", 11, 0x1234)
        assert [node.path for node in discarded] == ["/lock/_c_attempt-1-lock-0000000001"]
    finally:
        client.close()
