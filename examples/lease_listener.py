"""Lease listeners: be told when a held lock is in doubt, back, lost or released.

    python examples/lease_listener.py [HOSTS]

A listener is called as ``listener(lease, new_state)`` on every change of a lease's
``zklock.LeaseState``.  ``Lock(..., listener=fn)`` gives one to every lease the lock hands out;
``lease.add_listener(fn)`` adds one to a single lease.  Here a client reaches ZooKeeper through
a TCP proxy, which drops its connection (the lease goes SUSPENDED, then HELD again once the
client reconnects with the same session); then the session is expired on the server (LOST).

Needs ``pip install zklock[testing]`` (the proxy is ``zklock.testing.TcpProxy``).
"""

from __future__ import annotations

import sys
import threading

from _common import (
    connected,
    eventually,
    expect_no_contenders,
    expire_session,
    scratch_path,
    verdict,
    zookeeper,
)

import zklock
from zklock import LeaseState
from zklock.testing import TcpProxy


def main(hosts: str) -> int:
    problems = []
    changes: list[tuple[int, LeaseState]] = []  # (token, new state), from the Lock's listener

    def on_change(lease: zklock.Lease, state: LeaseState) -> None:
        # Runs on whichever thread saw the change (often kazoo's): it must return at once.
        changes.append((lease.token, state))
        print(f"  listener: lease {lease.token} -> {state.value}")

    with TcpProxy(hosts) as proxy, connected(proxy.connect_string) as client:
        with scratch_path(client, "listener") as root:
            path = f"{root}/report"
            lock = zklock.Lock(client, path, identifier="reporter", listener=on_change)
            try:
                with lock.hold(timeout=10) as lease:
                    print(f"holding, token {lease.token}, state {lease.state.value}")
                    # A listener of this lease only: writing is allowed while it is HELD.
                    may_write = threading.Event()
                    gate_mutex = threading.Lock()

                    def gate(held: zklock.Lease, _state: LeaseState) -> None:
                        # Reads the state itself, under a mutex: the call made below and one
                        # made by a change meanwhile may run in either order.
                        with gate_mutex:
                            if held.state is LeaseState.HELD:
                                may_write.set()
                            else:
                                may_write.clear()

                    lease.add_listener(gate)
                    gate(lease, lease.state)  # a change before add_listener went unheard

                    print(f"the proxy drops the connection ({proxy.drop()} closed)")
                    if not eventually(lambda: (lease.token, LeaseState.HELD) in changes):
                        problems.append("the lease did not come back to HELD after the drop")
                    print(f"reconnected with the same session: may write: {may_write.is_set()}")

                    expire_session(hosts, client)
                    print("the session expired on the server")
                    if not lease.lost.wait(10):
                        problems.append("the lease was not lost after the session expired")
                    print(f"lease {lease.state.value}: may write: {may_write.is_set()}")
                    if may_write.is_set():
                        problems.append("the lease's own listener did not close the gate")
            except zklock.LockLost:
                print("leaving the block raised LockLost")

            with lock.hold(timeout=10) as second:  # a new lease, a new session
                print(f"holding again, token {second.token}")
            first = [state.value for token, state in changes if token == lease.token]
            later = [state.value for token, state in changes if token == second.token]
            print(f"first lease went: {' -> '.join(['held', *first])}")
            print(f"second lease went: {' -> '.join(['held', *later])}")
            if first[:2] != ["suspended", "held"] or first[-1:] != ["lost"]:
                problems.append(f"the first lease went through {first}")
            if later != ["released"]:
                problems.append(f"the second lease went through {later}")
            expect_no_contenders(client, path, problems)
    return verdict(problems)


if __name__ == "__main__":
    with zookeeper(sys.argv[1] if len(sys.argv) > 1 else None) as found:
        sys.exit(main(found))
