"""Hold a lock, then report what the lease says on the first step after a freeze (SIGSTOP)."""

from __future__ import annotations

import json
import sys
import time

from kazoo.client import KazooClient

import zklock
from zklock.testing import handler_from_env


def main() -> int:
    hosts, path, session_timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    client = KazooClient(hosts=hosts, handler=handler_from_env(), timeout=session_timeout)
    client.start(timeout=15)
    lock = zklock.Lock(client, path, identifier="frozen")
    lock.acquire()
    lease = lock.lease
    assert lease is not None
    last = time.monotonic()  # before telling the parent, which may freeze us right after
    print(json.dumps({"held": lease.token}), flush=True)
    while True:
        time.sleep(0.01)
        now = time.monotonic()
        if now - last > session_timeout / 2:  # we were frozen
            state = lease.state  # the very first look after waking
            valid = lease.valid
            try:
                lease.check()
                checked = "passed"
            except zklock.LeaseError as error:
                checked = type(error).__name__
            print(json.dumps({
                "gap": now - last, "state": state.value, "valid": valid, "check": checked,
                "reason": lease.reason,
            }), flush=True)
            break
        last = now
    try:
        lock.release()
    except zklock.LockLost:
        pass
    client.stop()
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
