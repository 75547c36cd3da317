"""Waiting for a condition in a test without sleeping a fixed time."""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["wait_until"]


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, step: float = 0.01) -> bool:
    """Poll ``predicate`` every ``step`` seconds; True as soon as it holds, False after ``timeout``.

    Meant for ``assert wait_until(lambda: ...)``: the test fails, bounded, instead of hanging.
    """
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
