"""The lock as a context manager, and the threading.Lock-style calls around it.

    python examples/with_statement.py [HOSTS]

Two clients stand for two processes: ``alice`` holds the lock while ``bob`` tries to get it
without waiting, with a short timeout, and with ``hold()``, which raises instead of returning.
"""

from __future__ import annotations

import sys
import time

from _common import connected, scratch_path, zookeeper

import zklock


def main(hosts: str) -> int:
    with connected(hosts) as alice_client, connected(hosts) as bob_client:
        with scratch_path(alice_client, "with") as root:
            path = f"{root}/report"
            alice = zklock.Lock(alice_client, path, identifier="alice")
            bob = zklock.Lock(bob_client, path, identifier="bob")

            # 1. `with lock` waits as long as it takes and gives the lease.
            with alice as lease:
                print(f"alice holds {lease.path}")
                print(f"  node  {lease.node}")
                print(f"  token {lease.token} (pass it to whatever the lock protects)")
                print(f"  state {lease.state.value}, valid={lease.valid}, locked()={alice.locked()}")
                queue = [(c.identifier, c.token) for c in alice.contenders()]
                print(f"  queue {queue}")

                # 2. Meanwhile bob: one try, a bounded wait, and hold() that raises.
                print(f"bob acquire(blocking=False) -> {bob.acquire(blocking=False)}")
                started = time.monotonic()
                got = bob.acquire(timeout=0.5)
                print(f"bob acquire(timeout=0.5) -> {got} after {time.monotonic() - started:.1f} s")
                try:
                    with bob.hold(timeout=0.2):
                        print("never printed: alice holds the lock")
                except zklock.LockTimeout as error:
                    print(f"bob hold(timeout=0.2) raised LockTimeout: {error}")
                lease.check()  # raises LockLost / LockInDoubt if the lease is no longer sound
            print(f"alice left the block: lease {lease.state.value}, locked()={alice.locked()}")

            # 3. Now bob gets it at once; hold() takes a timeout and also gives the lease.
            with bob.hold(timeout=5) as bob_lease:
                print(f"bob holds it, token {bob_lease.token} > {lease.token}: "
                      f"{bob_lease.token > lease.token}")

            # 4. Explicit calls, as with threading.Lock.
            if alice.acquire(timeout=5):
                try:
                    print(f"alice acquire() -> True, token {alice.lease.token}")
                finally:
                    alice.release()
            try:
                alice.release()
            except zklock.NotHeld:
                print("a second release() raises NotHeld (a RuntimeError, as with threading.Lock)")

            assert not alice.locked() and not bob.locked()
            left = alice_client.get_children(path)
            print(f"contender nodes left under the lock: {len(left)}")
            if left:
                return 1
    print("OK")
    return 0


if __name__ == "__main__":
    with zookeeper(sys.argv[1] if len(sys.argv) > 1 else None) as hosts:
        sys.exit(main(hosts))
