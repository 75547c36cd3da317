"""The waiting thread's sleep on a watch whose request may go unanswered (``LockRecipe._sleep``).

The watch request's reply is not waited for; until it is in, the sleep is bounded by the
request timeout, after which the request counts as a lost connection. The reply here is a
stand-in object (answered or not), and the client is never started: ``_sleep`` sends nothing.
"""

from __future__ import annotations

import threading
import time

import pytest
from kazoo.client import KazooClient

from zklock import RetryPolicy
from zklock._deadline import Deadline
from zklock._kinds import EXCLUSIVE
from zklock._recipe import LockRecipe
from zklock.errors import ConnectionLost


class Reply:
    """A watch request's reply that arrives ``after`` seconds from now (never: ``None``)."""

    def __init__(self, after: float | None) -> None:
        self._at = None if after is None else time.monotonic() + after

    def ready(self) -> bool:
        return self._at is not None and time.monotonic() >= self._at


@pytest.fixture
def recipe():
    client = KazooClient(hosts="127.0.0.1:1")
    yield LockRecipe(client, "/lock", EXCLUSIVE, "me", RetryPolicy(request_timeout=0.2))
    client.close()


def test_an_unanswered_watch_request_counts_as_a_lost_connection(recipe):
    # The request timeout ends it (the deadline would end it quietly, 30 s on).
    with pytest.raises(ConnectionLost, match=r"unanswered for 0\.2 s"):
        recipe._sleep(Reply(after=None), threading.Event(), Deadline(30))


def test_an_answered_watch_sleeps_until_the_deadline(recipe):
    deadline = Deadline(0.5)
    recipe._sleep(Reply(after=0.05), threading.Event(), deadline)
    assert deadline.expired()  # slept on past the request timeout, without an error


def test_an_answer_that_brings_news_sets_the_event_and_ends_the_sleep():
    # A request timeout no scheduling delay can reach: only the event ends this sleep.
    client = KazooClient(hosts="127.0.0.1:1")
    patient = LockRecipe(client, "/lock", EXCLUSIVE, "me", RetryPolicy(request_timeout=60))
    event = threading.Event()
    deadline = Deadline(60)
    setter = threading.Timer(0.05, event.set)
    setter.start()
    try:
        patient._sleep(Reply(after=None), event, deadline)
    finally:
        setter.join()
        client.close()
    assert event.is_set() and not deadline.expired()


def test_a_deadline_shorter_than_the_request_timeout_ends_the_sleep_quietly(recipe):
    deadline = Deadline(0.05)
    recipe._sleep(Reply(after=None), threading.Event(), deadline)
    assert deadline.expired()
