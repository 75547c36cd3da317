"""What a waiting acquire sleeps on, and how another thread wakes or cancels it."""

from __future__ import annotations

import threading

__all__ = ["Wakeup"]


class Wakeup:
    """What a waiting acquire (or a release between retries) sleeps on.

    The recipe sets ``event`` for news (a watch fired, the connection changed); ``cancel()``
    ends the acquire from another thread.
    """

    __slots__ = ("cancelled", "event")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.cancelled = False

    def cancel(self) -> None:
        """Make the acquire raise :class:`~zklock.errors.AcquireCancelled` as soon as it wakes."""
        self.cancelled = True
        self.event.set()

    def sleep(self, seconds: float) -> None:
        """Sleep between retries, cut short by cancellation or a state change."""
        self.event.wait(seconds)
        self.event.clear()
