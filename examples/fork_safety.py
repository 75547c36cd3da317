"""Fork safety: a lock or lease made before os.fork() refuses to work in the child.

    python examples/fork_safety.py [HOSTS]

A forked child inherits the parent's ZooKeeper session but none of its threads.  Were it to
release the lock, it would delete the parent's node; were it to trust the lease, it would act
as a holder it is not.  zklock raises UsedAfterFork instead; the child makes its own client.
"""

from __future__ import annotations

import os
import sys

from _common import connected, scratch_path, zookeeper

import zklock


def child(lock: zklock.Lock, hosts: str, path: str) -> int:
    lease = lock.lease
    assert lease is not None
    print(f"child: lease.valid -> {lease.valid}")
    for what, action in (("lease.check()", lease.check), ("lock.release()", lock.release)):
        try:
            action()
        except zklock.UsedAfterFork:
            print(f"child: {what} raised UsedAfterFork")
    with connected(hosts) as own_client:  # the right way: a client of the child's own
        own = zklock.Lock(own_client, path, "child")
        print("child: its own lock, acquire(timeout=0.3) ->", own.acquire(timeout=0.3))
    return 0


def main(hosts: str) -> None:
    with connected(hosts) as client, scratch_path(client, "fork") as root:
        path = f"{root}/lock"
        lock = zklock.Lock(client, path, "parent")
        with lock.hold(timeout=10) as lease:
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    code = child(lock, hosts, path)
                finally:
                    sys.stdout.flush()
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            still_held = lease.valid and client.exists(lease.node) is not None
            print("parent: child exited with", code)
            print("parent: still holds the lock:", still_held)
            if code != 0 or not still_held:
                raise SystemExit("FAILED: the child failed, or the parent lost its lock")
    print("OK")


if __name__ == "__main__":
    with zookeeper(sys.argv[1] if len(sys.argv) > 1 else None) as found:
        main(found)
