"""``Lock.cancel()``: end an acquire that another thread is waiting in.

    python examples/cancel.py [HOSTS]

A worker thread waits for a lock with no time limit; the main thread decides it should stop
waiting (a shutdown, say) and calls ``cancel()`` on the same ``Lock`` object.  The waiting
``acquire()`` raises ``AcquireCancelled`` and its node leaves the queue; the holder is not
affected, and an acquire that starts after the ``cancel()`` call is not cancelled.
"""

from __future__ import annotations

import sys
import threading
import time

from _common import connected, eventually, expect_no_contenders, scratch_path, verdict, zookeeper

import zklock


def main(hosts: str) -> int:
    problems = []
    with connected(hosts) as alice_client, connected(hosts) as bob_client:
        with scratch_path(alice_client, "cancel") as root:
            path = f"{root}/rebuild"
            alice = zklock.Lock(alice_client, path, identifier="alice")
            bob = zklock.Lock(bob_client, path, identifier="bob")
            outcome: list[object] = []

            def worker() -> None:
                try:
                    outcome.append(bob.acquire())  # no timeout: waits as long as alice holds
                except zklock.AcquireCancelled as error:
                    outcome.append(error)

            with alice.hold(timeout=10) as lease:
                # A daemon thread: were cancel() to fail, the example still ends (and says so).
                waiter = threading.Thread(target=worker, name="bob-worker", daemon=True)
                waiter.start()

                def queue() -> list[str]:
                    return [c.identifier for c in alice.contenders()]

                eventually(lambda: queue() == ["alice", "bob"])
                print(f"queue: {queue()} (bob's worker waits)")

                started = time.monotonic()
                bob.cancel()
                waiter.join(10)
                took = time.monotonic() - started
                if outcome and isinstance(outcome[0], zklock.AcquireCancelled):
                    print(f"bob's acquire raised AcquireCancelled {took:.2f} s after cancel()")
                else:
                    problems.append(f"bob's acquire was not cancelled: {outcome}")
                # Its node is deleted as the acquire returns; another session may list it
                # for a moment longer.
                eventually(lambda: queue() == ["alice"])
                print(f"queue: {queue()}; alice's lease still valid: {lease.valid}")
                if not lease.valid:
                    problems.append("the holder's lease was affected")

                later = bob.acquire(timeout=0.3)  # started after cancel(): waits normally
                print(f"bob acquire(timeout=0.3) after the cancel -> {later}")
                if later:
                    problems.append("bob got the lock while alice held it")

            if bob.acquire(timeout=5):
                print(f"alice released; bob acquire(timeout=5) -> True, token {bob.lease.token}")
                bob.release()
            else:
                problems.append("bob could not take the free lock")
            expect_no_contenders(alice_client, path, problems)
    return verdict(problems)


if __name__ == "__main__":
    with zookeeper(sys.argv[1] if len(sys.argv) > 1 else None) as found:
        sys.exit(main(found))
