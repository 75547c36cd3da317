"""zklock over TLS, against a real TLS-enabled ZooKeeper (``zookeeper_tls``: Netty connection
factory, a secure client port only, client certificates required, certificates made by the
harness for this run).

A client that trusts the test CA and shows the client certificate holds locks with fencing
tokens as over plain TCP, on kazoo's stock handler and on zklock's LeanHandler. Clients that
do not trust the CA, trust another CA, show no client certificate, or do not speak TLS at all
are refused: ``start()`` fails within its timeout, kazoo's log says why, and a zklock lock on
such a client raises a typed error instead of waiting.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KeeperState

import zklock
from zklock.handler import LeanHandler
from zklock.testing import KazooClientFactory, ZooKeeperTlsServer, wait_until

HANDLERS = {"stock": lambda: None, "lean": LeanHandler}
REFUSED_START_TIMEOUT = 2.0  # how long a refused client tries before start() gives up


@pytest.fixture(params=sorted(HANDLERS))
def handler_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def tls_clients(zookeeper_tls: ZooKeeperTlsServer) -> Iterator[KazooClientFactory]:
    """Makes clients of the TLS port; every one is stopped and closed after the test."""
    with KazooClientFactory(zookeeper_tls.connect_string) as factory:
        yield factory


def test_a_lock_over_tls_gives_fencing_tokens(zookeeper_tls, tls_clients, tls_path, handler_name):
    options = zookeeper_tls.kazoo_options()
    owner = tls_clients(handler=HANDLERS[handler_name](), **options)
    rival = tls_clients(handler=HANDLERS[handler_name](), **options)
    path = f"{tls_path}/job"

    lock = zklock.Lock(owner, path, identifier="owner")
    assert lock.acquire(timeout=10)
    first = lock.lease.token
    assert first > 0
    assert not zklock.Lock(rival, path).acquire(blocking=False)  # excluded, over TLS too
    # The rival's node is deleted right after its try, not before it returns (guarantees.md,
    # "abandoning"): another session may list it for a moment.
    assert wait_until(lambda: [c.identifier for c in lock.contenders()] == ["owner"])
    lock.release()

    with zklock.Lock(rival, path).hold(timeout=10) as lease:
        lease.check()
        assert lease.token > first  # a later holder, a higher token


def test_many_pipelined_requests_over_tls_all_answered(zookeeper_tls, tls_clients, tls_path, handler_name):
    # Replies that share a TLS record: each must be read without waiting for the next packet.
    client = tls_clients(handler=HANDLERS[handler_name](), **zookeeper_tls.kazoo_options())
    client.ensure_path(tls_path)
    results = [client.exists_async(tls_path) for _ in range(300)]
    stats = [result.get(timeout=30) for result in results]
    assert all(stat is not None for stat in stats)
    with zklock.Lock(client, f"{tls_path}/after").hold(timeout=10) as lease:
        assert lease.token > 0


# Each refused client: its kazoo options, and what kazoo's log says about the refusal.
REFUSED: dict[str, tuple[Callable[[ZooKeeperTlsServer], dict[str, Any]], str]] = {
    # TLS with certificate checks on, trusting only the system CAs (no ca=): the server's
    # certificate does not verify.
    "without the CA": (lambda server: {"use_ssl": True}, r"CERTIFICATE_VERIFY_FAILED"),
    "trusting another CA": (
        lambda server: {"use_ssl": True, "ca": server.certificates.other_ca},
        r"CERTIFICATE_VERIFY_FAILED",
    ),
    # Trusts the server, but shows no certificate of its own: the server requires one.
    "without a client certificate": (
        lambda server: server.kazoo_options(client_certificate=False),
        r"(?i)alert|ssl|eof|connection broken|reset",
    ),
    # No TLS at all on a TLS-only port: the server drops what it cannot read as a handshake.
    "without TLS": (lambda server: {}, r"(?i)connection broken|reset|eof|closed"),
}


# LeanHandler connects through kazoo's own create_connection: two refusals suffice for it.
REFUSAL_CASES = [("stock", refusal) for refusal in REFUSED] + [
    ("lean", "without the CA"),
    ("lean", "without TLS"),
]


@pytest.mark.parametrize(("handler_name", "refusal"), REFUSAL_CASES)
def test_clients_the_server_does_not_trust_are_refused(
    zookeeper_tls, tls_clients, tls_path, handler_name, refusal, caplog
):
    options, reason = REFUSED[refusal]
    client = tls_clients(start=False, handler=HANDLERS[handler_name](), **options(zookeeper_tls))
    caplog.set_level(logging.WARNING, logger="kazoo.client")

    with pytest.raises(KazooTimeoutError):  # what start() says: no connection in time
        client.start(timeout=REFUSED_START_TIMEOUT)
    assert not client.connected
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("kazoo")]
    assert any(re.search(reason, message) for message in warnings), warnings

    # kazoo stopped the client when start() gave up: zklock says so at once.
    with pytest.raises(zklock.ClientNotConnected):
        zklock.Lock(client, f"{tls_path}/job").acquire(timeout=5)


def test_a_lock_on_a_client_still_trying_to_connect_gives_up_in_time(zookeeper_tls, tls_clients, tls_path):
    # start_async(): kazoo keeps retrying the refused handshake; a bounded acquire raises a
    # typed error at its deadline instead of waiting for a connection that never comes.
    client = tls_clients(start=False, use_ssl=True)
    client.start_async()
    # kazoo reports CLOSED until its connection thread has begun the first attempt.
    assert wait_until(lambda: client.client_state == KeeperState.CONNECTING, timeout=10)
    with pytest.raises(zklock.ConnectionLost):
        zklock.Lock(client, f"{tls_path}/job").acquire(timeout=2)
    assert not client.connected
