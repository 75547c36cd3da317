"""Lock node names: parse them, order them (``naming.py`` builds them).

A contender node is named ``<prefix><marker><sequence>``: ``marker`` names the lock kind
(``__lock__`` for an exclusive lock as ``kazoo.recipe.lock.Lock`` writes it, ``lock-`` as
Curator's ``InterProcessMutex`` does), the prefix carries the attempt id (a fresh UUID per
create attempt) and ``sequence`` is the 10-character suffix ZooKeeper appends.

ZooKeeper's suffix is the parent's signed 32-bit counter printed with ``%010d``: it wraps from
2147483647 to -2147483648.  Ordering therefore uses serial-number arithmetic (RFC 1982) relative
to one member of the queue, which is exact while all live contenders were created within 2**31
creations of each other.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import NamedTuple

__all__ = [
    "CURATOR_MUTEX_MARKER",
    "CURATOR_READ_MARKER",
    "CURATOR_WRITE_MARKER",
    "EXCLUSIVE_MARKER",
    "SHARED_MARKER",
    "NodeName",
    "created_after",
    "later_names_key",
    "parse_node_name",
    "queue_order",
]

_DIGITS = frozenset("0123456789")
_SERIAL_BITS = 32
_SEQUENCE_CHARS = 10  # ZooKeeper's "%010d"
_BY_SEQUENCE_THEN_NAME = operator.itemgetter(2, 0)  # NodeName is (name, marker, sequence)

# kazoo's recipes write these markers: "__lock__" for Lock/WriteLock, "__rlock__" for ReadLock.
EXCLUSIVE_MARKER = "__lock__"
SHARED_MARKER = "__rlock__"
# Curator's spellings: InterProcessMutex "lock-", InterProcessReadWriteLock "__WRIT__"/"__READ__".
CURATOR_MUTEX_MARKER = "lock-"
CURATOR_WRITE_MARKER = "__WRIT__"
CURATOR_READ_MARKER = "__READ__"


class NodeName(NamedTuple):
    """A parsed contender node name (a tuple: parsing runs once per child per wake-up)."""

    name: str
    marker: str
    sequence: int


def parse_node_name(name: str, markers: Iterable[str]) -> NodeName | None:
    """Parse ``name`` if it is a contender node carrying one of ``markers``; else ``None``.

    Names written by other recipes on the same path (kazoo's and Curator's, with any prefix
    before the marker) parse too; children that are not lock nodes give ``None``.  The
    sequence must read exactly as ZooKeeper writes it (``%010d`` of a signed 32-bit number),
    so that a child such as ``clock-1`` or ``deadlock-2024`` is not taken for a contender.
    """
    for marker in markers:
        _head, found, tail = name.rpartition(marker)
        if not found:
            continue
        digits = tail[1:] if tail.startswith("-") else tail
        # ZooKeeper writes ASCII digits only; str.isdigit() would accept any script's digits.
        if not 9 <= len(digits) <= 10 or not _DIGITS.issuperset(digits):
            continue
        sequence = int(tail)
        if not -(2**31) <= sequence < 2**31 or tail != f"{sequence:010d}":
            continue
        return NodeName(name, marker, sequence)
    return None


def later_names_key(own: NodeName) -> str | None:
    """The key :func:`created_after` compares names with, or None when ``own`` allows no skip.

    Only a non-negative sequence gives a key: names are compared as strings, and ZooKeeper
    writes a non-negative sequence as 10 zero-padded digits ("%010d").
    """
    return f"{own.sequence:010d}" if own.sequence >= 0 else None


def created_after(name: str, key: str) -> bool:
    """True if ``name`` surely belongs to a node created after the one ``key`` was made from.

    That is when ``name`` ends in 10 digits that compare greater than ``key`` and no minus
    sign precedes them: a non-negative sequence greater than ours.  A negative sequence
    (the counter wrapped past 2^31) either has its sign inside the last 10 characters, or
    right before them; neither is skipped (``queue_order`` places it).  The one "-" that is
    not a sign is the end of Curator's mutex marker ``lock-`` (its negative sequences read
    ``lock--``).  Names this cannot decide on return False and are parsed as usual.
    """
    tail = name[-_SEQUENCE_CHARS:]
    if not (tail > key and tail.isdigit()):
        return False
    return (
        name[-_SEQUENCE_CHARS - 1 : -_SEQUENCE_CHARS] != "-"
        or name.endswith(CURATOR_MUTEX_MARKER, 0, len(name) - _SEQUENCE_CHARS)
    )


def _serial_offset(sequence: int, pivot: int) -> int:
    """Signed distance from ``pivot`` to ``sequence`` on a 32-bit wrapping counter."""
    half = 2 ** (_SERIAL_BITS - 1)
    offset: int = ((sequence - pivot + half) % 2**_SERIAL_BITS) - half
    return offset


def queue_order(nodes: Sequence[NodeName], pivot: int | None = None) -> list[NodeName]:
    """Sort contenders into queue order, oldest first, across the counter's wrap.

    ``pivot`` is any sequence known to be in the live window (the caller's own node is ideal);
    by default the first node given is used.
    """
    if len(nodes) < 2:  # an uncontended lock: nothing to order
        return list(nodes)
    sequences = [node.sequence for node in nodes]
    if max(sequences) - min(sequences) < 2 ** (_SERIAL_BITS - 1) and (
        pivot is None or min(sequences) <= pivot <= max(sequences)
    ):
        # No wrap inside the queue: serial order is plain numeric order, sorted in C.
        return sorted(nodes, key=_BY_SEQUENCE_THEN_NAME)
    origin = nodes[0].sequence if pivot is None else pivot
    return sorted(nodes, key=lambda node: (_serial_offset(node.sequence, origin), node.name))
