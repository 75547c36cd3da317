"""ACLs, digest authentication and fork safety against a real ZooKeeper."""

from __future__ import annotations

import json
import os
import time

import pytest
from kazoo.exceptions import InvalidACLError, NoAuthError
from kazoo.security import ACL, Id, Permissions, make_digest_acl
from kazoo.security import ANYONE_ID_UNSAFE as ANYONE

import zklock
from zklock.acl import owner_with_world_read
from zklock.errors import translate_kazoo_errors
from zklock.testing import TcpProxy, wait_until

ALICE = [("digest", "alice:alice-secret")]
BOB = [("digest", "bob:bob-secret")]


@pytest.fixture
def lock_path(zk_client, zk_path):
    # The test root is made open by an anonymous client, as an operator would; only the lock
    # path below it is created by the lock, with the lock's ACL.
    zk_client.ensure_path(zk_path)
    return f"{zk_path}/lock"


def test_default_acl_of_an_authenticated_client_is_owner_all_world_read(zk_client_factory, lock_path):
    alice = zk_client_factory(auth_data=ALICE)
    with zklock.Lock(alice, lock_path) as lease:
        parent_acl, _ = alice.get_acls(lock_path)
        node_acl, _ = alice.get_acls(lease.node)
    expected_owner = make_digest_acl("alice", "alice-secret", all=True)
    for acl in (parent_acl, node_acl):
        assert sorted(acl, key=str) == sorted([expected_owner, ACL(Permissions.READ, ANYONE)], key=str)


def test_other_credentials_cannot_steal_delete_or_join_a_held_lock(zk_client_factory, lock_path):
    alice = zk_client_factory(auth_data=ALICE)
    bob = zk_client_factory(auth_data=BOB)
    anonymous = zk_client_factory()
    holder = zklock.Lock(alice, lock_path, "alice")
    assert holder.acquire(timeout=10)
    try:
        for intruder in (bob, anonymous):
            # Joining the queue needs CREATE on the parent: refused at once, with a typed error.
            started = time.monotonic()
            with pytest.raises(zklock.NoAuthorization, match="may not join the lock's queue") as info:
                zklock.Lock(intruder, lock_path).acquire(timeout=30)
            assert isinstance(info.value.__cause__, NoAuthError)  # kazoo's, as errors.md says
            assert time.monotonic() - started < 10  # a definite answer, not a wait
            # Deleting the holder's node needs DELETE on the parent: refused too.
            with pytest.raises(NoAuthError):
                intruder.delete(holder.lease.node)
            with pytest.raises(zklock.NoAuthorization), translate_kazoo_errors():
                intruder.delete(holder.lease.node)
            # ...but everyone may read the queue.
            assert [c.identifier for c in zklock.Lock(intruder, lock_path).contenders()] == ["alice"]
        assert holder.lease.valid
        assert alice.exists(holder.lease.node) is not None
        assert alice.get_children(lock_path) == [holder.lease.node.rsplit("/", 1)[1]]
    finally:
        holder.release()


def test_same_credentials_on_another_session_contend_normally(zk_client_factory, lock_path):
    first = zklock.Lock(zk_client_factory(auth_data=ALICE), lock_path)
    second = zklock.Lock(zk_client_factory(auth_data=ALICE), lock_path)
    assert first.acquire(timeout=10)
    assert second.acquire(timeout=0.5) is False
    first.release()
    assert second.acquire(timeout=10)
    second.release()


def test_an_explicit_acl_is_given_to_parent_and_node(zk_client_factory, lock_path):
    alice = zk_client_factory(auth_data=ALICE)
    acl = [
        make_digest_acl("alice", "alice-secret", all=True),
        make_digest_acl("bob", "bob-secret", read=True),
    ]
    with zklock.Lock(alice, lock_path, acl=acl) as lease:
        assert sorted(alice.get_acls(lock_path)[0], key=str) == sorted(acl, key=str)
        assert sorted(alice.get_acls(lease.node)[0], key=str) == sorted(acl, key=str)
        # bob may read, the anonymous world may not even list the queue.
        assert len(zklock.Lock(zk_client_factory(auth_data=BOB), lock_path).contenders()) == 1
        with pytest.raises(zklock.NoAuthorization):
            zklock.Lock(zk_client_factory(), lock_path).contenders()
    alice.delete(lock_path)  # the anonymous leak check could not even list it


def test_without_credentials_the_default_is_kazoos(zk_client, lock_path):
    with zklock.Lock(zk_client, lock_path):
        acl, _ = zk_client.get_acls(lock_path)
    assert [(entry.perms, entry.id.scheme) for entry in acl] == [(Permissions.ALL, "world")]


@pytest.mark.parametrize(
    "acl, message",
    [
        ([], "empty"),
        ("world:anyone", "list"),
        ([("world", "anyone")], "entries"),
        ([ACL(Permissions.READ, owner_with_world_read()[1].id)], "DELETE"),
        ([ACL(Permissions.CREATE | Permissions.DELETE | Permissions.WRITE, ANYONE)], "READ"),
        ([ACL("31", ANYONE)], "invalid permissions"),  # type: ignore[arg-type]
        ([ACL(True, ANYONE)], "invalid permissions"),
        ([ACL(Permissions.ALL, ("world", "anyone"))], "Id"),  # type: ignore[arg-type]
        ([ACL(Permissions.ALL, Id("world", "nobody"))], "'anyone'"),
        ([ACL(Permissions.ALL, Id("digest", "alice-secret"))], "user:base64-digest"),
        ([ACL(Permissions.ALL, Id("digest", "alice:"))], "user:base64-digest"),
        # The password where its digest belongs, user and all: ZooKeeper would store it.
        ([ACL(Permissions.ALL, Id("digest", "alice:alice-secret"))], "user:base64-digest"),
        ([ACL(Permissions.ALL, Id("digest", "alice:c2VjcmV0"))], "user:base64-digest"),
    ],
)
def test_bad_acls_are_refused_before_anything_is_sent(zk_client, lock_path, acl, message):
    with pytest.raises(zklock.InvalidAcl, match=message):
        zklock.Lock(zk_client, lock_path, acl=acl)
    assert zk_client.exists(lock_path) is None


@pytest.mark.parametrize(
    "ident", [Id("world", "nobody"), Id("digest", "alice-secret"), Id("no-such-scheme", "x")]
)
def test_an_acl_the_server_refuses_is_an_invalid_acl_and_leaves_nothing(zk_client, lock_path, ident):
    # The first two are also refused when the lock is made (above); sent anyway, the server
    # refuses them as it refuses a scheme it does not know, which only it can judge.
    lock = zklock.Lock(zk_client, lock_path, acl=[ACL(Permissions.ALL, ANYONE)])
    lock._recipe.acl = [ACL(Permissions.ALL, ident)]  # past the check, as a server-side plug-in's id
    with pytest.raises(zklock.InvalidAcl, match="refused the lock's acl") as info:
        lock.acquire(timeout=10)
    assert isinstance(info.value.__cause__, InvalidACLError)
    assert zk_client.exists(lock_path) is None


def test_an_acl_without_create_serves_a_lock_path_made_beforehand(zk_client, lock_path):
    # Restricting who may contend is done on the lock path itself; the lock's own ACL then
    # reaches only its contender nodes, where CREATE means nothing.
    zk_client.ensure_path(lock_path)
    acl = [ACL(Permissions.READ | Permissions.WRITE | Permissions.DELETE | Permissions.ADMIN, ANYONE)]
    with zklock.Lock(zk_client, lock_path, acl=acl) as lease:
        node_acl, _ = zk_client.get_acls(lease.node)
        assert [entry.perms for entry in node_acl] == [acl[0].perms]
    assert zk_client.get_children(lock_path) == []


def test_a_lock_path_under_a_parent_without_create_is_refused_with_kazoos_error(
    zk_client_factory, lock_path
):
    owner = zk_client_factory()
    owner.ensure_path(lock_path)
    owner.set_acls(lock_path, [ACL(Permissions.READ | Permissions.DELETE, ANYONE)])
    lock = zklock.Lock(zk_client_factory(), f"{lock_path}/inner")
    with pytest.raises(zklock.NoAuthorization, match="may not create the lock path") as info:
        lock.acquire(timeout=10)
    assert isinstance(info.value.__cause__, NoAuthError)
    assert owner.get_children(lock_path) == []


def test_the_auth_scheme_needs_an_authenticated_client(zk_client, lock_path):
    with pytest.raises(zklock.InvalidAcl, match="authenticated"):
        zklock.Lock(zk_client, lock_path, acl=owner_with_world_read())


# ------------------------------------------------------------------ fork safety
def _in_child(steps: dict[str, object]) -> dict[str, str]:
    """Fork; in the child run each step and report how it ended (the class name it raised)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running any parent cleanup
        os.close(read_end)
        outcome: dict[str, str] = {}
        for name, step in steps.items():
            try:
                step()  # type: ignore[operator]
                outcome[name] = "returned"
            except BaseException as error:
                outcome[name] = type(error).__name__
        os.write(write_end, json.dumps(outcome).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return json.loads(data)


def test_a_lock_and_lease_used_after_fork_raise_in_the_child(zk_client, zk_path):
    lock = zklock.Lock(zk_client, f"{zk_path}/lock")
    assert lock.acquire(timeout=10)
    lease = lock.lease
    outcome = _in_child({
        "lease.check": lease.check,
        "lease.valid": lambda: None if not lease.valid else 1 / 0,
        "lock.release": lock.release,
        "lock.acquire": lambda: lock.acquire(timeout=1),
        "lock.locked": lock.locked,
        "new lock on the parent's client": (
            lambda: zklock.Lock(zk_client, f"{zk_path}/other").acquire(timeout=1)
        ),
    })
    assert outcome == {
        "lease.check": "UsedAfterFork",
        "lease.valid": "returned",  # False in the child: it holds nothing
        "lock.release": "UsedAfterFork",
        "lock.acquire": "UsedAfterFork",
        "lock.locked": "UsedAfterFork",
        "new lock on the parent's client": "UsedAfterFork",
    }
    # The parent still holds its lock: the child neither released nor stole it.
    assert lease.valid and lock.locked()
    assert zk_client.exists(lease.node) is not None
    lock.release()
    assert zk_client.get_children(f"{zk_path}/lock") == []


def test_a_holder_without_read_on_its_own_node_is_held_again_after_a_reconnect(
    zookeeper, zk_client_factory, zk_client, lock_path
):
    # The reconnect's check that the node is still ours must not need READ on it: an ACL may
    # keep READ for an auditor alone.  Refused, the lease would stay SUSPENDED while connected.
    zk_client.ensure_path(lock_path)  # an open parent: the holder may list the queue
    alice_id = make_digest_acl("alice", "alice-secret").id
    bob_id = make_digest_acl("bob", "bob-secret").id
    acl = [
        ACL(Permissions.CREATE | Permissions.DELETE | Permissions.WRITE | Permissions.ADMIN, alice_id),
        ACL(Permissions.READ, bob_id),
    ]
    with TcpProxy(zookeeper.connect_string) as proxy:
        alice = zk_client_factory(hosts=proxy.connect_string, auth_data=ALICE, timeout=6.0)
        heard: list[zklock.LeaseState] = []
        lock = zklock.Lock(alice, lock_path, "alice", acl=acl,
                           listener=lambda _lease, state: heard.append(state))
        assert lock.acquire(timeout=10)
        with pytest.raises(NoAuthError):
            alice.get(lock.lease.node)  # indeed no READ for the holder
        assert proxy.drop() == 1
        assert wait_until(lambda: heard[-1:] == [zklock.LeaseState.HELD], 10), heard
        assert heard == [zklock.LeaseState.SUSPENDED, zklock.LeaseState.HELD]
        lock.release()
        alice.stop()  # through the proxy, before it closes
