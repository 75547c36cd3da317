"""ACLs and digest authentication: only clients with the service's credentials can take the lock.

    python examples/acl.py [HOSTS]

Two workers of the "reports" service authenticate with the same digest credentials, so the
lock's nodes get zklock's default ACL for authenticated clients: the service may do anything,
everyone else may only read.  An intruder with other credentials can see who holds the lock,
but can neither join the queue nor delete the holder's node: both get a clear, typed error.
"""

from __future__ import annotations

import sys

from _common import connected, scratch_path, zookeeper
from kazoo.client import KazooClient

import zklock
from zklock.errors import translate_kazoo_errors

SERVICE = [("digest", "reports:s3cret")]
INTRUDER = [("digest", "mallory:guess")]


def client(hosts: str, auth_data: list[tuple[str, str]]) -> KazooClient:
    started = KazooClient(hosts=hosts, auth_data=auth_data, timeout=10)
    started.start(timeout=15)
    return started


def main(hosts: str) -> None:
    with connected(hosts) as admin, scratch_path(admin, "acl") as root:
        admin.ensure_path(root)  # an open parent, as an operator would make it
        path = f"{root}/nightly-report"
        worker_a, worker_b = client(hosts, SERVICE), client(hosts, SERVICE)
        intruder = client(hosts, INTRUDER)
        try:
            lock_a = zklock.Lock(worker_a, path, "reports-worker-a")
            with lock_a.hold(timeout=10) as lease:
                acl, _ = admin.get_acls(path)
                entries = [f"{e.id.scheme}:{e.id.id} {'/'.join(e.acl_list)}" for e in acl]
                print("lock path ACL:", ", ".join(entries))
                print("worker-a holds the lock, token", lease.token)

                lock_b = zklock.Lock(worker_b, path, "reports-worker-b")
                print("worker-b (same credentials) acquire(timeout=0.3) ->", lock_b.acquire(timeout=0.3))
                # Giving up deletes worker-b's node without waiting for the answer; worker-b's
                # own next request is served after that delete.
                print("worker-b's view of the queue:", [c.identifier for c in lock_b.contenders()])

                queue = zklock.Lock(intruder, path).contenders()
                print("the intruder reads the queue:", [c.identifier for c in queue])
                try:
                    got = zklock.Lock(intruder, path).acquire(timeout=5)
                except zklock.NoAuthorization as error:
                    print("the intruder's acquire raised NoAuthorization:", error)
                else:
                    raise SystemExit(f"FAILED: the intruder's acquire returned {got}, not refused")
                try:
                    with translate_kazoo_errors():
                        intruder.delete(lease.node)
                except zklock.NoAuthorization:
                    print("the intruder's delete of the holder's node raised NoAuthorization")
                else:
                    raise SystemExit("FAILED: the intruder deleted the holder's node")
                lease.check()
                print("worker-a's lease is still valid:", lease.valid)
            with lock_b.hold(timeout=10) as lease_b:
                print("after the release worker-b holds it, token", lease_b.token)
            assert worker_a.get_children(path) == []
        finally:
            for each in (worker_a, worker_b, intruder):
                each.stop()
                each.close()
    print("OK")


if __name__ == "__main__":
    with zookeeper(sys.argv[1] if len(sys.argv) > 1 else None) as found:
        main(found)
