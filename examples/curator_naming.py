"""Sharing a lock path with Java services that use Apache Curator's InterProcessMutex.

    python examples/curator_naming.py [HOSTS]

``zklock.Lock(client, path, naming=zklock.NodeNaming.CURATOR)`` names its nodes the way
Curator's mutex does (``_c_<uuid>-lock-<sequence>``), so Curator contenders see zklock in the
queue.  Java is not needed here: a node created exactly as InterProcessMutex creates it stands
in for a Curator process (tests/integration/test_curator_interop.py runs the real thing).

The last part shows what goes wrong when a recipe cannot read the others' names: kazoo's own
``Lock`` ignores Curator-named nodes unless given ``extra_lock_patterns``, and Curator (see
docs/interop.md) sorts kazoo-named nodes behind its own, so a path shared with Curator must
have no kazoo-named contenders.
"""

from __future__ import annotations

import sys
import uuid

from _common import connected, contenders_left, scratch_path, zookeeper
from kazoo.exceptions import LockTimeout as KazooLockTimeout
from kazoo.recipe.lock import Lock as KazooLock

import zklock


def curator_sort_key(name: str) -> str:
    """How Curator's mutex orders a path's children: the text after the last "lock-" in a name,
    or the whole name if it has none (so kazoo's ``<hex>__lock__<seq>`` names sort last)."""
    _head, found, tail = name.rpartition("lock-")
    return tail if found else name


def main(hosts: str) -> int:
    failures = 0
    with connected(hosts) as alice_client, connected(hosts) as java_client, connected(hosts) as bob_client:
        with scratch_path(alice_client, "curator") as root:
            path = f"{root}/nightly-export"
            # 1. A zklock contender named for Curator's mutex.
            alice = zklock.Lock(alice_client, path, identifier="alice", naming=zklock.NodeNaming.CURATOR)
            with alice.hold(timeout=5) as lease:
                print(f"alice (zklock, NodeNaming.CURATOR) holds {path}")
                print(f"  node  {lease.node.rsplit('/', 1)[1]}")

                # 2. A Java service's InterProcessMutex joins the queue (stand-in: the same create).
                java_node = java_client.create(
                    f"{path}/_c_{uuid.uuid4()}-lock-", b"10.0.0.7", ephemeral=True, sequence=True
                )
                print(f"a Curator process queues behind her: {java_node.rsplit('/', 1)[1]}")

                # 3. zklock reads every naming: a kazoo-named zklock lock waits for both.
                bob = zklock.Lock(bob_client, path, identifier="bob")  # the default, kazoo naming
                print(f"bob (zklock, default naming) acquire(timeout=0.5) -> {bob.acquire(timeout=0.5)}")
                # bob's give-up deletes his node as it returns, without waiting for the answer:
                # his own session's next request is served after that delete, another's maybe not.
                queue = [(c.identifier, c.node.rsplit("-", 1)[1]) for c in bob.contenders()]
                print(f"zklock's view of the queue (identifier, sequence): {queue}")

                # 4. kazoo's Lock reads Curator's names only when told their marker.
                told = KazooLock(bob_client, path, extra_lock_patterns=["-lock-"])
                try:
                    told.acquire(timeout=0.5)
                    print("FAILED: kazoo's Lock with extra_lock_patterns took a held lock")
                    told.release()
                    failures += 1
                except KazooLockTimeout:
                    print("kazoo Lock(extra_lock_patterns=['-lock-']) acquire(timeout=0.5) -> LockTimeout")
                blind = KazooLock(bob_client, path)
                try:
                    blind.acquire(timeout=2)
                except KazooLockTimeout:
                    print("kazoo Lock() without them -> LockTimeout (this kazoo reads Curator's names)")
                else:
                    print("kazoo Lock() without them -> acquired while alice holds: WRONG, "
                          "it does not see Curator-named nodes")
                    names = sorted(bob_client.get_children(path), key=curator_sort_key)
                    print("  nor does Curator see kazoo-named nodes: it sorts by these keys, as text,")
                    print("  so a kazoo-named node comes after every Curator one, whatever its sequence:")
                    for name in names:
                        print(f"    key {curator_sort_key(name)[:16]!r:<18} {name}")
                    blind.release()

            # 5. alice released: the Curator process is next in line; bob still waits for it.
            print(f"alice released; bob acquire(timeout=0.5) -> {bob.acquire(timeout=0.5)} "
                  "(the Curator process holds now)")
            java_client.delete(java_node)  # the Java service releases
            if bob.acquire(timeout=5):
                print(f"the Curator process released; bob holds it, token {bob.lease.token}")
                bob.release()
            else:
                print("FAILED: bob did not get the lock after the Curator process released it")
                failures += 1

            failures += contenders_left(alice_client, path)
    print("OK" if failures == 0 else f"{failures} check(s) FAILED")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    with zookeeper(sys.argv[1] if len(sys.argv) > 1 else None) as hosts:
        sys.exit(main(hosts))
