"""One shrinking time budget per acquire: created once at the API entry point, passed down.

Every wait and every retry stop in zklock asks the same :class:`Deadline`, so a ``timeout``
is a total budget, never a per-step allowance (kazoo spends its timeout once per step).
"""

from __future__ import annotations

import math
import time
from typing import Callable

__all__ = ["Deadline"]

Clock = Callable[[], float]


class Deadline:
    """A point on the monotonic clock after which an operation gives up; ``None`` = never."""

    __slots__ = ("_clock", "_ends_at", "timeout")

    def __init__(self, timeout: float | None, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.timeout = timeout
        self._ends_at = None if timeout is None or math.isinf(timeout) else clock() + timeout

    def remaining(self) -> float | None:
        """Seconds left (never negative), or ``None`` when unbounded."""
        if self._ends_at is None:
            return None
        return max(0.0, self._ends_at - self._clock())

    def expired(self) -> bool:
        """True once no time is left."""
        return self._ends_at is not None and self._clock() >= self._ends_at

    def cap(self, seconds: float | None) -> float | None:
        """The smaller of ``seconds`` and the time left (``None`` means no limit on either side)."""
        left = self.remaining()
        if left is None:
            return seconds
        if seconds is None:
            return left
        return min(left, seconds)

    def __repr__(self) -> str:
        return f"Deadline(timeout={self.timeout!r}, remaining={self.remaining()!r})"
