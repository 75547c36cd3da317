"""zklock.testing.TcpProxy against a local echo server (no ZooKeeper, no Docker)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest

from zklock.testing import HarnessError, TcpProxy, assert_no_new_threads, thread_snapshot, wait_until
from zklock.testing.plugin import skip_outside_ci


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    """An echo server: one thread per connection, all joined at teardown."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def handle(conn: socket.socket) -> None:
        conn.settimeout(0.05)
        with conn:
            while not stop.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:  # TimeoutError from Python 3.10
                    continue
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:  # TimeoutError from Python 3.10
                continue
            worker = threading.Thread(target=handle, args=(conn,))
            workers.append(worker)
            worker.start()

    acceptor = threading.Thread(target=serve)
    acceptor.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        stop.set()
        acceptor.join()
        for worker in workers:
            worker.join()
        listener.close()


def connect(proxy: TcpProxy) -> socket.socket:
    sock = socket.create_connection(proxy.address, timeout=2)
    sock.settimeout(2)
    return sock


def roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def closed_by_peer(sock: socket.socket) -> bool:
    """The other end closed (EOF) or reset (it had unread bytes) the connection."""
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


def test_forwards_both_ways_including_large_payloads(echo: tuple[str, int]) -> None:
    with TcpProxy(echo) as proxy, connect(proxy) as sock:
        assert proxy.connect_string == f"127.0.0.1:{proxy.address[1]}"
        assert roundtrip(sock, b"ping") == b"ping"
        big = bytes(range(256)) * 20_000  # 5 MB: more than the proxy buffers at once
        sender = threading.Thread(target=sock.sendall, args=(big,))
        sender.start()
        received = b""
        while len(received) < len(big):
            received += sock.recv(1 << 20)
        sender.join()
        assert received == big


def test_drop_closes_current_connections_only(echo: tuple[str, int]) -> None:
    with TcpProxy(f"{echo[0]}:{echo[1]}") as proxy:
        with connect(proxy) as first, connect(proxy) as second:
            assert roundtrip(first, b"a") == b"a" and roundtrip(second, b"b") == b"b"
            assert proxy.drop() == 2
            assert closed_by_peer(first)
            assert proxy.connections == 0
        with connect(proxy) as third:
            assert roundtrip(third, b"c") == b"c"


def test_blackhole_holds_bytes_and_heal_delivers_them(echo: tuple[str, int]) -> None:
    with TcpProxy(echo) as proxy, connect(proxy) as sock:
        assert roundtrip(sock, b"before") == b"before"
        proxy.blackhole()
        assert proxy.blackholed
        sock.sendall(b"during")
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            sock.recv(10)
        held = connect(proxy)  # accepted, never forwarded
        held.settimeout(0.3)
        held.sendall(b"lost")
        with pytest.raises(socket.timeout):
            held.recv(10)
        assert proxy.connections == 2
        proxy.heal()
        sock.settimeout(2)
        assert sock.recv(10) == b"during"  # TCP delivers what waited in the buffers
        held.settimeout(2)
        assert closed_by_peer(held)  # connections made during the partition are closed
        held.close()
        assert roundtrip(sock, b"after") == b"after"


def test_refuses_connections_beyond_the_limit(echo: tuple[str, int]) -> None:
    with TcpProxy(echo, max_connections=1) as proxy, connect(proxy) as first:
        assert roundtrip(first, b"1") == b"1"
        with connect(proxy) as second:
            assert closed_by_peer(second)
        assert roundtrip(first, b"2") == b"2"


def test_unreachable_upstream_closes_the_client() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with TcpProxy(("127.0.0.1", port)) as proxy, connect(proxy) as sock:
        assert closed_by_peer(sock)


def test_close_joins_its_thread_and_is_idempotent(echo: tuple[str, int]) -> None:
    before = thread_snapshot()
    proxy = TcpProxy(echo).start()
    sock = connect(proxy)
    assert roundtrip(sock, b"x") == b"x"
    proxy.blackhole()
    proxy.close()
    proxy.close()
    assert closed_by_peer(sock)
    sock.close()
    assert_no_new_threads(before, grace=0.5)
    with pytest.raises(HarnessError):
        proxy.drop()


def test_a_closed_proxy_refuses_to_start_again(echo: tuple[str, int]) -> None:
    proxy = TcpProxy(echo).start()
    proxy.close()
    with pytest.raises(HarnessError, match="cannot be started again"):
        proxy.start()
    proxy.close()  # still idempotent


def test_a_start_that_cannot_listen_leaks_no_descriptor_and_may_be_retried(echo: tuple[str, int]) -> None:
    if not os.path.isdir("/proc/self/fd"):
        skip_outside_ci("counts descriptors in /proc")  # in CI a failure, never a skip
    def open_descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    taken = socket.create_server(("127.0.0.1", 0))
    proxy = TcpProxy(echo, listen_port=taken.getsockname()[1])
    before = open_descriptors()
    for _ in range(20):
        with pytest.raises(OSError):
            proxy.start()  # EADDRINUSE: the selector made before the bind must be closed too
    assert open_descriptors() == before
    with pytest.raises(HarnessError, match="not started"):
        _ = proxy.address
    taken.close()
    with proxy, connect(proxy) as sock:  # the port is free now: the same proxy starts
        assert roundtrip(sock, b"retried") == b"retried"


@pytest.fixture
def upstream() -> Iterator[socket.socket]:
    """A listening socket the test accepts from itself, to see and answer what arrives."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(2)
    with listener:
        yield listener


def accept(listener: socket.socket) -> socket.socket:
    """The server's side of the connection the proxy just opened."""
    conn, _ = listener.accept()
    conn.settimeout(2)
    return conn


def receive(sock: socket.socket, size: int) -> bytes:
    received = b""
    while len(received) < size:
        chunk = sock.recv(size - len(received))
        if not chunk:
            break
        received += chunk
    return received


def nothing_arrives(sock: socket.socket, within: float = 0.3) -> bool:
    """No byte (and no end of stream) reaches ``sock`` within ``within`` seconds."""
    sock.settimeout(within)
    try:
        sock.recv(10)
    except socket.timeout:  # TimeoutError from Python 3.10
        return True
    finally:
        sock.settimeout(2)
    return False


def test_held_replies_let_requests_through_and_heal_delivers_them(upstream: socket.socket) -> None:
    with TcpProxy(upstream.getsockname()[:2]) as proxy, connect(proxy) as sock:
        with accept(upstream) as server:
            sock.sendall(b"x")
            assert receive(server, 1) == b"x"
            server.sendall(b"y")
            assert receive(sock, 1) == b"y"
            proxy.hold_replies()
            assert proxy.holding_replies and not proxy.blackholed
            sock.sendall(b"request")
            assert receive(server, 7) == b"request"  # the request reaches the server
            server.sendall(b"reply")
            assert nothing_arrives(sock)  # its reply does not reach the client
            sock.sendall(b"more")
            assert receive(server, 4) == b"more"  # and the client can go on sending
            proxy.heal()
            assert not proxy.holding_replies
            assert receive(sock, 5) == b"reply"  # delivered late
            server.sendall(b"after")
            assert receive(sock, 5) == b"after"
            sock.sendall(b"again")
            assert receive(server, 5) == b"again"


def test_drop_loses_held_replies_and_later_connections_are_held_too(upstream: socket.socket) -> None:
    with TcpProxy(upstream.getsockname()[:2]) as proxy:
        proxy.hold_replies()
        with connect(proxy) as sock, accept(upstream) as server:
            sock.sendall(b"create")
            assert receive(server, 6) == b"create"
            server.sendall(b"created")
            assert proxy.drop() == 1
            assert closed_by_peer(sock)  # the end of the stream, not the held reply
            assert closed_by_peer(server)
        assert proxy.holding_replies  # a drop does not end the fault
        with connect(proxy) as sock, accept(upstream) as server:
            sock.sendall(b"hello")
            assert receive(server, 5) == b"hello"
            server.sendall(b"welcome")
            assert nothing_arrives(sock)
            proxy.heal()
            assert receive(sock, 7) == b"welcome"


def test_a_server_closing_while_replies_are_held_is_held_too(upstream: socket.socket) -> None:
    with TcpProxy(upstream.getsockname()[:2]) as proxy, connect(proxy) as sock:
        with accept(upstream) as server:
            proxy.hold_replies()
            server.sendall(b"bye")
            server.shutdown(socket.SHUT_WR)
            assert nothing_arrives(sock)
            proxy.heal()
            assert receive(sock, 4) == b"bye"  # the bytes, then the end of the stream
            sock.close()
            assert wait_until(lambda: proxy.connections == 0, 2)


def test_blackhole_while_holding_replies_stops_both_ways_until_heal(upstream: socket.socket) -> None:
    with TcpProxy(upstream.getsockname()[:2]) as proxy, connect(proxy) as sock:
        with accept(upstream) as server:
            proxy.hold_replies()
            proxy.blackhole()
            sock.sendall(b"ask")
            server.sendall(b"tell")
            assert nothing_arrives(server) and nothing_arrives(sock)
            proxy.heal()  # ends both faults
            assert not proxy.blackholed and not proxy.holding_replies
            assert receive(server, 3) == b"ask"
            assert receive(sock, 4) == b"tell"
