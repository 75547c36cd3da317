"""Bookkeeping of one acquire's create requests, so no node it caused is ever left behind.

A sequential create whose reply is lost (connection loss, or no answer before the deadline) may
still have run on the server, possibly later, since kazoo sends queued requests after it
reconnects.  Each create carries a fresh attempt id in its node name; the ledger remembers
every id whose outcome is unknown and every node a late reply reveals.  When the acquire ends,
:meth:`CreateLedger.close` returns every node that is not the one kept, for deletion; a reply
that arrives after that is handed to ``on_late_node`` at once.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, NamedTuple

__all__ = ["CreateLedger", "OwnNode"]


class OwnNode(NamedTuple):
    """A contender node this acquire created: full path, czxid and owning session.

    A tuple, so that making and comparing one costs no Python-level calls on the lock path.
    """

    path: str
    czxid: int
    session_id: int


class CreateLedger:
    """What one acquire has created, or may have created, under the lock path."""

    def __init__(self, on_late_node: Callable[[OwnNode], None]) -> None:
        self._mutex = threading.Lock()
        self._on_late_node = on_late_node
        self.unknown: set[str] = set()
        """Attempt ids whose create may or may not have run."""
        self.created: dict[str, OwnNode] = {}
        """Nodes known to exist, by attempt id (replies, including late ones)."""
        self.current: OwnNode | None = None
        """The node this acquire is queued with."""
        self._reported: set[str] = set()
        self._closed = False

    def sent(self, attempt_id: str) -> None:
        """Record a create just sent: its outcome is unknown until its reply is read.

        The acquiring thread normally reads the reply itself (:meth:`found` or
        :meth:`refused`); if it stops waiting first, it must :meth:`follow` the reply.
        """
        with self._mutex:
            self.unknown.add(attempt_id)

    def follow(
        self,
        attempt_id: str,
        result: Any,
        mark: Callable[[Callable[[Any], None]], Callable[[Any], None]] = lambda callback: callback,
    ) -> None:
        """The acquiring thread stops waiting for this create: its reply, however late, lands here.

        Linked only then, not at every send: on kazoo's stock handler a linked callback costs
        a wake-up of kazoo's callback thread per acquire (3 to 7 % of the client's CPU per
        uncontended cycle, by ``python -m benchmarks.loop zklock``).
        kazoo calls a callback linked to a result that is already set at once, so a reply that
        came in meanwhile is not missed.  ``mark`` decorates the callback (the recipe passes
        ``runs_inline``: it only takes the ledger's mutex).
        """

        def replied(reply: Any) -> None:
            try:
                path, stat = reply.get()
            except Exception:  # no node made (or unknown: found later by listing)
                return
            self.found(attempt_id, OwnNode(path, stat.czxid, stat.ephemeralOwner))

        result.rawlink(mark(replied))

    def refused(self, attempt_id: str) -> None:
        """The server answered the create with an error: no node was made."""
        with self._mutex:
            self.unknown.discard(attempt_id)

    def found(self, attempt_id: str, node: OwnNode) -> None:
        """A node of ``attempt_id`` exists (from a reply, or found by listing the children).

        The same node can be reported twice: by a followed reply and by the listing that
        looks for lost creates, in either order.  Only the first report counts; a second must
        not delete a node already accounted for.
        """
        with self._mutex:
            self.unknown.discard(attempt_id)
            if attempt_id in self._reported:
                return
            self._reported.add(attempt_id)
            if not self._closed:
                self.created[attempt_id] = node
                return
        self._on_late_node(node)

    def adopt(self, session_id: int | None) -> OwnNode | None:
        """Queue with a created node of the current session, if any; older ones are dropped.

        With no session known yet (``None``: the client has not connected) nothing is judged:
        a node found meanwhile may well be the session's about to be reported.
        """
        with self._mutex:
            if session_id is None:
                return None
            if self.current is not None and self.current.session_id != session_id:
                self.current = None  # went with its session
            for attempt_id, node in list(self.created.items()):
                if node.session_id != session_id:
                    del self.created[attempt_id]  # went with its session
                elif self.current is None:
                    self.current = node
            return self.current

    def use(self, node: OwnNode) -> None:
        """Queue with ``node``, which this acquire just created."""
        with self._mutex:
            self.current = node

    def forget_current(self) -> None:
        """The current node is gone (its session expired, or it was deleted)."""
        with self._mutex:
            if self.current is not None:
                self.created = {k: v for k, v in self.created.items() if v != self.current}
            self.current = None

    def close(self, keep: OwnNode | None) -> tuple[list[OwnNode], set[str]]:
        """End the acquire: return the nodes to delete and the ids still unaccounted for."""
        with self._mutex:
            self._closed = True
            extra = [node for node in self.created.values() if node != keep]
            unknown = set(self.unknown)
            self.created.clear()
            return extra, unknown
