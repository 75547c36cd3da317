"""Lock kinds: the one point where lock kinds differ, as pure decisions on the sorted queue.

A kind says which marker its own nodes carry, which markers it queues behind, and, given the
queue in order and its own node, whether it holds the lock or which node to watch.  The recipe
(``_recipe.py``) does all I/O and never branches on the kind otherwise, so a read lock or a
write lock is a new :class:`LockKind`, not a new algorithm.

What the coming kinds need, as a prototype of each against a real ZooKeeper found (2026-11-27):

- A read lock is a kind whose ``decide`` holds unless a writer is ahead, and else watches the
  nearest writer ahead (kazoo's choice; Curator's reader watches the first writer, which wakes
  more readers than need be); a write lock is this module's exclusive kind under Curator's
  write marker.  The recipe runs them unchanged.  What differs is the local gate: threads
  sharing one read-lock object must each hold, so that gate keeps a lease per thread.
- A semaphore (up to N holders) needs more than one node to watch: any holder ahead may leave
  first, and no single watch sees them all.  A waiter that watches the N nodes right ahead of
  it is woken only when one of them goes, with no write of its own; ``Decision`` then carries a
  tuple of nodes, and the recipe's wait ends on the first of them to go (about 40 lines of
  ``LockRecipe._run`` in the prototype).  So it is not a setting of the mutex below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ._names import (
    CURATOR_MUTEX_MARKER,
    CURATOR_READ_MARKER,
    CURATOR_WRITE_MARKER,
    EXCLUSIVE_MARKER,
    SHARED_MARKER,
    NodeName,
)

__all__ = ["EXCLUSIVE", "HOLD", "Decision", "ExclusiveKind", "LockKind"]


@dataclass(frozen=True)
class Decision:
    """What a contender does next: hold the lock, or wait for ``watch`` to go away."""

    holds: bool
    watch: str | None = None


HOLD = Decision(holds=True)
"""The decision to hold (one shared value: decisions are immutable)."""


class LockKind(Protocol):
    """The strategy every lock kind implements (Curator's LockInternalsDriver)."""

    @property
    def marker(self) -> str:
        """The marker of this kind's own nodes as kazoo's recipe writes it."""

    @property
    def curator_marker(self) -> str:
        """The same as Curator's recipe writes it (``NodeNaming`` picks one of the two)."""

    @property
    def queued_behind(self) -> tuple[str, ...]:
        """Markers of the nodes this kind is ordered against, in every naming (its own too)."""

    def decide(self, queue: Sequence[NodeName], me: NodeName) -> Decision:
        """Given the relevant contenders in queue order (``me`` among them), decide.

        The queue may leave out contenders that joined after ``me``: a decision never
        depends on who queues behind (as in Curator's recipes).
        """


@dataclass(frozen=True)
class ExclusiveKind:
    """One holder at a time; each waiter watches the node right ahead of it.

    One release wakes exactly one waiter (no herd).  It queues behind every lock node kazoo or
    Curator writes, their read and write locks' too: it waits for all of them (whether they
    wait for it depends on the naming of its own nodes).
    """

    marker: str = EXCLUSIVE_MARKER
    curator_marker: str = CURATOR_MUTEX_MARKER  # InterProcessMutex
    queued_behind: tuple[str, ...] = (
        EXCLUSIVE_MARKER,
        SHARED_MARKER,
        CURATOR_MUTEX_MARKER,
        CURATOR_WRITE_MARKER,
        CURATOR_READ_MARKER,
    )

    def decide(self, queue: Sequence[NodeName], me: NodeName) -> Decision:
        """Hold if first in the queue, else watch the contender right ahead."""
        index = queue.index(me)
        if index == 0:
            return HOLD
        return Decision(holds=False, watch=queue[index - 1].name)


EXCLUSIVE = ExclusiveKind()
