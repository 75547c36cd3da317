"""zklock._contact.ContactRecord: which answers say the leader heard from the session.

A fake clock only; what the rule stands for (a follower reports the sessions it served in its
answer to the leader's next ping) is tested against a real ensemble in
tests/integration/test_session_loss.py.
"""

from __future__ import annotations

import pytest

from zklock._contact import ContactRecord

T = 8.0  # session timeout: G = T / 8 = 1 s, kazoo pings an idle connection every T / 3


@pytest.fixture
def now() -> list[float]:
    return [100.0]


@pytest.fixture
def record(now: list[float]) -> ContactRecord:
    return ContactRecord(T, clock=lambda: now[0])


def test_nothing_is_known_of_a_client_first_seen(record):
    assert record.last == 100.0 - T  # a lease made now would be past its bound
    assert record.last_through_leader == float("-inf")


def test_an_answer_is_credited_only_once_a_leader_answer_sent_g_after_it_vouches(record, now):
    now[0] = 101.0
    record.answered(100.9)  # a read (or a create) answered at 101.0
    assert record.last == 100.0 - T  # a follower cut off from the leader answers reads too
    now[0] = 101.5
    record.answered_through_leader(101.5)  # sent only 0.5 s after: maybe before the report
    assert record.last < 100.9
    now[0] = 102.0
    record.answered_through_leader(102.0)  # sent 1 s (G) after the answer
    assert record.last == 100.9


def test_a_leader_answer_on_an_idle_client_credits_back_to_kazoos_last_ping(record, now):
    now[0] = 200.0
    record.answered_through_leader(199.9)
    # Some ping was sent in [p - G - T/3, p - G] and reported before the request at p.
    assert record.last == pytest.approx(199.9 - 1.0 - T / 3)
    assert record.last_through_leader == 199.9


def test_a_leader_answer_is_itself_credited_by_the_next_one(record, now):
    now[0] = 300.0
    record.answered_through_leader(300.0)
    now[0] = 301.6  # heartbeats every T / 5 = 1.6 s
    record.answered_through_leader(301.6)
    assert record.last == 300.0
    assert record.last_through_leader == 301.6


def test_answers_close_together_are_kept_as_one_and_credited_together(record, now):
    for i in range(1000):  # a busy client: 1,000 answers in 1 s
        now[0] = 100.0 + i / 1000
        record.answered(now[0] - 0.0005)
    assert len(record._unconfirmed) <= 20
    now[0] = 101.5
    record.answered_through_leader(101.5)  # credits what was answered by 100.5
    assert 100.4 < record.last <= 100.5


def test_a_reconnect_credits_the_time_its_attempt_began_not_its_success(record, now):
    now[0] = 100.5
    record.answered(100.4)
    now[0] = 106.0  # CONNECTED heard now; the connection dropped at 101.0
    record.reconnected(101.0)  # the leader validated the session after that, maybe long before now
    assert record.last == 101.0
    assert not record._unconfirmed  # all sent before the drop


def _worst_time_left(answer_delay: float) -> float:
    """Time left before the bound (last + 0.9 T), at its lowest, on a client whose only
    requests are the watchdog's syncs (one every T / 5), each answered ``answer_delay`` late."""
    now = [0.0]
    record = ContactRecord(T, clock=lambda: now[0])
    period = T / 5
    sends = [i * period for i in range(40)]
    events = sorted([(s + answer_delay, s) for s in sends])  # (answered at, sent at)
    worst = float("inf")
    for answered_at, sent_at in events:
        now[0] = answered_at
        if answered_at > 3 * T:  # past the start, where nothing was known yet
            worst = min(worst, record.last + 0.9 * T - answered_at)
        record.answered_through_leader(sent_at)
    return worst


def test_a_slow_leader_keeps_the_bound_up_to_a_quarter_of_t_and_not_past_it():
    # docs/session-loss.md: a lease is LOST once syncs take longer than about T / 4.
    assert _worst_time_left(0.0) > 0.4 * T
    assert _worst_time_left(0.2 * T) > 0
    assert _worst_time_left(0.3 * T) < 0
