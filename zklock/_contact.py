"""When the leader last heard from this session, as far as the client can prove it.

Only the leader expires sessions, ``T`` after the last time it *touched* one.  A client talking
to the leader touches its session with every request.  A client talking to a follower does
not: the follower notes the sessions it served and reports them in its answer to the leader's
next ping, every half tick.  A follower cut off from the leader goes on answering reads and
kazoo's pings, and an answer says nothing about whether the leader ever heard of the request.

So an answer is *credited* (it may move :attr:`ContactRecord.last`) only once a later request
proves the report went through: one sent at least ``G`` after the answer came in, and answered
through the leader (a ``sync``, a create, a delete).  By then the follower has had a ping from
the leader between the two, and its report, sent as it answered that ping, went before the
later request on the same connection and reached the leader first.  So the leader touched the
session at or after the credited request's send time, and cannot expire it before that time
plus ``T``.  A reconnect credits the time the drop was heard (see :meth:`reconnected`).

Two assumptions, documented in ``docs/session-loss.md``:

- ``G = T / 8`` covers half a tick plus delivery: the server's ``tickTime`` is at most ``T / 5``
  (kazoo's default ``T`` of 10 s with ZooKeeper's default tick of 2 s is exactly that), and
  the servers' threads run on time (the order above rests on timing, not on a promise).
- kazoo pings a connection that is otherwise idle at least every ``T / 3``.  zklock does not
  see those pings, but a request answered through the leader shows the connection was up, so
  the follower received something in ``[p - G - T/3, p - G]`` and reported it: a leader
  answer to a request sent at ``p`` credits ``p - G - T/3`` even on a client idle until then.

Bare answers waiting for a proof are kept in a short queue, merged when close together, so a
busy client keeps a few dozen entries at most.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable

__all__ = ["ContactRecord"]

_REPORT_SHARE = 1 / 8  # G / T: a follower's report of a touched session reaches the leader
_PING_SHARE = 1 / 3  # kazoo pings an idle connection within this share of T
_MERGE_SHARE = 1 / 16  # of G: answers closer together than this are kept as one
_MAX_UNCONFIRMED = 64  # answers waiting for a proof; the oldest give way (less credit, never more)


class ContactRecord:
    """The latest time the leader is known to have heard from the session (see module doc)."""

    def __init__(self, session_timeout: float, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._report_delay = session_timeout * _REPORT_SHARE
        self._idle_credit = self._report_delay + session_timeout * _PING_SHARE
        self._merge_within = self._report_delay * _MERGE_SHARE
        self._mutex = threading.Lock()
        # [sent, answered, first answered] of answers not yet credited, in the order they
        # came in: one entry stands for the answers that came in within _merge_within of its
        # first (the latest send and answer times of them: the answer time only delays it).
        self._unconfirmed: deque[tuple[float, float, float]] = deque(maxlen=_MAX_UNCONFIRMED)
        # Nothing is known when zklock first sees a client, which may have been cut off for
        # long: a lease made before the first proof would be lost at once.
        self._last = clock() - session_timeout
        self._last_through_leader = float("-inf")

    @property
    def last(self) -> float:
        """Monotonic time by which the leader had surely heard from the session."""
        return self._last

    @property
    def last_through_leader(self) -> float:
        """Send time of the latest request answered through the leader (-inf if none yet)."""
        return self._last_through_leader

    def answered(self, sent_at: float) -> None:
        """A request sent at ``sent_at`` was answered, by whichever server: credit it later."""
        answered_at = self._clock()  # read after the answer: later is the safe side
        with self._mutex:
            self._queue(sent_at, answered_at)

    def answered_through_leader(self, sent_at: float) -> None:
        """A request sent at ``sent_at`` was answered through the leader: a proof.

        Credits every answer that came in at least ``G`` before ``sent_at``, and at least
        ``sent_at - G - T/3`` (kazoo's pings on an idle connection).
        """
        answered_at = self._clock()
        with self._mutex:
            cutoff = sent_at - self._report_delay
            credit = sent_at - self._idle_credit
            unconfirmed = self._unconfirmed
            while unconfirmed and unconfirmed[0][1] <= cutoff:
                credit = max(credit, unconfirmed.popleft()[0])
            if credit > self._last:
                self._last = credit
            if sent_at > self._last_through_leader:
                self._last_through_leader = sent_at
            self._queue(sent_at, answered_at)  # its own touch needs the next proof

    def reconnected(self, attempt_began: float) -> None:
        """The session was (re)established by a connect request sent after ``attempt_began``.

        The leader touched the session when it validated (or made) it, after that request
        was sent, but maybe long before the client heard of it: the reply may have been held
        up on the way (by the follower, or kazoo's thread).  So the credit is the time the
        attempt began, never the time it succeeded.  Answers waiting for a proof are dropped:
        none was sent after that time.
        """
        with self._mutex:
            self._unconfirmed.clear()
            if attempt_began > self._last:
                self._last = attempt_began

    def _queue(self, sent_at: float, answered_at: float) -> None:
        unconfirmed = self._unconfirmed
        if unconfirmed:
            last_sent, last_answered, first_answered = unconfirmed[-1]
            if answered_at - first_answered < self._merge_within:
                unconfirmed[-1] = (
                    max(last_sent, sent_at), max(last_answered, answered_at), first_answered
                )
                return
        unconfirmed.append((sent_at, answered_at, answered_at))
