"""zklock's lean kazoo handler: the same locks, a shorter client path.

    python examples/lean_handler.py [HOSTS] [--cycles 300]

``LeanHandler`` is passed to kazoo through its public ``handler`` argument; nothing else in
the application changes. This example opens one client on kazoo's stock handler and one on
``LeanHandler``, shows that their locks exclude each other on the same path (they run the same
recipe), marks a watch callback of its own with ``runs_inline``, and prints the median
acquire+release time of each client over ``--cycles`` cycles. Those two figures are what this
run measured on this machine, printed for information; ``python -m benchmarks.run`` is the
measurement (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

from _common import connected, contenders_left, scratch_path, zookeeper

import zklock
from zklock.handler import LeanHandler, runs_inline


def median_cycle_us(lock: zklock.Lock, cycles: int) -> float:
    """The median time of one acquire+release of ``lock``, in microseconds."""
    times = []
    for _ in range(cycles):
        started = time.perf_counter()
        with lock:
            pass
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main(hosts: str, cycles: int) -> int:
    with connected(hosts) as stock_client, connected(hosts, handler=LeanHandler()) as lean_client:
        print(f"stock client handler: {type(stock_client.handler).__name__}")
        print(f"lean client handler:  {type(lean_client.handler).__name__}")
        with scratch_path(stock_client, "lean") as root:
            path = f"{root}/report"
            stock = zklock.Lock(stock_client, path, identifier="stock")
            lean = zklock.Lock(lean_client, path, identifier="lean")

            # 1. One recipe: a lock on either client excludes the other.
            with lean as lease:
                print(f"lean holds {path} (token {lease.token})")
                print(f"stock acquire(blocking=False) -> {stock.acquire(blocking=False)}")
            with stock as lease:
                print(f"stock holds it next (token {lease.token})")
                print(f"lean acquire(blocking=False) -> {lean.acquire(blocking=False)}")

            # 2. Your own callbacks: one marked runs_inline runs on kazoo's connection thread
            #    under LeanHandler (it must be quick and never wait for a reply).
            fired = threading.Event()

            @runs_inline
            def on_change(event: object) -> None:
                fired.set()

            data_path = f"{root}/data"
            lean_client.create(data_path, b"v1", makepath=True)
            lean_client.get(data_path, watch=on_change)
            stock_client.set(data_path, b"v2")
            print(f"inline watch callback fired: {fired.wait(5)}")

            # 3. What this run measured (informational; the benchmark suite is the measurement).
            for lock in (stock, lean):  # warm both up before timing
                median_cycle_us(lock, 20)
            stock_us = median_cycle_us(stock, cycles)
            lean_us = median_cycle_us(lean, cycles)
            print(f"median acquire+release over {cycles} cycles: stock {stock_us:.0f} us, "
                  f"lean {lean_us:.0f} us")

            if contenders_left(stock_client, path) or not fired.is_set():
                return 1
    print("OK")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("hosts", nargs="?", help="ZooKeeper hosts (default: ZKLOCK_HOSTS or a container)")
    parser.add_argument("--cycles", type=int, default=300, help="timed cycles per client (default 300)")
    args = parser.parse_args()
    if args.cycles < 1:
        parser.error("--cycles must be at least 1")
    with zookeeper(args.hosts) as hosts:
        sys.exit(main(hosts, args.cycles))
