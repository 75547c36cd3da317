"""How contender nodes are named, so that other recipes on the same path can see them.

Each lock recipe finds its place in the queue by parsing the names of the lock path's
children, and each recipe reads only its own spelling.  A fleet that mixes zklock with kazoo's
or Curator's locks on one path must therefore have zklock name its nodes the way the others
read them:

* :attr:`NodeNaming.KAZOO` (the default) writes ``<32 hex digits>__lock__<sequence>``, as
  ``kazoo.recipe.lock.Lock`` does.
* :attr:`NodeNaming.CURATOR` writes ``_c_<uuid>-lock-<sequence>``, as Apache Curator's
  ``InterProcessMutex`` does (its "protected" names, ``_c_`` + a UUID + ``-``).

Whatever the naming, zklock itself orders kazoo-, Curator- and zklock-named contenders
together by their sequence suffix.  kazoo and Curator do not read each other's names, so a
path shared with Curator fleets must not also carry kazoo-named nodes (``docs/interop.md``).
"""

from __future__ import annotations

import enum
import os
import uuid
from typing import Protocol

__all__ = ["NodeNaming"]


class MarkedKind(Protocol):
    """What a naming needs of a lock kind: its marker as each family of recipes writes it.

    The two cannot be derived from each other: kazoo marks its mutex and its write lock alike
    (``__lock__``) where Curator writes ``lock-`` and ``__WRIT__``.
    """

    @property
    def marker(self) -> str:
        """The marker kazoo's recipe for this kind writes."""

    @property
    def curator_marker(self) -> str:
        """The marker Curator's recipe for this kind writes."""


class NodeNaming(enum.Enum):
    """The spelling of zklock's own contender nodes (pass as ``Lock(..., naming=...)``)."""

    KAZOO = "kazoo"
    """``<attempt id>__lock__<sequence>``: kazoo's ``Lock`` on the same path sees zklock."""

    CURATOR = "curator"
    """``_c_<uuid>-lock-<sequence>``: Curator's ``InterProcessMutex`` on the path sees zklock."""

    def new_attempt_id(self) -> str:
        """A fresh id for one create attempt, so a create whose reply was lost can be found.

        It is written into the node name, so it takes the form the naming's recipe expects:
        32 hex digits for kazoo, a dashed UUID for Curator's protected names.
        """
        fresh = os.urandom(16)  # what uuid.uuid4() draws, without building a UUID for kazoo's
        if self is NodeNaming.KAZOO:
            return fresh.hex()
        return str(uuid.UUID(bytes=fresh, version=4))

    def prefix(self, attempt_id: str, kind: MarkedKind) -> str:
        """The name passed to a sequential create of ``kind``'s node; ZooKeeper appends the sequence."""
        if self is NodeNaming.KAZOO:
            return f"{attempt_id}{kind.marker}"
        return f"_c_{attempt_id}-{kind.curator_marker}"
