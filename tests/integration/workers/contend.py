"""A contending process: N critical sections, each a read-modify-write of a counter znode.

Prints one JSON line per section: enter/exit on the monotonic clock (system-wide on Linux,
so comparable across processes) and the lease's fencing token.
"""

from __future__ import annotations

import json
import sys
import time

from kazoo.client import KazooClient

import zklock
from zklock.testing import handler_from_env


def main() -> int:
    hosts, path, counter, rounds, name = sys.argv[1:6]
    client = KazooClient(hosts=hosts, handler=handler_from_env(), timeout=10.0)
    client.start(timeout=15)
    try:
        lock = zklock.Lock(client, path, identifier=name)
        for _ in range(int(rounds)):
            with lock as lease:
                entered = time.monotonic()
                value, stat = client.get(counter)
                time.sleep(0.002)  # widen the window a lost update would need
                client.set(counter, str(int(value) + 1).encode(), version=stat.version)
                left = time.monotonic()
            print(json.dumps({"who": name, "enter": entered, "exit": left, "token": lease.token}))
            sys.stdout.flush()
    finally:
        client.stop()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
