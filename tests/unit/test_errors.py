"""zklock.errors: the hierarchy, pickling, and the one kazoo -> zklock translator."""

from __future__ import annotations

import pickle

import pytest
from kazoo import exceptions as kazoo_errors
from kazoo.handlers.threading import KazooTimeoutError

import zklock
from zklock import errors
from zklock.errors import (
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
    is_transient,
    translate_kazoo_errors,
)

# kazoo's ConnectionClosedError subclasses SessionExpiredError, and errors.py tests for the
# parent first: a stopped client's error becomes SessionExpired, which is retried.

# (class, its zklock parent, the builtin it also is, if any): the tree in errors.py's docstring.
TREE = [
    (UsageError, ZkLockError, ValueError),
    (InvalidPath, UsageError, ValueError),
    (InvalidIdentifier, UsageError, ValueError),
    (InvalidTimeout, UsageError, ValueError),
    (InvalidAcl, UsageError, ValueError),
    (ClientNotConnected, ZkLockError, RuntimeError),
    (UsedAfterFork, ZkLockError, RuntimeError),
    (LockStateError, ZkLockError, RuntimeError),
    (NotHeld, LockStateError, RuntimeError),
    (AlreadyHeld, LockStateError, RuntimeError),
    (LockTimeout, ZkLockError, TimeoutError),
    (AcquireCancelled, ZkLockError, None),
    (LeaseError, ZkLockError, None),
    (LockInDoubt, LeaseError, None),
    (LockLost, LeaseError, None),
    (ZooKeeperError, ZkLockError, None),
    (ConnectionLost, ZooKeeperError, None),
    (SessionExpired, ZooKeeperError, None),
    (NoAuthorization, ZooKeeperError, None),
    (NoNode, ZooKeeperError, None),
    (NodeExists, ZooKeeperError, None),
]


@pytest.mark.parametrize("cls, parent, builtin", TREE, ids=lambda v: getattr(v, "__name__", str(v)))
def test_hierarchy(cls, parent, builtin):
    assert issubclass(cls, parent)
    assert issubclass(cls, ZkLockError)
    if builtin is not None:
        assert issubclass(cls, builtin)


def test_zklock_error_is_an_exception_and_nothing_more():
    assert ZkLockError.__bases__ == (Exception,)


def test_every_error_is_in_the_tree():
    exported = {  # private classes are signals inside zklock, met by callers as their base
        obj for name, obj in vars(errors).items()
        if isinstance(obj, type) and issubclass(obj, ZkLockError) and not name.startswith("_")
    }
    assert exported == {ZkLockError} | {cls for cls, _, _ in TREE}


def test_the_docstring_draws_every_class():
    for cls, _, _ in TREE:
        assert cls.__name__ in (errors.__doc__ or "")


def test_lease_errors_and_lock_timeout_are_not_zookeeper_errors():
    # A caller catching ZooKeeperError to retry must not swallow "the lock is gone".
    for cls in (LockLost, LockInDoubt, LockTimeout, AcquireCancelled):
        assert not issubclass(cls, ZooKeeperError)


def test_lock_timeout_is_the_builtin_timeout_error():
    error = LockTimeout("/locks/a", 2.5)
    assert isinstance(error, TimeoutError)
    assert isinstance(error, OSError)  # TimeoutError is an OSError; `except OSError` catches it
    assert (error.path, error.timeout) == ("/locks/a", 2.5)
    assert "/locks/a" in str(error) and "2.5" in str(error)


def test_usage_error_is_a_value_error():
    with pytest.raises(ValueError):
        raise InvalidTimeout("bad")


# ---------------------------------------------------------------- pickling (errors cross processes)
@pytest.mark.parametrize("timeout", [2.5, None, 0.0])
def test_lock_timeout_pickles(timeout):
    error = LockTimeout("/locks/a", timeout)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is LockTimeout
    assert (copy.path, copy.timeout, str(copy)) == ("/locks/a", timeout, str(error))


@pytest.mark.parametrize("cls", [LeaseError, LockLost, LockInDoubt])
def test_lease_errors_pickle(cls):
    error = cls("lock '/locks/a' was lost: session expired", "/locks/a", "/locks/a/x__lock__0000000001")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert (copy.path, copy.node) == (error.path, error.node)


def test_lease_error_without_path_pickles():
    copy = pickle.loads(pickle.dumps(LockLost("gone")))
    assert (str(copy), copy.path, copy.node) == ("gone", None, None)


@pytest.mark.parametrize("cls", [NotHeld, ConnectionLost, InvalidPath, AcquireCancelled])
def test_plain_errors_pickle(cls):
    copy = pickle.loads(pickle.dumps(cls("message")))
    assert type(copy) is cls and str(copy) == "message"


def test_pickles_under_the_public_module_name():
    # zklock/__init__.py renames the classes' module to "zklock"; pickles must load from there.
    assert LockTimeout.__module__ == "zklock"
    data = pickle.dumps(LockLost("gone", "/a", "/a/n"), protocol=0)
    assert b"zklock\nLockLost" in data
    assert type(pickle.loads(data)) is zklock.LockLost


# ---------------------------------------------------------------- translate_kazoo_errors
@pytest.mark.parametrize(
    "kazoo_error, expected",
    [
        (kazoo_errors.ConnectionLoss(), ConnectionLost),
        (kazoo_errors.OperationTimeoutError(), ConnectionLost),
        (KazooTimeoutError(), ConnectionLost),
        (kazoo_errors.SessionExpiredError(), SessionExpired),
        (kazoo_errors.NoAuthError(), NoAuthorization),
        (kazoo_errors.AuthFailedError(), NoAuthorization),
        (kazoo_errors.ConnectionClosedError(), ClientNotConnected),
        (kazoo_errors.NoNodeError(), NoNode),
        (kazoo_errors.NodeExistsError(), NodeExists),
        (kazoo_errors.BadVersionError(), ZooKeeperError),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.__name__,
)
def test_translation(kazoo_error, expected):
    with pytest.raises(ZkLockError) as raised:
        with translate_kazoo_errors():
            raise kazoo_error
    assert type(raised.value) is expected
    assert raised.value.__cause__ is kazoo_error


def test_zklock_errors_pass_through_untouched():
    original = LockLost("gone")
    with pytest.raises(LockLost) as raised:
        with translate_kazoo_errors():
            raise original
    assert raised.value is original
    assert raised.value.__cause__ is None


@pytest.mark.parametrize("error", [ValueError("bug"), KeyError("k"), KeyboardInterrupt()])
def test_other_errors_pass_through_untouched(error):
    with pytest.raises(type(error)) as raised:
        with translate_kazoo_errors():
            raise error
    assert raised.value is error


def test_no_error_no_translation():
    with translate_kazoo_errors():
        value = 1
    assert value == 1


def test_translated_message_names_the_original():
    with pytest.raises(ConnectionLost, match="ConnectionLoss"):
        with translate_kazoo_errors():
            raise kazoo_errors.ConnectionLoss()


# ---------------------------------------------------------------- is_transient
@pytest.mark.parametrize(
    "error",
    [
        kazoo_errors.ConnectionLoss(),
        kazoo_errors.OperationTimeoutError(),
        kazoo_errors.SessionExpiredError(),
        KazooTimeoutError(),
        ConnectionLost("x"),
        SessionExpired("x"),
    ],
)
def test_transient(error):
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        kazoo_errors.NoNodeError(),
        kazoo_errors.NoAuthError(),
        kazoo_errors.ConnectionClosedError(),
        NoAuthorization("x"),
        ZooKeeperError("x"),
        LockLost("x"),
        LockTimeout("/a", 1),
        ClientNotConnected("x"),
        ValueError(),
    ],
)
def test_not_transient(error):
    assert not is_transient(error)


def test_a_lock_path_that_is_an_ephemeral_node_is_explained():
    translated = errors._translate(kazoo_errors.NoChildrenForEphemeralsError())
    assert type(translated) is errors.InvalidPath  # a usage error: the CLI's status 64
    assert "ephemeral" in str(translated) and "persistent" in str(translated)
