"""A contender: one node in a lock's queue, as ``Lock.contenders()`` and ``zklock status`` show it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Contender"]


@dataclass(frozen=True)
class Contender:
    """One node in a lock's queue: who made it, its fencing token and its session."""

    node: str
    """The node's full path."""
    identifier: str
    """What the contender stored in its node (``Lock(identifier=...)``)."""
    token: int
    """The node's ``czxid``: the fencing token of its lease, if it holds the lock."""
    session_id: int
    """The ZooKeeper session that owns the (ephemeral) node."""
    created_at: float
    """Creation time of the node, as a Unix timestamp (from the server's ctime)."""
