"""Lock arguments refused when the lock is made, before anything reaches ZooKeeper.

The client is a real, never-started ``KazooClient``: making a Lock sends nothing.
"""

from __future__ import annotations

import functools

import pytest
import tenacity
from kazoo.client import KazooClient

import zklock
from zklock.errors import UsageError


@pytest.fixture
def client():
    client = KazooClient(hosts="127.0.0.1:1")  # never started: nothing is sent
    yield client
    client.close()


@pytest.mark.parametrize("not_a_client", [None, "127.0.0.1:2181", 42, object()])
def test_a_client_that_is_not_a_kazoo_client_is_refused(not_a_client):
    with pytest.raises(UsageError, match="KazooClient"):
        zklock.Lock(not_a_client, "/locks/a")
    with pytest.raises(UsageError, match="KazooClient"):
        zklock.locked(not_a_client, "/locks/a")


@pytest.mark.parametrize(
    "retry", [tenacity.stop_after_attempt(3), tenacity.Retrying(), "3 tries", 3]
)
def test_a_retry_that_is_not_a_retry_policy_is_refused(client, retry):
    # A tenacity user's likely slip: the stop or the Retrying itself instead of a policy.
    with pytest.raises(UsageError, match="RetryPolicy"):
        zklock.Lock(client, "/locks/a", retry=retry)
    with pytest.raises(UsageError, match="RetryPolicy"):
        zklock.locked(client, "/locks/a", retry=retry)


@pytest.mark.parametrize("listener", ["on_change", 42, 0, ""])
def test_a_listener_that_cannot_be_called_is_refused(client, listener):
    # A falsy one too: it used to be dropped without a word.
    with pytest.raises(UsageError, match="listener"):
        zklock.Lock(client, "/locks/a", listener=listener)


def test_good_arguments_are_kept(client):
    policy = zklock.RetryPolicy(request_timeout=2.0)
    seen = []
    lock = zklock.Lock(client, "/locks/a", retry=policy, listener=lambda lease, state: seen.append(state))
    assert lock._recipe.retry is policy and len(lock._listeners) == 1


async def _coroutine() -> None:
    return None


def _generator():
    yield 1


async def _async_generator():
    yield 1


class _AsyncCallable:
    async def __call__(self) -> None:
        return None


class _Callable:
    def __call__(self) -> int:
        return 1


class _GeneratorCallable:
    def __call__(self):
        yield 1


@pytest.mark.parametrize(
    "func",
    [
        _coroutine,
        _generator,
        _async_generator,
        _AsyncCallable(),
        functools.partial(_AsyncCallable()),
        functools.partial(functools.partial(_GeneratorCallable())),
        functools.partial(_coroutine),
    ],
)
def test_decorating_what_a_lock_cannot_cover_is_refused(client, func):
    # Calling these only makes a coroutine or generator: the lock would be released before
    # the body ran, which would then run unprotected.
    lock = zklock.Lock(client, "/locks/a")
    with pytest.raises(UsageError, match="coroutine or generator"):
        lock(func)
    with pytest.raises(UsageError, match="coroutine or generator"):
        lock.hold(timeout=1)(func)
    with pytest.raises(UsageError, match="coroutine or generator"):
        zklock.locked(client, "/locks/a")(func)


@pytest.mark.parametrize(
    "wrapped", [staticmethod(_coroutine), staticmethod(lambda: 1), classmethod(lambda cls: 1)]
)
def test_decorating_a_staticmethod_or_classmethod_object_is_refused(client, wrapped):
    # Above @staticmethod the wrapper hid an async body from the check (it then ran unlocked);
    # above @classmethod the call failed with a bare TypeError.
    lock = zklock.Lock(client, "/locks/a")
    for decorate in (lock, lock.hold(timeout=1), zklock.locked(client, "/locks/a")):
        with pytest.raises(UsageError, match="below @"):
            decorate(wrapped)


@pytest.mark.parametrize("not_callable", [3, "job", None])
def test_decorating_what_cannot_be_called_is_refused_at_once(client, not_callable):
    # Not when the wrapper is first called, after the lock was taken for it.
    lock = zklock.Lock(client, "/locks/a")
    for decorate in (lock, lock.hold(timeout=1), zklock.locked(client, "/locks/a")):
        with pytest.raises(UsageError, match="decorates a function"):
            decorate(not_callable)


def test_plain_functions_are_still_decorated(client):
    lock = zklock.Lock(client, "/locks/a")

    def job() -> int:
        return 1

    assert callable(lock(job)) and callable(lock.hold()(job))
    assert zklock.locked(client, "/locks/a")(job).lock.path == "/locks/a"


@pytest.mark.parametrize("blocking", [None, "no", "", 1.0, [True]])
def test_a_blocking_that_is_not_a_bool_is_refused(client, blocking):
    # threading.Lock takes a bool or an int; anything else would pass for a truth value here
    # ("no" would block).  Refused before anything is asked of the (never started) client.
    lock = zklock.Lock(client, "/locks/a")
    with pytest.raises(UsageError, match="blocking"):
        lock.acquire(blocking=blocking)


def test_a_bool_or_an_int_blocking_is_taken_as_threading_lock_takes_it(client):
    lock = zklock.Lock(client, "/locks/a")
    for blocking in (True, False, 0, 1):
        with pytest.raises(zklock.ClientNotConnected):  # got past the argument check
            lock.acquire(blocking=blocking)


@pytest.mark.parametrize(
    "chroot, path, refused",
    [
        ("/zookeeper", "/locks/a", True),  # lands in /zookeeper/locks/a on the server
        ("/zookeeper/sub", "/a", True),
        ("/app", "/zookeeper/a", False),  # lands in /app/zookeeper/a: an ordinary path
        ("/zookeeperish", "/a", False),
        ("", "/zookeeper/a", True),
    ],
)
def test_paths_under_zookeeper_are_refused_where_the_chroot_puts_them(chroot, path, refused):
    client = KazooClient(hosts=f"127.0.0.1:1{chroot}")  # never started: nothing is sent
    try:
        if refused:
            with pytest.raises(zklock.InvalidPath, match="/zookeeper belong to ZooKeeper"):
                zklock.Lock(client, path)
        else:
            assert zklock.Lock(client, path).path == path
    finally:
        client.close()


@pytest.mark.parametrize("flag", ["no", 0, None])
def test_raise_on_lost_must_be_a_bool(client, flag):
    lock = zklock.Lock(client, "/locks/a")
    with pytest.raises(UsageError, match="raise_on_lost"):
        lock.hold(raise_on_lost=flag)
    with pytest.raises(UsageError, match="raise_on_lost"):
        zklock.Hold(lock, None, flag)


def test_a_hold_made_directly_checks_its_arguments_as_hold_does(client):
    lock = zklock.Lock(client, "/locks/a")
    with pytest.raises(zklock.InvalidTimeout):
        zklock.Hold(lock, -5, True)
    with pytest.raises(UsageError, match=r"zklock\.Lock"):
        zklock.Hold("/locks/a", None, True)  # type: ignore[arg-type]


def test_decorating_a_callable_object_or_a_class_is_accepted(client):
    lock = zklock.Lock(client, "/locks/a")
    assert callable(lock(_Callable()))
    assert callable(lock(_Callable))


class _NoNotes(Exception):
    add_note = None  # as every exception before Python 3.11


def test_a_note_that_cannot_be_added_is_logged_instead(caplog):
    from zklock.lock import _add_note

    with caplog.at_level("WARNING", logger="zklock.lock"):
        _add_note(_NoNotes("body failed"), "zklock: the lock was lost while this block ran")
    assert [r.getMessage() for r in caplog.records] == [
        "zklock: the lock was lost while this block ran (while _NoNotes('body failed') was raised)"
    ]


def test_a_lock_cannot_be_copied_or_pickled(client):
    import copy
    import pickle

    lock = zklock.Lock(client, "/locks/a")
    for duplicate in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(UsageError, match="cannot be"):
            duplicate(lock)


def test_a_chroot_of_slash_is_no_chroot_for_the_zookeeper_check():
    from zklock.errors import InvalidPath

    client = KazooClient(hosts="127.0.0.1:1//")  # kazoo's chroot: "/"
    assert client.chroot == "/"
    with pytest.raises(InvalidPath, match="belong to ZooKeeper"):
        zklock.Lock(client, "/zookeeper/quota")
