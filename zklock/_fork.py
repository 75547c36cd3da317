"""Noticing use after ``os.fork()``: a child must not act on its parent's session.

A forked child inherits the parent's KazooClient (its socket, its session id, the state it
believed in) but none of its threads.  A lock released from the child would delete the
parent's node; a lease checked in the child would vouch for a lock the child never held.
Objects remember the fork generation they were made in, and refuse to work in another.
"""

from __future__ import annotations

import os

from .errors import UsedAfterFork

__all__ = ["ForkGuard"]

_generation = 0
_shared: ForkGuard | None = None  # the guard of the current generation that objects share


def _in_child_after_fork() -> None:
    global _generation
    _generation += 1


if hasattr(os, "register_at_fork"):  # POSIX; there is no fork to guard against elsewhere
    os.register_at_fork(after_in_child=_in_child_after_fork)


class ForkGuard:
    """Remembers the process an object was made in; :meth:`check` fails in a forked child."""

    __slots__ = ("_generation",)

    def __init__(self) -> None:
        self._generation = _generation

    @classmethod
    def shared(cls) -> ForkGuard:
        """A guard for objects made now, shared: it holds nothing but the fork generation.

        For objects made by the thousand (a lease per held lock), which thus cost no guard
        of their own.
        """
        global _shared
        guard = _shared
        if guard is None or guard._generation != _generation:
            guard = _shared = cls()
        return guard

    @property
    def forked(self) -> bool:
        """True in a child forked after this guard was made."""
        return self._generation != _generation

    def check(self, what: str) -> None:
        """Raise :class:`UsedAfterFork` if called in a child forked after the guard was made."""
        if self._generation != _generation:
            raise UsedAfterFork(
                f"{what} was made before os.fork() and cannot be used in the child process "
                f"(pid {os.getpid()}): it would act on the parent's ZooKeeper session; create a "
                "new KazooClient and new locks in the child"
            )
