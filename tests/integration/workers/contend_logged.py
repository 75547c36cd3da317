"""A contending zklock process that writes the same shared log as the Java Curator contender.

    contend_logged.py HOSTS LOCK_PATH COUNTER_PATH ROUNDS LOG_FILE NAME [kazoo|curator]

Each of ROUNDS critical sections appends ``enter <name> <token>`` to LOG_FILE, does an unsafe
read-modify-write of the counter znode (a plain get and set, no version check), and appends
``exit <name> <token> <value read>``.  Lines are appended with O_APPEND under a POSIX record
lock (``fcntl.lockf``, the same kind of lock as Java's ``FileChannel.lock()``), so the order of
lines in the file is the real-time order of the appends across Python and Java processes alike;
no clock has to be compared between them (tests/integration/curator/CuratorContender.java
explains the scheme).
"""

from __future__ import annotations

import fcntl
import os
import sys
import time

from kazoo.client import KazooClient

import zklock
from zklock.testing import handler_from_env


def append(fd: int, line: str) -> None:
    data = f"{line}\n".encode()
    fcntl.lockf(fd, fcntl.LOCK_EX)
    try:
        while data:
            data = data[os.write(fd, data):]
    finally:
        fcntl.lockf(fd, fcntl.LOCK_UN)


def main() -> int:
    hosts, path, counter, rounds, log_file, name = sys.argv[1:7]
    naming = zklock.NodeNaming(sys.argv[7]) if len(sys.argv) > 7 else zklock.NodeNaming.CURATOR
    fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    client = KazooClient(hosts=hosts, handler=handler_from_env(), timeout=10.0)
    client.start(timeout=15)
    try:
        lock = zklock.Lock(client, path, identifier=name, naming=naming)
        for _ in range(int(rounds)):
            with lock as lease:
                append(fd, f"enter {name} {lease.token}")
                value, _stat = client.get(counter)
                time.sleep(0.002)  # widen the window a second holder would need to lose an update
                client.set(counter, str(int(value) + 1).encode())
                append(fd, f"exit {name} {lease.token} {int(value)}")
    finally:
        client.stop()
        client.close()
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
