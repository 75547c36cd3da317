"""``hold(raise_on_lost=False)``: a block that ends after its lock was lost, without raising.

    python examples/hold_raise_on_lost.py [HOSTS]

By default, leaving a ``with lock.hold()`` block raises ``LockLost`` when the lease was lost
while the block ran: part of the body ran without the lock, and the caller must know.  A job
that wants to decide for itself (redo the work, mark it for a check) passes
``raise_on_lost=False`` and reads the lease after the block.  Here the session of a holder
expires in the middle of each block, once with the default and once without.
"""

from __future__ import annotations

import sys

from _common import connected, expect_no_contenders, expire_session, scratch_path, verdict, zookeeper

import zklock


def main(hosts: str) -> int:
    problems = []
    with connected(hosts) as client, scratch_path(client, "hold-lost") as root:
        path = f"{root}/export"
        lock = zklock.Lock(client, path, identifier="exporter")

        # 1. The default: leaving the block raises LockLost.
        try:
            with lock.hold(timeout=10) as lease:
                print(f"batch 1: holding, token {lease.token}")
                expire_session(hosts, client)  # a long pause, say: the session expires
                lease.lost.wait(10)  # the client learns it when it reconnects
                print(f"batch 1: lease {lease.state.value} before the end of the block")
        except zklock.LockLost as error:
            print(f"batch 1: leaving the block raised LockLost: {error}")
        else:
            problems.append("leaving the default hold() after a loss did not raise LockLost")

        # 2. raise_on_lost=False: the block ends quietly, and the job reads the lease itself.
        redo = []
        with lock.hold(timeout=10, raise_on_lost=False) as lease:
            print(f"batch 2: holding, token {lease.token}")
            expire_session(hosts, client)
            lease.lost.wait(10)
        print(f"batch 2: left the block without an exception; lease {lease.state.value} "
              f"({lease.reason})")
        if lease.state is zklock.LeaseState.LOST:
            redo.append(2)  # part of batch 2 ran unprotected: do it again under a new lease
        print(f"batches to redo: {redo}")
        if redo != [2]:
            problems.append("the lease of batch 2 does not say LOST")

        # 3. Without a loss, raise_on_lost=False changes nothing: the lease ends RELEASED.
        with lock.hold(timeout=10, raise_on_lost=False) as lease:
            print(f"batch 3: holding, token {lease.token}")
        print(f"batch 3: lease {lease.state.value}")
        if lease.state is not zklock.LeaseState.RELEASED:
            problems.append("batch 3's lease was not released")
        expect_no_contenders(client, path, problems)
    return verdict(problems)


if __name__ == "__main__":
    with zookeeper(sys.argv[1] if len(sys.argv) > 1 else None) as found:
        sys.exit(main(found))
