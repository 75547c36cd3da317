"""LeanHandler.select and TLS sockets: decrypted bytes that no poll of the descriptor shows.

A TLS record is read from the socket whole; when a caller takes only part of it, the rest
waits inside the ``ssl.SSLSocket`` (``pending()``), and the descriptor is not readable.  kazoo
reads a reply in pieces (length, then body) and then waits in ``handler.select``: a second
reply that came in the same record must be reported there, or it waits for the next packet.
No ZooKeeper here: a TLS connection over a local socket pair, certificates from
``zklock.testing``.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest

from zklock.handler import LeanHandler
from zklock.testing import TlsCertificates


@pytest.fixture
def tls_pair(tmp_path) -> Iterator[tuple[ssl.SSLSocket, ssl.SSLSocket]]:
    """(client, server): both ends of a TLS connection over a socket pair, handshake done."""
    certs = TlsCertificates.create(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(certs.server_cert, certs.server_key)
    client_context = ssl.create_default_context(cafile=certs.ca)
    left, right = socket.socketpair()
    server = server_context.wrap_socket(left, server_side=True, do_handshake_on_connect=False)
    client = client_context.wrap_socket(right, server_hostname="localhost", do_handshake_on_connect=False)
    server.settimeout(10)
    client.settimeout(10)
    errors: list[BaseException] = []

    def server_handshake() -> None:
        try:
            server.do_handshake()
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    thread = threading.Thread(target=server_handshake, name="tls-pair-handshake")
    thread.start()
    try:
        client.do_handshake()
    finally:
        thread.join(10)
    assert not errors, errors
    # TLS 1.3 servers send session tickets after the handshake; one message gets them read.
    server.sendall(b"ready")
    assert client.recv(16) == b"ready"
    try:
        yield client, server
    finally:
        client.close()
        server.close()


def _client_with_pending_bytes(client: ssl.SSLSocket, server: ssl.SSLSocket) -> None:
    server.sendall(b"length+reply one|reply two")  # one TLS record
    first = client.recv(16)
    assert first == b"length+reply one"
    assert client.pending() == len(b"|reply two")
    # The descriptor has nothing: the rest of the record is already inside the SSL object.
    assert select.select([client], [], [], 0) == ([], [], [])


def test_select_reports_a_tls_socket_with_pending_bytes(tls_pair):
    client, server = tls_pair
    _client_with_pending_bytes(client, server)
    client.setblocking(False)
    handler = LeanHandler()
    # A generous timeout: a handler that missed the bytes would come back empty after it.
    readable, writable, _ = handler.select([client], [], [], 5.0)
    assert readable == [client]
    assert writable == []
    assert client.recv(64) == b"|reply two"


def test_select_reports_it_beside_the_wake_up_channel(tls_pair):
    # kazoo's connection loop waits on [socket, wake-up channel]: the shape that stalled.
    client, server = tls_pair
    _client_with_pending_bytes(client, server)
    client.setblocking(False)
    handler = LeanHandler()
    doorbell, _same = handler.create_socket_pair()
    try:
        readable, _, _ = handler.select([client, doorbell], [], [], 5.0)
        assert readable == [client]
        # Once drained, the socket is no longer readable: select times out empty.
        assert client.recv(64) == b"|reply two"
        readable, _, _ = handler.select([client, doorbell], [], [], 0)
        assert readable == []
    finally:
        doorbell.close()


def test_a_tls_socket_without_pending_bytes_is_polled_as_usual(tls_pair):
    client, server = tls_pair
    client.setblocking(False)
    handler = LeanHandler()
    assert handler.select([client], [], [], 0)[0] == []
    server.sendall(b"reply")
    readable, _, _ = handler.select([client], [], [], 5.0)
    assert readable == [client]
    assert client.recv(64) == b"reply"

