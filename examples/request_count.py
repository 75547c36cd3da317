"""How many requests a lock costs, read off kazoo's own log lines.

    python examples/request_count.py [HOSTS]

``zklock.testing.KazooTraffic`` records what a kazoo client writes to ZooKeeper and reads back
(requests, replies, watch events), from the DEBUG lines kazoo logs on the client's logger;
nothing is patched. Giving each client a logger of its own keeps their traffic apart. This
example records:

1. one acquire+release of a ``zklock.Lock`` (the create and the listing go out back to back,
   then one delete), and a second one on the same Lock;
2. the same two cycles of kazoo's own ``Lock`` recipe, for comparison;
3. a hand-off: a waiter right behind the holder takes the lock on the deletion notice alone.

Needs ``pip install zklock[testing]`` (``KazooTraffic`` lives in ``zklock.testing``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import Any, Callable

from _common import connected, contenders_left, scratch_path, zookeeper
from kazoo.recipe.lock import Lock as KazooLock

import zklock

try:
    from zklock.testing import KazooTraffic, wait_until
except ImportError as missing:
    sys.exit(f"this example needs `pip install zklock[testing]`: {missing}")


def one_cycle(lock: Any, traffic: KazooTraffic) -> list[str]:
    """Acquire and release ``lock`` once; return the requests its client sent meanwhile."""
    traffic.take()
    lock.acquire()
    lock.release()
    return traffic.sent()


def recorded(name: str) -> tuple[logging.Logger, Callable[[], Any]]:
    """A logger of its own for one client, and a ``KazooTraffic.recording`` of it."""
    logger = logging.getLogger(f"example.{name}")
    return logger, lambda: KazooTraffic.recording(logger)


def main(hosts: str) -> int:
    zk_logger, zk_recording = recorded("zklock")
    kazoo_logger, kazoo_recording = recorded("kazoo")
    waiter_logger, waiter_recording = recorded("waiter")
    with connected(hosts, logger=zk_logger) as client, \
            connected(hosts, logger=kazoo_logger) as kazoo_client, \
            connected(hosts, logger=waiter_logger) as waiter_client, \
            scratch_path(client, "requests") as root:
        path = f"{root}/report"
        client.ensure_path(path)  # as an application's lock path that exists already

        # 1. zklock: three requests a cycle, the first two sent back to back.
        lock = zklock.Lock(client, path)
        with zk_recording() as traffic:
            first = one_cycle(lock, traffic)
            second = one_cycle(lock, traffic)
        print(f"zklock Lock, first cycle:  {len(first)} requests {first}")
        print(f"zklock Lock, second cycle: {len(second)} requests {second}")

        # 2. kazoo's Lock recipe on the same path, reused as an application would.
        kazoo_lock = KazooLock(kazoo_client, path)
        with kazoo_recording() as traffic:
            first = one_cycle(kazoo_lock, traffic)
            second = one_cycle(kazoo_lock, traffic)
        print(f"kazoo Lock, first cycle:   {len(first)} requests {first}")
        print(f"kazoo Lock, second cycle:  {len(second)} requests {second}")

        # 3. A hand-off: the waiter queued right behind the holder needs no request once the
        #    holder's node is deleted; it hears a watch event and holds.
        waiter = zklock.Lock(waiter_client, path, identifier="waiter")
        held = threading.Event()
        with waiter_recording() as traffic:
            lock.acquire()

            def wait_for_it() -> None:
                if waiter.acquire(timeout=10):
                    held.set()

            thread = threading.Thread(target=wait_for_it)
            thread.start()
            # Queued once the waiter's watch on the holder's node is answered.
            queued = wait_until(lambda: ("reply", "GetData") in traffic.seen, timeout=10)
            traffic.take()
            lock.release()
            thread.join(timeout=15)
            hand_off = traffic.take()
        if not queued:
            print("FAILED: the waiter never queued")
            return 1
        print(f"waiter holds after the release: {held.is_set()}")
        print(f"waiter's traffic during the hand-off: {hand_off}")
        if not held.is_set():
            print("FAILED: the waiter did not get the lock")
            return 1
        waiter.release()
        if contenders_left(client, path):
            print("FAILED: contender nodes were left")
            return 1
    print("OK")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("hosts", nargs="?", help="ZooKeeper hosts (default: ZKLOCK_HOSTS, or a container)")
    args = parser.parse_args()
    with zookeeper(args.hosts) as found:
        sys.exit(main(found))
