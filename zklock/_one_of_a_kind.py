"""Objects that stand for one live thing (a held node, a contender) and so refuse copies."""

from __future__ import annotations

from typing import ClassVar, NoReturn, SupportsIndex

from .errors import UsageError

__all__ = ["OneOfAKind"]


class OneOfAKind:
    """A mixin refusing ``copy``, ``deepcopy`` and ``pickle`` with :class:`UsageError`.

    A copy of a lease would be watched by nobody and go on saying HELD; a copy of a lock would
    share its local gate half-way; a pickled one could not carry its client.  Subclasses say
    what to do instead in ``_copy_refusal`` and ``_pickle_refusal``.
    """

    __slots__ = ()
    _copy_refusal: ClassVar[str]
    _pickle_refusal: ClassVar[str]

    def __copy__(self) -> NoReturn:
        raise UsageError(self._copy_refusal)

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise UsageError(self._copy_refusal)

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise UsageError(self._pickle_refusal)
