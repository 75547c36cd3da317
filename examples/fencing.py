"""Fencing tokens: why the resource, not the lock, has the last word.

    python examples/fencing.py [HOSTS]

Alice takes the lock, checks her lease, and is then paused (think of a long GC pause) just
before she writes. While she is paused her ZooKeeper session expires, so the lock passes to
Bob, who writes. Then Alice wakes up and writes too: her check passed, but it is stale. No
lock can stop that write, since Alice does not know yet; the store can. It remembers the
highest ``lease.token`` it has accepted and refuses any write that carries a lower one.
"""

from __future__ import annotations

import logging
import sys

from _common import connected, expire_session, scratch_path, verdict, zookeeper

import zklock


class StaleToken(Exception):
    """A write came with a fencing token lower than one the store has already accepted."""


class FencedStore:
    """A toy storage service: for each key, refuses writes older than the newest it took."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.highest: dict[str, int] = {}

    def write(self, key: str, value: str, token: int) -> None:
        newest = self.highest.get(key)
        if newest is not None and token < newest:
            raise StaleToken(f"write of {value!r} to {key!r} with token {token} < {newest}")
        self.highest[key] = token  # the same holder may write again with the same token
        self.values[key] = value


def main(hosts: str) -> int:
    store = FencedStore()
    problems = []
    with connected(hosts) as alice_client, connected(hosts) as bob_client:
        with scratch_path(alice_client, "fencing") as root:
            path = f"{root}/ledger"
            alice = zklock.Lock(alice_client, path, identifier="alice")
            bob = zklock.Lock(bob_client, path, identifier="bob")
            try:
                with alice.hold(timeout=10) as alice_lease:
                    print(f"alice holds the lock, token {alice_lease.token}")
                    store.write("balance", "100 (alice)", alice_lease.token)
                    alice_lease.check()
                    if alice_lease.time_left() < 1.0:  # too little to finish the step under the lock
                        problems.append("alice's fresh lease had under a second left")
                    print("alice: lease checked (it has time left), about to write... and is paused")

                    expire_session(hosts, alice_client)
                    print("  (meanwhile alice's session expired on the server)")
                    with bob.hold(timeout=10) as bob_lease:
                        print(f"bob holds the lock, token {bob_lease.token}")
                        store.write("balance", "80 (bob)", bob_lease.token)
                        print("bob: write accepted")

                    print("alice wakes up and writes with her old token...")
                    try:
                        store.write("balance", "150 (alice, stale)", alice_lease.token)
                        problems.append("the store accepted a stale write")
                    except StaleToken as error:
                        print(f"  refused by the store: {error}")
                    told = alice_lease.lost.wait(10)
                    print(f"alice's lease now says {alice_lease.state.value} ({alice_lease.reason})")
                    if not told:
                        problems.append("alice was never told that her lease was lost")
            except zklock.LockLost as error:
                print(f"leaving alice's `with` block raised LockLost: {error}")
            else:
                problems.append("leaving alice's block did not raise LockLost")

            # A fresh holder gets a higher token still, so the store accepts it.
            with alice.hold(timeout=10) as again:
                store.write("balance", "90 (alice, again)", again.token)
                print(f"alice holds the lock again, token {again.token}: write accepted")

    print(f"store: {store.values}, highest tokens {store.highest}")
    if store.values["balance"] != "90 (alice, again)":
        problems.append(f"unexpected final value {store.values['balance']!r}")
    return verdict(problems)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="  [log] %(name)s: %(message)s")
    with zookeeper(sys.argv[1] if len(sys.argv) > 1 else None) as hosts:
        sys.exit(main(hosts))
