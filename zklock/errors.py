"""Every error zklock raises, in one hierarchy, and the one place kazoo's errors are translated.

::

    ZkLockError
    ├── UsageError (ValueError)              bad input, caught before any request is sent
    │   ├── InvalidPath
    │   ├── InvalidIdentifier
    │   ├── InvalidTimeout
    │   └── InvalidAcl
    ├── ClientNotConnected (RuntimeError)     the KazooClient was never started, or is stopped/closed
    ├── UsedAfterFork (RuntimeError)          a lock, lease or client used in a child after os.fork()
    ├── LockStateError (RuntimeError)         the call does not fit the lock's state
    │   ├── NotHeld                           release() of a lock this object does not hold
    │   └── AlreadyHeld                       a thread acquiring a lock it already holds
    ├── LockTimeout (TimeoutError)            hold()/with/decorator gave up waiting (acquire() returns False)
    ├── AcquireCancelled                      a pending acquire was cancelled by Lock.cancel()
    ├── LeaseError                            the lease can no longer be trusted
    │   ├── LockInDoubt                       connection lost, the session may still live (SUSPENDED)
    │   └── LockLost                          the lock node is gone, or its session is (LOST)
    └── ZooKeeperError                        a request failed on the server or on the connection
        ├── ConnectionLost                    no answer: connection loss, or a request that timed out
        ├── SessionExpired                    the server expired the session
        ├── NoAuthorization                   ACLs or authentication refused the request
        ├── NoNode                            the node does not exist
        └── NodeExists                        the node already exists

Other zklock modules call :func:`translate_kazoo_errors` or :func:`is_transient` from here (the
lock's hot path catches ``_KAZOO_ERRORS`` and raises ``_translate(error)``, the same translation
without a context manager).  The one kazoo exception named elsewhere is its request timeout,
in the recipe's reply wait, which must tell a deadline that cut the wait short from a lost
connection before translating.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from kazoo import exceptions as kazoo_errors
from kazoo.handlers.threading import KazooTimeoutError

__all__ = [
    "AcquireCancelled",
    "AlreadyHeld",
    "ClientNotConnected",
    "ConnectionLost",
    "InvalidAcl",
    "InvalidIdentifier",
    "InvalidPath",
    "InvalidTimeout",
    "LeaseError",
    "LockInDoubt",
    "LockLost",
    "LockStateError",
    "LockTimeout",
    "NoAuthorization",
    "NoNode",
    "NodeExists",
    "NotHeld",
    "SessionExpired",
    "UsageError",
    "UsedAfterFork",
    "ZkLockError",
    "ZooKeeperError",
    "is_transient",
    "translate_kazoo_errors",
]


class ZkLockError(Exception):
    """Base class of every error raised by zklock."""


class UsageError(ZkLockError, ValueError):
    """An argument is invalid; raised before anything is sent to ZooKeeper."""


class InvalidPath(UsageError):
    """A lock path is not an absolute, well-formed ZooKeeper path that zklock may use."""


class InvalidIdentifier(UsageError):
    """An identifier is not text, is too long, or holds control characters."""


class InvalidTimeout(UsageError):
    """A timeout is negative (other than -1), not a number, or given to a non-blocking call."""


class InvalidAcl(UsageError):
    """An ACL is not a non-empty list of kazoo ACLs that the client can use."""


class ClientNotConnected(ZkLockError, RuntimeError):
    """The KazooClient was never started, or has been stopped or closed."""


class UsedAfterFork(ZkLockError, RuntimeError):
    """A lock, lease or KazooClient made before ``os.fork()`` was used in the child process.

    The child shares the parent's ZooKeeper session (and socket) but none of its threads:
    acting on it would release or steal the parent's lock.  Create a new KazooClient and new
    locks in the child.
    """


class LockStateError(ZkLockError, RuntimeError):
    """The call does not fit the state this lock object is in."""


class NotHeld(LockStateError):
    """``release()`` was called on a lock this object does not hold (as ``threading.Lock``)."""


class AlreadyHeld(LockStateError):
    """A thread tried to acquire, with no timeout, a non-reentrant lock it already holds.

    Waiting would end only if another thread released the lock; with a timeout the acquire
    waits (or, with ``blocking=False``, returns False), as ``threading.Lock``'s does.
    """


class LockTimeout(ZkLockError, TimeoutError):
    """The lock could not be acquired before the deadline (raised by ``hold()``, ``with``, decorators).

    ``acquire()`` reports the same condition by returning ``False``.
    """

    def __init__(self, path: str, timeout: float | None) -> None:
        self.path = path
        self.timeout = timeout
        super().__init__(f"could not acquire {path!r} within {timeout} s")

    def __reduce__(self) -> tuple[type[LockTimeout], tuple[str, float | None]]:
        return (type(self), (self.path, self.timeout))


class AcquireCancelled(ZkLockError):
    """A pending acquire was cancelled from another thread by ``Lock.cancel()``."""


class LeaseError(ZkLockError):
    """The lease on a lock can no longer be trusted; stop acting as the holder."""

    def __init__(self, message: str, path: str | None = None, node: str | None = None) -> None:
        self.path = path
        self.node = node
        super().__init__(message)

    def __reduce__(self) -> tuple[type[LeaseError], tuple[str, str | None, str | None]]:
        return (type(self), (str(self), self.path, self.node))


class LockInDoubt(LeaseError):
    """The connection is lost and the session may or may not still live (the lease is SUSPENDED)."""


class LockLost(LeaseError):
    """The lock is no longer held: its node or its session is gone (the lease is LOST)."""


class ZooKeeperError(ZkLockError):
    """A ZooKeeper request failed; ``__cause__`` holds kazoo's original error."""


class ConnectionLost(ZooKeeperError):
    """The connection was lost or a request got no answer in time; the outcome is unknown."""


class _NoAnswerByDeadline(ConnectionLost):
    """A request was still unanswered when the caller's own deadline passed.

    Not a new kind of failure for callers (it is a :class:`ConnectionLost` wherever it
    leaves zklock): an acquire tells it apart to return False, as ``threading.Lock`` does when
    its timeout passes, instead of reporting a healthy but slower server as unreachable.
    """


class SessionExpired(ZooKeeperError):
    """The ZooKeeper session expired; its ephemeral nodes are gone."""


class NoAuthorization(ZooKeeperError):
    """ZooKeeper refused the request: ACLs or authentication."""


class NoNode(ZooKeeperError):
    """The node named in the request does not exist."""


class NodeExists(ZooKeeperError):
    """The node the request would create already exists."""


# Errors after which the same request may succeed: the connection, or a session that kazoo
# replaces with a new one.  Everything else is a definite answer from the server.
_TRANSIENT = (
    kazoo_errors.ConnectionLoss,
    kazoo_errors.OperationTimeoutError,
    kazoo_errors.SessionExpiredError,
    KazooTimeoutError,
    ConnectionLost,
    SessionExpired,
)


def is_transient(error: BaseException) -> bool:
    """Return True when retrying the same request later may succeed (connection or session)."""
    # kazoo's ConnectionClosedError subclasses SessionExpiredError, but a closed client stays closed.
    if isinstance(error, (kazoo_errors.ConnectionClosedError, ClientNotConnected)):
        return False
    return isinstance(error, _TRANSIENT)


# Every error of kazoo's that _translate turns into a zklock error.
_KAZOO_ERRORS = (kazoo_errors.KazooException, KazooTimeoutError)
# What kazoo fails a request with by itself, not on a server's reply: its connection dropped
# or was closed, its session ended, its authentication failed (LeanHandler tells them apart).
_KAZOO_CONNECTION_FAILURES = (
    kazoo_errors.ConnectionLoss,
    kazoo_errors.SessionExpiredError,
    kazoo_errors.AuthFailedError,
    kazoo_errors.ConnectionClosedError,
)


def _translate(error: Exception, client_starting: bool = False) -> ZkLockError:
    if isinstance(error, ZkLockError):
        return error
    if isinstance(error, kazoo_errors.ConnectionClosedError):  # before its base SessionExpiredError
        if client_starting:  # kazoo refuses requests so until its connection thread first runs
            return ConnectionLost("the KazooClient has not connected yet")
        return ClientNotConnected("the KazooClient is stopped or closed")
    if isinstance(error, kazoo_errors.NoNodeError):
        return NoNode(f"no such node: {error!r}")
    if isinstance(error, kazoo_errors.NodeExistsError):
        return NodeExists(f"node already exists: {error!r}")
    if isinstance(error, (kazoo_errors.ConnectionLoss, kazoo_errors.OperationTimeoutError)):
        return ConnectionLost(f"connection to ZooKeeper lost: {error!r}")
    if isinstance(error, KazooTimeoutError):
        return ConnectionLost(f"no answer from ZooKeeper in time: {error!r}")
    if isinstance(error, kazoo_errors.SessionExpiredError):
        return SessionExpired("the ZooKeeper session expired")
    if isinstance(error, (kazoo_errors.NoAuthError, kazoo_errors.AuthFailedError)):
        return NoAuthorization(f"ZooKeeper refused the request: {error!r}")
    if isinstance(error, kazoo_errors.InvalidACLError):
        return InvalidAcl(
            f"ZooKeeper refused the lock's acl (an id its scheme does not accept, or a scheme "
            f"the server does not know): {error!r}"
        )
    if isinstance(error, kazoo_errors.NoChildrenForEphemeralsError):
        return InvalidPath(
            "the lock path or one of its parents is an ephemeral node, and ZooKeeper gives "
            "ephemeral nodes no children: lock on a path whose parents are persistent nodes"
        )
    return ZooKeeperError(f"ZooKeeper request failed: {error!r}")


@contextlib.contextmanager
def translate_kazoo_errors() -> Iterator[None]:
    """Re-raise kazoo's errors (and request time-outs) as zklock errors, chained to the original."""
    try:
        yield
    except _KAZOO_ERRORS as error:
        raise _translate(error) from error
