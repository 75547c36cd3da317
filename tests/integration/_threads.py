"""Helpers for integration tests that run a lock call in a thread of their own."""

from __future__ import annotations

import threading

import zklock


def acquire_in_a_thread(
    lock: zklock.Lock, timeout: float, name: str = "test-acquire"
) -> tuple[threading.Thread, list[object]]:
    """Start ``lock.acquire(timeout)`` in a thread; its outcome (a bool or the error) is listed."""
    outcome: list[object] = []

    def acquire() -> None:
        try:
            outcome.append(lock.acquire(timeout=timeout))
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=acquire, name=name)
    thread.start()
    return thread, outcome
