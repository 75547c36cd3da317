"""LeanHandler's socket plumbing on local socket pairs (no ZooKeeper): sends that wait for
room, and the poller kazoo's connection loop keeps."""

from __future__ import annotations

import fcntl
import gc
import os
import resource
import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from zklock.handler import BufferedSocket, Doorbell, LeanHandler
from zklock.testing import wait_until
from zklock.testing.plugin import skip_outside_ci


def fill(sock: socket.socket) -> None:
    """Send until the socket's buffers are full (the peer never reads)."""
    chunk = b"x" * 65536
    while True:
        try:
            sock.send(chunk)
        except BlockingIOError:
            return


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    left.setblocking(False)
    yield left, right
    left.close()
    right.close()


@pytest.fixture
def descriptors_above_1023() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.fail(f"this test needs a descriptor limit of 2048 or more (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_full_send_buffer_on_a_descriptor_above_1023_times_out(pair, descriptors_above_1023):
    # select.select refuses such a descriptor with ValueError, which kazoo's connection loop
    # does not take for a dropped connection: it would stop the client for good.
    left, _right = pair
    high = socket.socket(fileno=fcntl.fcntl(left.fileno(), fcntl.F_DUPFD, 1024))
    try:
        assert high.fileno() >= 1024
        high.setblocking(False)
        fill(high)
        with pytest.raises(socket.timeout):
            BufferedSocket(high, 0.2).send(b"y" * 65536)
    finally:
        high.close()


def test_a_send_waits_for_room_no_longer_than_kazoo_allows_the_write(pair):
    left, right = pair
    fill(left)
    buffered = BufferedSocket(left, None)  # no bound of its own
    handler = LeanHandler()
    assert handler.select([], [buffered], [], 0.2) == ([], [buffered], [])  # kazoo's bound
    outcome: list[BaseException] = []

    def send() -> None:
        try:
            buffered.send(b"y" * 65536)
        except BaseException as error:
            outcome.append(error)

    sender = threading.Thread(target=send)
    sender.start()
    sender.join(10)
    if sender.is_alive():  # unblock it before failing: the peer going away ends the wait
        right.close()
        sender.join(10)
        pytest.fail("send waited past the bound kazoo gave the write")
    assert len(outcome) == 1 and isinstance(outcome[0], socket.timeout)


def test_the_connection_loops_poller_closes_with_its_thread(pair):
    left, _right = pair
    handler = LeanHandler()
    doorbell, _same = handler.create_socket_pair()
    connection = BufferedSocket(left, None)
    waited = threading.Thread(target=handler.select, args=([connection, doorbell], [], [], 0.01))
    waited.start()
    waited.join(10)
    _doorbell, silence = handler._silences[id(doorbell)]
    assert silence.poller is not None
    poller = silence.poller
    # Only the thread's cache held it: gone with the thread, and its epoll descriptor too.
    assert wait_until(lambda: gc.collect() is not None and poller() is None, 5)
    doorbell.close()


def test_a_ring_racing_close_never_lands_in_the_file_that_reuses_the_number():
    # A client stopped by one thread while another sends a request: the doorbell's number is
    # freed by close() and handed to the next file opened.  A send that read the number before
    # the close must not write into that new file (here an eventfd, which would count it).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        for _ in range(300):
            bell = Doorbell()
            stop = threading.Event()

            def ring(bell: Doorbell = bell, stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    try:
                        bell.send(b"\0")
                    except OSError:
                        pass

            ringer = threading.Thread(target=ring)
            ringer.start()
            number = bell.fileno()
            bell.close()
            reused = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            try:
                time.sleep(0.0005)
                stop.set()
                ringer.join()
                if reused == number:
                    with pytest.raises(BlockingIOError):  # nothing was counted
                        os.eventfd_read(reused)
            finally:
                os.close(reused)
    finally:
        sys.setswitchinterval(interval)


def test_out_of_descriptors_for_a_poller_is_a_dropped_connection_to_kazoo(pair):
    # A new connection's first wait makes its poller: with no descriptor left for it (the
    # socket took the last one), kazoo must see a dropped connection and retry, as with its
    # own handler, not an invalid argument, which ends its connection loop for good.
    from kazoo.client import KazooClient
    from kazoo.exceptions import ConnectionDropped

    handler = LeanHandler()
    left, _right = pair
    connection = BufferedSocket(left, 1.0)
    doorbell, _ = handler.create_socket_pair()
    client = KazooClient("127.0.0.1:1", handler=handler)  # never started: its error handling only
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hogged: list[int] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 4, hard))
        with pytest.raises(OSError):
            while True:
                hogged.append(os.open(os.devnull, os.O_RDONLY))
        with pytest.raises(ConnectionDropped), client._connection._socket_error_handling():
            handler.select([connection, doorbell], [], [], 0.01)
    finally:
        for fd in hogged:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        doorbell.close()


@pytest.mark.parametrize("eventfd", [True, False])
def test_the_doorbell_is_held_back_from_a_silent_server_only_when_it_is_an_eventfd(
    eventfd, pair, monkeypatch
):
    # Without eventfd (Python 3.9, macOS) the doorbell is kazoo's own socket pair: left unread
    # while held back, it would fill up, and the next request would block its caller.
    import zklock.handler as handler_module

    if eventfd and not hasattr(os, "eventfd"):
        skip_outside_ci("eventfd needs Linux and Python >= 3.10")
    monkeypatch.setattr(handler_module, "_HAS_EVENTFD", eventfd)
    handler = LeanHandler()
    read_end, write_end = handler.create_socket_pair()
    connection = BufferedSocket(pair[0], 1.0)
    try:
        write_end.send(b"\0")  # a request to send
        assert handler.select([connection, read_end], [], [], 0.05)[0] == [read_end]
        read_end.recv(1)
        connection.send(b"request")  # sent; the server stays silent
        time.sleep(0.1)  # longer than kazoo's wait between heartbeats (the 0.05 s above)
        write_end.send(b"\0")  # another request to send
        readable = handler.select([connection, read_end], [], [], 0.05)[0]
        assert readable == ([] if eventfd else [read_end])
    finally:
        read_end.close()
        if write_end is not read_end:
            write_end.close()
