"""Lock node names: build them, parse them, order them.

A contender node is named ``<attempt-id><marker><sequence>``, where ``attempt-id`` is 32 hex
digits (a fresh UUID per create attempt), ``marker`` names the lock kind (``__lock__`` for an
exclusive lock, as ``kazoo.recipe.lock.Lock`` writes it, so both exclude each other) and
``sequence`` is the 10-character suffix ZooKeeper appends.

ZooKeeper's suffix is the parent's signed 32-bit counter printed with ``%010d``: it wraps from
2147483647 to -2147483648.  Ordering therefore uses serial-number arithmetic (RFC 1982) relative
to one member of the queue, which is exact while all live contenders were created within 2**31
creations of each other.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from typing import NamedTuple

__all__ = ["NodeName", "new_attempt_id", "node_prefix", "parse_node_name", "queue_order"]

_ATTEMPT_RE = re.compile(r"([0-9a-f]{32})")
_HEX = frozenset("0123456789abcdef")
_DIGITS = frozenset("0123456789")
_ATTEMPT_CHARS = 32
_SERIAL_BITS = 32


class NodeName(NamedTuple):
    """A parsed contender node name (a tuple: parsing runs once per child per wake-up)."""

    name: str
    marker: str
    sequence: int

    @property
    def attempt_id(self) -> str | None:
        """The attempt id in the name, if any (computed on demand: rarely needed)."""
        return _attempt_id(self.name.rpartition(self.marker)[0])


def new_attempt_id() -> str:
    """A fresh id for one create attempt, so a create whose reply was lost can be found."""
    return uuid.uuid4().hex


def node_prefix(attempt_id: str, marker: str) -> str:
    """The name passed to a sequential create; ZooKeeper appends the sequence suffix."""
    return f"{attempt_id}{marker}"


def parse_node_name(name: str, markers: Iterable[str]) -> NodeName | None:
    """Parse ``name`` if it is a contender node carrying one of ``markers``; else ``None``.

    Names written by other recipes on the same path (kazoo's, with any prefix before the
    marker) parse too; children that are not lock nodes are ignored by returning ``None``.
    """
    for marker in markers:
        _head, found, tail = name.rpartition(marker)
        if not found:
            continue
        digits = tail[1:] if tail.startswith("-") else tail
        # ZooKeeper writes ASCII digits only; str.isdigit() would accept any script's digits.
        if not 0 < len(digits) <= 10 or not _DIGITS.issuperset(digits):
            continue
        sequence = int(tail)
        if not -(2**31) <= sequence < 2**31:
            continue
        return NodeName(name, marker, sequence)
    return None


def _attempt_id(head: str) -> str | None:
    """The 32 hex digits before the marker, if any.

    At the very end of ``head`` in kazoo's and zklock's names (the fast path), else anywhere in
    it (other recipes' prefixes).
    """
    candidate = head[-_ATTEMPT_CHARS:]
    if len(candidate) == _ATTEMPT_CHARS and _HEX.issuperset(candidate):
        return candidate
    found = _ATTEMPT_RE.search(head)
    return found.group(1) if found else None


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
    if not nodes:
        return []
    origin = nodes[0].sequence if pivot is None else pivot
    return sorted(nodes, key=lambda node: (_serial_offset(node.sequence, origin), node.name))
