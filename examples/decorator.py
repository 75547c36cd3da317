"""Locks as decorators: ``@lock``, ``@lock.hold(timeout=...)`` and ``@zklock.locked(...)``.

    python examples/decorator.py [HOSTS]

Each call of a decorated function runs holding the lock. Threads of one process may share one
``Lock``: they take turns locally and never queue more than one node in ZooKeeper.
"""

from __future__ import annotations

import sys
import threading
import time

from _common import connected, scratch_path, verdict, zookeeper

import zklock


def main(hosts: str) -> int:
    with connected(hosts) as client, connected(hosts) as rival_client:
        with scratch_path(client, "decorator") as root:
            problems = run(client, rival_client, root)
    return verdict(problems)


def run(client, rival_client, root: str) -> list[str]:
    problems: list[str] = []

    # 1. A Lock is itself a decorator (it waits with no time limit, like `with lock:`).
    cleanup_lock = zklock.Lock(client, f"{root}/cleanup", identifier="cleanup-job")

    @cleanup_lock
    def cleanup() -> bool:
        return cleanup_lock.locked()

    print(f"@lock: held inside the call: {cleanup()}; after it: {cleanup_lock.locked()}")

    # 2. zklock.locked(client, path, timeout=...) builds the Lock for you; LockTimeout if the
    #    lock cannot be had in time.  Four threads call it at once: their calls never overlap.
    inside = 0
    overlaps = 0
    calls: list[str] = []

    @zklock.locked(client, f"{root}/nightly", timeout=10)
    def nightly_report(who: str) -> None:
        nonlocal inside, overlaps
        inside += 1
        overlaps += inside > 1
        calls.append(who)
        time.sleep(0.05)
        inside -= 1

    threads = [threading.Thread(target=nightly_report, args=(f"thread-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"@zklock.locked: {len(calls)} calls from 4 threads, one at a time: {calls}")
    if overlaps or len(calls) != 4:
        problems.append(f"{overlaps} overlapping calls, {len(calls)} calls")

    # The decorator keeps its Lock on the function, e.g. to see who holds or waits.
    print(f"  its lock: {nightly_report.lock!r}")

    # 3. On a method. The decorator needs the client when the class body runs, so here the class
    #    is made once the client exists; a module-level client works the same way.
    class Inventory:
        def __init__(self) -> None:
            self.stock = 0

        @zklock.locked(client, f"{root}/inventory", timeout=1)
        def restock(self, count: int) -> int:
            self.stock += count
            return self.stock

    inventory = Inventory()
    print(f"method: restock(5) -> {inventory.restock(5)}, restock(3) -> {inventory.restock(3)}")

    # 4. When another process holds the lock past the timeout, the call raises LockTimeout and
    #    the function does not run.
    rival = zklock.Lock(rival_client, f"{root}/inventory", identifier="rival")
    with rival:
        started = time.monotonic()
        try:
            inventory.restock(100)
            problems.append("restock ran while the rival held the lock")
        except zklock.LockTimeout as error:
            waited = time.monotonic() - started
            print(f"method while a rival holds the lock: LockTimeout after {waited:.1f} s ({error})")
    if inventory.stock != 8:
        problems.append(f"stock is {inventory.stock}, expected 8")

    # 5. lock.hold(timeout=...) is a decorator too, with the timeout of your choice per use.
    report_lock = zklock.Lock(client, f"{root}/export", identifier="exporter")

    @report_lock.hold(timeout=3)
    def export() -> int:
        lease = report_lock.lease
        assert lease is not None
        lease.check()
        return lease.token

    print(f"@lock.hold(timeout=3): ran with fencing token {export()}")

    left = [name for name in client.get_children(root) if client.get_children(f"{root}/{name}")]
    if left:
        problems.append(f"contender nodes left under {left}")
    return problems


if __name__ == "__main__":
    with zookeeper(sys.argv[1] if len(sys.argv) > 1 else None) as hosts:
        sys.exit(main(hosts))
