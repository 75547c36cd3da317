"""A client kazoo gave up on by itself (its reconnect tries ran out) is refused, not retried.

kazoo then says CLOSED for good without stop() having been called, which zklock must not take
for a client still starting (``start_async()`` under way): that would retry without end.
Nothing listens on the client's port; no ZooKeeper is needed to be refused.
"""

from __future__ import annotations

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import KeeperState

import zklock


def test_a_client_whose_reconnect_tries_ran_out_is_not_connected():
    client = KazooClient(
        hosts="127.0.0.1:1", connection_retry={"max_tries": 1, "delay": 0.01, "max_delay": 0.01}
    )
    client.start_async()
    try:
        routine = client._connection._connection_routine
        routine.join(10)  # kazoo's connection thread gives up
        assert not routine.is_alive() and client.client_state == KeeperState.CLOSED
        lock = zklock.Lock(client, "/locks/given-up")
        with pytest.raises(zklock.ClientNotConnected):
            lock.acquire()  # no timeout: retried, it would never return
        with pytest.raises(zklock.ClientNotConnected):  # not ConnectionLost at the deadline
            lock.contenders(timeout=5)
    finally:
        client.stop()
        client.close()
