"""What kazoo clients send to ZooKeeper and hear back, read off kazoo's own log lines.

kazoo's connection thread logs on its client's logger (``KazooClient(logger=...)``, by default
``kazoo.client``): ``Sending request(xid=...): <Request>`` at DEBUG for every request it
writes to the socket (pings at its lower BLATHER level), and a line for every reply, error
and watch event it reads.  Recording those lines counts and orders a client's traffic with
nothing patched or mocked.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Union

__all__ = ["KazooTraffic"]

_PING_XID = -2
_EVENT_TYPES = {1: "created", 2: "deleted", 3: "changed", 4: "child"}


class KazooTraffic(logging.Handler):
    """A log handler that records kazoo clients' requests, replies and watch events in order.

    ``seen`` holds ``("send", "Create2")``, ``("reply", "Create2")``, ``("error",
    "GetChildren")``, ``("event", "deleted")``...: requests by kazoo's request class name,
    replies and errors by the request they answer, events by type.  Pings are left out.  An
    ``exists`` that finds no node is answered without a log line: its reply is recorded when
    the connection's next reply or error is read, just before it.
    Attach it with :meth:`recording`; give each client its own logger to see one client's
    traffic, or record ``kazoo.client`` for every client that logs there.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[str, str]] = []
        self._sent: dict[tuple[object, object], str] = {}  # (connection thread, xid) -> type

    def emit(self, record: logging.LogRecord) -> None:
        """Record one of kazoo's traffic lines; ignore every other record."""
        message, args = record.msg, record.args
        if not isinstance(message, str) or not isinstance(args, tuple) or not args:
            return
        if message.startswith("Sending request"):
            if args[0] != _PING_XID:
                name = type(args[1]).__name__
                self._sent[(record.thread, args[0])] = name
                self.seen.append(("send", name))
        elif message.startswith("Received response"):
            self._answered_silently(record.thread, args[0])
            self.seen.append(("reply", self._sent.pop((record.thread, args[0]), "?")))
        elif message.startswith("Received error"):
            self._answered_silently(record.thread, args[0])
            self.seen.append(("error", self._sent.pop((record.thread, args[0]), "?")))
        elif message.startswith("Received EVENT"):
            self.seen.append(("event", _EVENT_TYPES.get(getattr(args[0], "type", 0), "?")))

    def _answered_silently(self, thread: object, xid: object) -> None:
        # One connection's replies come in request order, so a request of that connection
        # thread sent before this one and still pending was answered without a line: kazoo
        # logs none for an ``exists`` that finds no node (not an error to it).  Record that
        # reply here.  (Requests lost with a dropped connection stay until the next
        # connection, which numbers its requests from 1 again, reuses their xids.)
        if not isinstance(xid, int):
            return
        earlier: list[tuple[int, tuple[object, object]]] = []
        for key in self._sent:
            sent_thread, sent_xid = key
            if sent_thread == thread and isinstance(sent_xid, int) and sent_xid < xid:
                earlier.append((sent_xid, key))
        for _xid, key in sorted(earlier):
            if self._sent.pop(key) == "Exists":
                self.seen.append(("reply", "Exists"))

    def sent(self) -> list[str]:
        """The request types written so far, in order."""
        return [name for what, name in self.seen if what == "send"]

    def requests(self) -> dict[str, int]:
        """How many requests of each type were written so far."""
        return dict(Counter(self.sent()))

    def events(self) -> int:
        """How many watch events were read so far."""
        return sum(1 for what, _ in self.seen if what == "event")

    def take(self) -> list[tuple[str, str]]:
        """Everything seen so far, forgetting it."""
        self.acquire()
        try:
            seen, self.seen = self.seen, []
        finally:
            self.release()
        return seen

    @classmethod
    @contextlib.contextmanager
    def recording(
        cls, logger: Union[str, logging.Logger] = "kazoo.client"
    ) -> Iterator[KazooTraffic]:
        """``with KazooTraffic.recording(logger) as traffic:`` records what ``logger`` logs.

        The logger is set to DEBUG and stops propagating meanwhile (DEBUG logging costs CPU:
        record around what you count, not around what you time); both are restored after.
        """
        target = logging.getLogger(logger) if isinstance(logger, str) else logger
        traffic = cls()
        saved = (target.level, target.propagate)
        target.setLevel(logging.DEBUG)
        target.propagate = False
        target.addHandler(traffic)
        try:
            yield traffic
        finally:
            target.removeHandler(traffic)
            target.setLevel(saved[0])
            target.propagate = saved[1]
