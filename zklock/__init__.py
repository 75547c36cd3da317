"""zklock: distributed locks on Apache ZooKeeper, through kazoo.

::

    import zklock
    lock = zklock.Lock(client, "/locks/report")
    with lock as lease:
        store.write(data, fencing_token=lease.token)
"""

from __future__ import annotations

from .contender import Contender
from .errors import (
    AcquireCancelled,
    AlreadyHeld,
    ClientNotConnected,
    ConnectionLost,
    InvalidAcl,
    InvalidIdentifier,
    InvalidPath,
    InvalidTimeout,
    LeaseError,
    LockInDoubt,
    LockLost,
    LockStateError,
    LockTimeout,
    NoAuthorization,
    NodeExists,
    NoNode,
    NotHeld,
    SessionExpired,
    UsageError,
    UsedAfterFork,
    ZkLockError,
    ZooKeeperError,
)
from .lease import Lease, LeaseListener, LeaseState
from .lock import Hold, Lock, locked
from .naming import NodeNaming
from .retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "AcquireCancelled",
    "AlreadyHeld",
    "ClientNotConnected",
    "ConnectionLost",
    "Contender",
    "Hold",
    "InvalidAcl",
    "InvalidIdentifier",
    "InvalidPath",
    "InvalidTimeout",
    "Lease",
    "LeaseError",
    "LeaseListener",
    "LeaseState",
    "Lock",
    "LockInDoubt",
    "LockLost",
    "LockStateError",
    "LockTimeout",
    "NoAuthorization",
    "NoNode",
    "NodeExists",
    "NodeNaming",
    "NotHeld",
    "RetryPolicy",
    "SessionExpired",
    "UsageError",
    "UsedAfterFork",
    "ZkLockError",
    "ZooKeeperError",
    "__version__",
    "locked",
]

# Errors show (in tracebacks) and pickle as zklock.LockTimeout, not zklock.errors.LockTimeout:
# a pickle names the public module, which later refactors keep.  Only errors: a class whose
# annotations name its own module's imports (Lock's ClassVar, RetryPolicy's stop_base) would
# break typing.get_type_hints (and inspect.getsource) if it claimed to live here.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and issubclass(_obj, BaseException):
        _obj.__module__ = "zklock"
del _name, _obj
