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
    started = time.monotonic()
    with pytest.raises(ConnectionLost, match=r"unanswered for 0\.2 s"):
        recipe._sleep(Reply(after=None), threading.Event(), Deadline(30))
    assert time.monotonic() - started < 10  # the request timeout ended it, not the deadline


def test_an_answered_watch_sleeps_until_the_deadline(recipe):
    started = time.monotonic()
    recipe._sleep(Reply(after=0.05), threading.Event(), Deadline(0.5))
    assert time.monotonic() - started >= 0.5  # past the request timeout, without an error


def test_an_answer_that_brings_news_sets_the_event_and_ends_the_sleep(recipe):
    event = threading.Event()
    threading.Timer(0.05, event.set).start()
    recipe._sleep(Reply(after=None), event, Deadline(30))
    assert event.is_set()


def test_a_deadline_shorter_than_the_request_timeout_ends_the_sleep_quietly(recipe):
    recipe._sleep(Reply(after=None), threading.Event(), Deadline(0.05))
