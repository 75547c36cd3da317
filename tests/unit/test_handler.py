"""zklock.handler without ZooKeeper: select semantics, the buffered socket, the doorbell,
inline callbacks."""

from __future__ import annotations

import os
import socket
import threading

import pytest
from kazoo.handlers.threading import SequentialThreadingHandler
from kazoo.protocol.states import Callback

from zklock.handler import BufferedSocket, Doorbell, LeanAsyncResult, LeanHandler, runs_inline

HAS_EVENTFD = hasattr(os, "eventfd")


@pytest.fixture
def handler():
    handler = LeanHandler()
    handler.start()
    yield handler
    handler.stop()


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ---------------------------------------------------------------------------- select
def test_is_a_kazoo_threading_handler():
    assert isinstance(LeanHandler(), SequentialThreadingHandler)
    assert LeanHandler.name == "zklock_lean_handler"


def test_select_reports_readable_and_writable(handler, pair):
    a, b = pair
    assert handler.select([a], [], [], 0) == ([], [], [])
    b.sendall(b"x")
    assert handler.select([a], [], [], 1) == ([a], [], [])
    assert handler.select([a, b], [b], [], 1) == ([a], [b], [])
    assert a.recv(1) == b"x"
    assert handler.select([a], [], [], 0.01) == ([], [], [])


def test_select_timeout_is_checked_like_kazoo(handler, pair):
    with pytest.raises(TypeError):
        handler.select([pair[0]], [], [], "1")
    with pytest.raises(ValueError):
        handler.select([pair[0]], [], [], -1)


def test_select_reuses_one_poller_per_socket_set(handler, pair):
    a, b = pair
    handler.select([a], [], [], 0)
    before = open_fds()
    for _ in range(500):
        handler.select([a], [], [], 0)
        handler.select([a, b], [], [], 0)
    assert open_fds() <= before + 1  # at most the second set's poller, never one per call


def test_closed_socket_raises_and_a_new_socket_on_the_same_fd_works(handler):
    a, b = socket.socketpair()
    handler.select([a], [], [], 0)
    fd = a.fileno()
    a.close()
    with pytest.raises((TypeError, ValueError)):
        handler.select([a], [], [], 0)
    # The descriptor number is reused by the next socket: it must be polled afresh.
    c, d = socket.socketpair()
    try:
        assert fd in (c.fileno(), d.fileno())
        reused = c if c.fileno() == fd else d
        other = d if reused is c else c
        other.sendall(b"y")
        assert handler.select([reused], [], [], 1) == ([reused], [], [])
    finally:
        for sock in (b, c, d):
            sock.close()


def test_bare_descriptors_are_polled_without_caching(handler, pair):
    a, b = pair
    b.sendall(b"z")
    readable, _w, _x = handler.select([a.fileno()], [], [], 1)
    assert readable == [a.fileno()]


def test_pollers_are_per_thread(handler, pair):
    a, b = pair
    b.sendall(b"x")
    seen = []
    thread = threading.Thread(target=lambda: seen.append(handler.select([a], [], [], 1)))
    thread.start()
    thread.join()
    assert seen == [([a], [], [])]
    assert handler.select([a], [], [], 1) == ([a], [], [])


# ---------------------------------------------------------------------------- buffered socket
def test_buffered_socket_reads_once_and_serves_from_the_buffer(pair):
    a, b = pair
    a.setblocking(False)
    sock = BufferedSocket(a, 1.0)
    b.sendall(b"0123456789")
    assert sock.recv(4) == b"0123"
    assert sock.pending() == 6
    assert sock.recv(100) == b"456789"
    assert sock.pending() == 0
    with pytest.raises(BlockingIOError):
        sock.recv(1)


def test_select_reports_buffered_bytes_without_waiting(handler, pair):
    a, b = pair
    a.setblocking(False)
    sock = BufferedSocket(a, 1.0)
    b.sendall(b"abcdef")
    sock.recv(2)  # the rest is buffered, the socket itself has nothing more
    assert handler.select([sock, b], [], [], None) == ([sock], [], [])
    assert sock.recv(4) == b"cdef"
    assert handler.select([sock], [], [], 0) == ([], [], [])


def test_single_socket_read_select_fills_the_buffer(handler, pair):
    a, b = pair
    a.setblocking(False)
    sock = BufferedSocket(a, 1.0)
    assert handler.select([sock], [], [], 0) == ([], [], [])
    b.sendall(b"hello")
    assert handler.select([sock], [], [], 1) == ([sock], [], [])
    assert sock.pending() == 5
    assert sock.recv(5) == b"hello"


def test_end_of_stream_and_errors_reach_recv(handler, pair):
    a, b = pair
    a.setblocking(False)
    sock = BufferedSocket(a, 1.0)
    b.sendall(b"ab")
    b.close()
    assert handler.select([sock], [], [], 1) == ([sock], [], [])
    assert sock.recv(2) == b"ab"
    assert handler.select([sock], [], [], 1) == ([sock], [], [])
    assert sock.recv(2) == b""


def test_buffered_socket_is_always_writable_and_send_waits_for_room(handler, pair):
    a, b = pair
    a.setblocking(False)
    sock = BufferedSocket(a, 10.0)
    assert handler.select([], [sock], [], 0) == ([], [sock], [])
    chunk = b"x" * 65536
    try:
        while True:
            a.send(chunk)
    except BlockingIOError:
        pass  # the send buffer is full now
    sent = threading.Event()

    def drain() -> None:
        b.settimeout(0.05)
        while not sent.is_set():
            try:
                b.recv(65536)
            except socket.timeout:
                pass

    thread = threading.Thread(target=drain)
    thread.start()
    try:
        assert sock.send(b"y" * 10) == 10  # waited for room instead of raising EAGAIN
    finally:
        sent.set()
        thread.join()


def test_buffered_socket_send_times_out(pair):
    a, _b = pair
    a.setblocking(False)
    sock = BufferedSocket(a, 0.05)
    try:
        while True:
            a.send(b"x" * 65536)
    except BlockingIOError:
        pass
    with pytest.raises(socket.timeout):
        sock.send(b"y")


def test_buffered_socket_delegates_and_closes(pair):
    a, _b = pair
    sock = BufferedSocket(a, None)
    assert sock.getsockname() == a.getsockname()
    assert sock.fileno() == a.fileno()
    sock.close()
    assert a.fileno() == -1 and sock.fileno() == -1


def test_create_connection_wraps_plain_tcp(handler):
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        sock = handler.create_connection(listener.getsockname(), timeout=2.0)
        peer, _ = listener.accept()
        try:
            assert isinstance(sock, BufferedSocket)
            assert sock.getpeername() == listener.getsockname()
            peer.sendall(b"ok")
            sock.setblocking(False)
            assert handler.select([sock], [], [], 2) == ([sock], [], [])
            assert sock.recv(2) == b"ok"
        finally:
            sock.close()
            peer.close()
    finally:
        listener.close()


# ---------------------------------------------------------------------------- doorbell
@pytest.mark.skipif(not HAS_EVENTFD, reason="eventfd needs Linux and Python >= 3.10")
def test_doorbell_counts_rings_and_never_blocks(handler):
    read_end, write_end = handler.create_socket_pair()
    assert isinstance(read_end, Doorbell) and read_end is write_end
    try:
        assert handler.select([read_end], [], [], 0) == ([], [], [])
        for _ in range(5000):  # a socket pair blocks after a few hundred
            write_end.send(b"\0")
        for _ in range(5000):
            assert handler.select([read_end], [], [], 0) == ([read_end], [], [])
            assert read_end.recv(1) == b"\0"
        assert handler.select([read_end], [], [], 0) == ([], [], [])
    finally:
        write_end.close()
        read_end.close()  # twice, as kazoo closes both ends
    with pytest.raises(OSError):
        write_end.send(b"\0")


# ---------------------------------------------------------------------------- callbacks
def test_runs_inline_marks_and_returns_the_function():
    def callback(_event: object) -> None: ...

    assert runs_inline(callback) is callback


def _thread_of(deliver) -> int:
    ran: list[int] = []
    done = threading.Event()

    def record(*_args: object) -> None:
        ran.append(threading.get_ident())
        done.set()

    deliver(record)
    assert done.wait(5)
    return ran[0]


@pytest.mark.skipif(not HAS_EVENTFD, reason="inline callbacks need eventfd")
def test_marked_watch_callback_runs_on_the_delivering_thread(handler):
    me = threading.get_ident()
    inline = _thread_of(lambda f: handler.dispatch_callback(Callback("watch", runs_inline(f), ())))
    queued = _thread_of(lambda f: handler.dispatch_callback(Callback("watch", f, ())))
    assert inline == me
    assert queued != me


@pytest.mark.skipif(not HAS_EVENTFD, reason="inline callbacks need eventfd")
def test_marked_completion_runs_where_the_result_is_set(handler):
    me = threading.get_ident()

    def set_result(callback, mark: bool) -> None:
        result = handler.async_result()
        assert isinstance(result, LeanAsyncResult)
        result.rawlink(runs_inline(callback) if mark else callback)
        result.set(1)

    assert _thread_of(lambda f: set_result(f, True)) == me
    assert _thread_of(lambda f: set_result(f, False)) != me


def test_failing_inline_callback_is_logged_not_raised(handler, caplog):
    def broken(*_args: object) -> None:
        raise RuntimeError("boom")

    result = handler.async_result()
    result.rawlink(runs_inline(broken))
    result.set(1)  # must not raise into the thread that sets the result
    handler.dispatch_callback(Callback("watch", runs_inline(broken), ()))
    if HAS_EVENTFD:
        assert "boom" in caplog.text
