"""zklock.handler.LeanHandler: its pieces without ZooKeeper, then the lock contract with kazoo
clients on it against a real ZooKeeper.

Without ZooKeeper: select semantics, the buffered socket, the eventfd doorbell, inline callbacks.
Against ZooKeeper: acquire/release, contention between two sessions, a watch firing, a dropped
connection (the session survives), a server-side session expiry, and the kazoo paths the
handler runs inline (create with makepath, ensure_path) under a flood of requests.

(The pure tests live here, not in tests/unit/test_handler.py, because two test modules named
test_handler.py collide under pytest's default import mode.)
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from kazoo.exceptions import (
    AuthFailedError,
    ConnectionClosedError,
    ConnectionLoss,
    NoNodeError,
    SessionExpiredError,
)
from kazoo.handlers.threading import SequentialThreadingHandler
from kazoo.protocol.states import Callback, KazooState

import zklock
import zklock.handler
from zklock.handler import BufferedSocket, Doorbell, LeanAsyncResult, LeanHandler, runs_inline
from zklock.testing import TcpProxy, expire_session, wait_until
from zklock.testing.plugin import skip_outside_ci

# ============================================================================ without ZooKeeper
HAS_EVENTFD = hasattr(os, "eventfd")


@pytest.fixture
def eventfd():
    """For tests of what exists only with eventfd: a developer's machine without it skips
    them; in CI (CI=true) they fail instead (``skip_outside_ci``)."""
    if not HAS_EVENTFD:
        skip_outside_ci("eventfd needs Linux and Python >= 3.10")


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


def test_the_buffer_fills_without_msg_dontwait_where_there_is_none(handler, pair, monkeypatch):
    # Windows has no MSG_DONTWAIT; kazoo's sockets are non-blocking, so no flag is needed.
    monkeypatch.setattr(zklock.handler, "_DONTWAIT", 0)
    a, b = pair
    a.setblocking(False)
    sock = BufferedSocket(a, 1.0)
    assert not sock.fill()
    b.sendall(b"hello")
    assert wait_until(sock.fill, 5)
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
    assert handler.select([], [sock], [], 0) == ([], [sock], [])
    c, d = socket.socketpair()
    try:  # several at once: each is writable, the full one too
        other = BufferedSocket(c, 10.0)
        assert handler.select([], [sock, other], [], 0) == ([], [sock, other], [])
        other.close()
        with pytest.raises((TypeError, ValueError)):  # a closed one raises, as in select
            handler.select([], [sock, other], [], 0)
    finally:
        c.close()
        d.close()
    sent = threading.Event()

    def drain() -> None:
        b.settimeout(0.05)
        while not sent.is_set():
            try:
                b.recv(65536)
            except socket.timeout:
                pass

    # kazoo selects before each write, with its bound for it: the send waits that long.
    assert handler.select([], [sock], [], 10.0) == ([], [sock], [])
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
@pytest.mark.usefixtures("eventfd")
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


@pytest.mark.parametrize("not_a_function", [None, 3, print, int, object])
def test_runs_inline_refuses_what_it_cannot_mark(not_a_function):
    with pytest.raises(zklock.UsageError, match="runs_inline marks"):
        runs_inline(not_a_function)


def test_a_callback_with_an_empty_closure_cell_is_queued_not_an_error(handler):
    """The handler looks into closures for kazoo's wrapped completions; a cell that is not
    filled yet (a name assigned later in the enclosing function) must not break delivery."""
    ran = threading.Event()

    def make():
        def callback(_result):
            ran.set()
            return later

        cell = callback.__closure__[callback.__code__.co_freevars.index("later")]
        with pytest.raises(ValueError, match="empty"):  # never filled
            _ = cell.cell_contents
        return callback
        later = None  # never runs: it only makes `later` a closure cell

    result = LeanAsyncResult(handler)
    result.rawlink(make())
    result.set(None)
    assert ran.wait(5)  # delivered (by kazoo's callback thread), not an exception


def _thread_of(deliver) -> int:
    ran: list[int] = []
    done = threading.Event()

    def record(*_args: object) -> None:
        ran.append(threading.get_ident())
        done.set()

    deliver(record)
    assert done.wait(5)
    return ran[0]


@pytest.mark.usefixtures("eventfd")
def test_marked_watch_callback_runs_on_the_delivering_thread(handler):
    me = threading.get_ident()
    inline = _thread_of(lambda f: handler.dispatch_callback(Callback("watch", runs_inline(f), ())))
    queued = _thread_of(lambda f: handler.dispatch_callback(Callback("watch", f, ())))
    assert inline == me
    assert queued != me


@pytest.mark.usefixtures("eventfd")
def test_marked_completion_runs_where_the_result_is_set(handler):
    me = threading.get_ident()

    def set_result(callback, mark: bool) -> None:
        result = handler.async_result()
        assert isinstance(result, LeanAsyncResult)
        result.rawlink(runs_inline(callback) if mark else callback)
        result.set(1)

    assert _thread_of(lambda f: set_result(f, True)) == me
    assert _thread_of(lambda f: set_result(f, False)) != me


@pytest.mark.usefixtures("eventfd")
@pytest.mark.parametrize(
    "error",
    [ConnectionLoss(), SessionExpiredError(), ConnectionClosedError("closed"), AuthFailedError()],
    ids=lambda error: type(error).__name__,
)
def test_a_result_kazoo_failed_itself_queues_even_marked_callbacks(handler, error):
    """kazoo fails its pending requests on its connection thread while it empties their
    queue; a marked callback that sent again from there would have its request failed by the
    same loop, for ever. A reply's own failure (NoNode, say) is still delivered inline."""
    me = threading.get_ident()

    def fail_with(failure: Exception):
        def deliver(callback) -> None:
            result = handler.async_result()
            result.rawlink(runs_inline(callback))
            result.set_exception(failure)

        return deliver

    assert _thread_of(fail_with(error)) != me
    assert _thread_of(fail_with(NoNodeError())) == me


@pytest.mark.usefixtures("eventfd")
def test_bound_methods_and_partials_of_marked_functions_run_inline(handler):
    me = threading.get_ident()

    class Recorder:
        def __init__(self, record) -> None:
            self.record = record

        def on_result(self, *_args: object) -> None:
            self.record()

    def bound(callback) -> None:
        result = handler.async_result()
        result.rawlink(runs_inline(Recorder(callback).on_result))
        result.set(1)

    def partial(callback) -> None:
        result = handler.async_result()
        result.rawlink(functools.partial(runs_inline(callback)))
        result.set(1)

    def marked_partial(callback) -> None:  # the mark on the partial, not on what it wraps
        result = handler.async_result()
        result.rawlink(runs_inline(functools.partial(callback)))
        result.set(1)

    assert _thread_of(bound) == me
    assert _thread_of(partial) == me
    assert _thread_of(marked_partial) == me


def test_failing_inline_callback_is_logged_not_raised(handler, caplog):
    def broken(*_args: object) -> None:
        raise RuntimeError("boom")

    result = handler.async_result()
    result.rawlink(runs_inline(broken))
    result.set(1)  # must not raise into the thread that sets the result
    handler.dispatch_callback(Callback("watch", runs_inline(broken), ()))
    if HAS_EVENTFD:
        assert "boom" in caplog.text


# ============================================================================ with ZooKeeper
@pytest.fixture
def lean_client(zk_client_factory):
    """Make started clients on the lean handler (each with its own handler)."""

    def make(**kwargs):
        return zk_client_factory(handler=LeanHandler(), **kwargs)

    return make


@pytest.fixture
def proxy(zookeeper):
    with TcpProxy(zookeeper.connect_string) as proxy:
        yield proxy


class StateLog:
    def __init__(self) -> None:
        self.seen: list[zklock.LeaseState] = []

    def __call__(self, lease: zklock.Lease, state: zklock.LeaseState) -> None:
        self.seen.append(state)


def test_client_uses_the_handler(lean_client):
    client = lean_client()
    assert isinstance(client.handler, LeanHandler)
    assert client.command(b"ruok") == "imok"  # a side connection through create_connection
    assert client.server_version()


def test_acquire_release_and_lease(lean_client, zk_path):
    client = lean_client()
    lock = zklock.Lock(client, f"{zk_path}/a", identifier="lean")
    assert lock.acquire()
    lease = lock.lease
    assert lease is not None and lease.valid
    _data, stat = client.get(lease.node)
    assert stat.czxid == lease.token and stat.ephemeralOwner == client.client_id[0]
    assert [c.identifier for c in lock.contenders()] == ["lean"]
    lock.release()
    assert lease.state is zklock.LeaseState.RELEASED
    assert client.get_children(f"{zk_path}/a") == []
    for _ in range(50):  # the reused parent, many cycles
        with lock:
            pass


def test_contention_between_two_sessions(lean_client, zk_path):
    path = f"{zk_path}/c"
    first = zklock.Lock(lean_client(), path, identifier="first")
    second = zklock.Lock(lean_client(), path, identifier="second")
    assert first.acquire()
    assert second.acquire(blocking=False) is False
    assert second.acquire(timeout=0.2) is False
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(second.acquire(timeout=30)))
    waiter.start()
    assert wait_until(lambda: len(first.contenders()) == 2)
    first.release()  # the waiter's predecessor watch fires
    waiter.join(30)
    assert got == [True]
    assert [c.identifier for c in second.contenders()] == ["second"]
    second.release()


def test_threads_and_processes_worth_of_contenders_exclude(lean_client, zk_path):
    path = f"{zk_path}/many"
    inside = []
    overlaps = []
    guard = threading.Lock()

    def work(lock: zklock.Lock) -> None:
        for _ in range(10):
            with lock:
                with guard:
                    inside.append(1)
                    if len(inside) > 1:
                        overlaps.append(len(inside))
                time.sleep(0.001)
                with guard:
                    inside.pop()

    locks = [zklock.Lock(lean_client(), path) for _ in range(4)]
    threads = [threading.Thread(target=work, args=(lock,)) for lock in locks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert overlaps == []


def test_watches_fire(lean_client, zk_path):
    client = lean_client()
    other = lean_client()
    client.ensure_path(zk_path)
    events: list[str] = []
    fired = threading.Event()

    def watch(event) -> None:
        events.append(event.type)
        fired.set()

    assert client.exists(f"{zk_path}/w", watch=watch) is None
    other.create(f"{zk_path}/w", b"1")
    assert fired.wait(10)
    seen: list[bytes] = []
    client.DataWatch(f"{zk_path}/w", lambda data, stat: seen.append(data))
    other.set(f"{zk_path}/w", b"2")
    assert wait_until(lambda: seen[-1:] == [b"2"])
    assert events == ["CREATED"]
    other.delete(f"{zk_path}/w")


def test_short_connection_drop_keeps_session_and_lock(lean_client, zk_path, proxy):
    client = lean_client(hosts=proxy.connect_string, timeout=6.0)
    log = StateLog()
    lock = zklock.Lock(client, f"{zk_path}/drop", listener=log)
    with lock as lease:
        session = client.client_id[0]
        socket_before = client._connection._socket
        assert isinstance(socket_before, BufferedSocket)
        proxy.drop()
        assert wait_until(lambda: zklock.LeaseState.SUSPENDED in log.seen, 5)
        assert wait_until(lambda: log.seen[-1:] == [zklock.LeaseState.HELD], 10)
        assert client.client_id[0] == session
        assert lease.valid
        _data, stat = client.get(lease.node)  # the new connection's poller works
        assert stat.ephemeralOwner == session
    assert log.seen == [
        zklock.LeaseState.SUSPENDED, zklock.LeaseState.HELD, zklock.LeaseState.RELEASED
    ]


def test_waiter_survives_a_connection_drop(lean_client, zk_client_factory, zk_path, proxy):
    # The waiter keeps its session through the drop, so it keeps its node and its place in
    # the queue: it gets the lock on that node, before the contender queued behind it.
    path = f"{zk_path}/wait-drop"
    holder = zklock.Lock(zk_client_factory(), path, identifier="holder")
    assert holder.acquire()
    waiter_client = lean_client(hosts=proxy.connect_string, timeout=6.0)
    waiter = zklock.Lock(waiter_client, path, identifier="waiter")
    third = zklock.Lock(lean_client(), path, identifier="third")
    order: list[str] = []

    def take(lock: zklock.Lock) -> None:
        try:
            if lock.acquire(timeout=30):
                order.append(lock.identifier)
        except zklock.AcquireCancelled:  # by the clean-up of a failed test
            pass

    waiting = threading.Thread(target=take, args=(waiter,))
    waiting.start()
    third_waiting = threading.Thread(target=take, args=(third,))
    try:
        assert wait_until(lambda: len(holder.contenders()) == 2)
        queued = holder.contenders()
        assert [c.identifier for c in queued] == ["holder", "waiter"]
        waiter_node = queued[1].node
        third_waiting.start()
        assert wait_until(lambda: [c.identifier for c in holder.contenders()]
                          == ["holder", "waiter", "third"])
        states: list[str] = []
        waiter_client.add_listener(states.append)
        assert proxy.drop() == 1
        # Back on its session: SUSPENDED, then CONNECTED again.
        assert wait_until(lambda: states[:1] == [KazooState.SUSPENDED]
                          and waiter_client.state == KazooState.CONNECTED, 10)
        assert KazooState.LOST not in states
        assert holder.contenders()[1].node == waiter_node
        holder.release()
        waiting.join(35)
        assert order == ["waiter"]
        assert waiter.lease.node == waiter_node  # the node it queued with before the drop
        assert [c.identifier for c in waiter.contenders()] == ["waiter", "third"]
        waiter.release()
        third_waiting.join(35)
        assert order == ["waiter", "third"]
        third.release()
    finally:
        waiter.cancel()
        third.cancel()
        waiting.join(35)
        if third_waiting.is_alive():
            third_waiting.join(35)


def test_session_expiry_loses_the_lease(lean_client, zk_path):
    path = f"{zk_path}/expiry"
    victim = lean_client(timeout=4.0)
    lock = zklock.Lock(victim, path)
    other = zklock.Lock(lean_client(), path)
    with pytest.raises(zklock.LockLost):
        with lock as lease:
            assert expire_session(victim)
            assert lease.lost.wait(10)
            assert lease.state is zklock.LeaseState.LOST
            assert other.acquire(timeout=10)
    other.release()
    # kazoo started a new session on the same handler: it works.
    assert wait_until(lambda: victim.state == KazooState.CONNECTED, 15)
    with lock:
        pass


def test_inline_kazoo_completions_under_a_flood(lean_client, zk_path):
    """create(makepath) and ensure_path chain requests from the connection thread, while
    thousands of requests are queued; none may stall."""
    client = lean_client()
    results = [
        client.create_async(f"{zk_path}/flood/p{i % 50}/n", b"", sequence=True, makepath=True)
        for i in range(3000)
    ]
    paths = [result.get(timeout=60) for result in results]
    assert len(set(paths)) == 3000
    assert client.ensure_path_async(f"{zk_path}/flood/deep/a/b/c").get(timeout=30)
    assert client.exists(f"{zk_path}/flood/deep/a/b/c")
    client.delete(f"{zk_path}/flood", recursive=True)


@pytest.mark.usefixtures("eventfd")
def test_replies_reach_their_caller_without_kazoo_callback_thread(
    lean_client, zk_client_factory, zk_path
):
    """kazoo completes create(), ensure_path() and sync() through closures on its callback
    thread; LeanHandler runs them (and the lock's own reply callbacks) on the connection
    thread, so all of them complete while that thread is stuck. The stock handler, the
    control, cannot complete a create until it is free again."""
    # The control is kazoo's own handler even when ZKLOCK_TEST_HANDLER=lean forces the rest.
    lean, stock = lean_client(), zk_client_factory(handler=SequentialThreadingHandler())
    lean.ensure_path(zk_path)
    gates = [threading.Event(), threading.Event()]
    for client, gate in zip((lean, stock), gates):
        client.handler.completion_queue.put(gate.wait)  # occupies the callback thread
    try:
        created = lean.create_async(f"{zk_path}/a/b", b"", makepath=True)
        assert created.get(timeout=10) == f"{zk_path}/a/b"
        assert lean.ensure_path_async(f"{zk_path}/c/d").get(timeout=10)
        assert lean.sync_async(zk_path).get(timeout=10) == zk_path
        lock = zklock.Lock(lean, f"{zk_path}/lock")
        assert lock.acquire(timeout=10)
        lock.release()
        stuck = stock.create_async(f"{zk_path}/stock", b"")
        with pytest.raises(stock.handler.timeout_exception):
            stuck.get(timeout=1.0)
    finally:
        for gate in gates:
            gate.set()
    assert stuck.get(timeout=10) == f"{zk_path}/stock"
    lean.delete(zk_path, recursive=True)


def test_stop_and_restart_the_client(lean_client, zk_path):
    client = lean_client()
    client.ensure_path(zk_path)
    client.stop()
    client.start(timeout=15)
    with zklock.Lock(client, f"{zk_path}/restart"):
        pass


@contextlib.contextmanager
def kept_busy(*clients) -> Iterator[None]:
    """Each client sends a request every 50 ms, as a retrying caller would, until the end."""
    stop = threading.Event()

    def keep_busy() -> None:
        while not stop.is_set():
            for client in clients:
                client.exists_async("/")
            stop.wait(0.05)

    busy = threading.Thread(target=keep_busy)
    busy.start()
    try:
        yield
    finally:
        stop.set()
        busy.join(5)


@pytest.mark.parametrize("handler_kind", ["lean", "stock"])
def test_a_busy_client_notices_a_silent_server(
    handler_kind, lean_client, zk_client_factory, proxy
):
    """kazoo checks for an unanswered ping only after a quiet spell with nothing sent; a
    client that keeps sending would never leave a server that went silent. LeanHandler holds
    requests back once the server has been silent for a heartbeat interval, so kazoo's own
    ping check runs and drops the connection (SUSPENDED), bounded by the session timeout."""
    session_timeout = 3.0
    def stock_client(**kwargs):  # kazoo's own, even when ZKLOCK_TEST_HANDLER=lean
        return zk_client_factory(handler=SequentialThreadingHandler(), **kwargs)

    make = lean_client if handler_kind == "lean" else stock_client
    client = make(hosts=proxy.connect_string, timeout=session_timeout)
    states: list[tuple[str, float]] = []
    client.add_listener(lambda state: states.append((state, time.monotonic())))
    with kept_busy(client):
        time.sleep(0.3)
        cut_at = time.monotonic()
        proxy.blackhole()
        try:
            noticed = wait_until(
                lambda: any(state == KazooState.SUSPENDED for state, _ in states), 3 * session_timeout
            )
        finally:
            proxy.heal()
    if noticed:
        at = next(t for s, t in states if s == KazooState.SUSPENDED)
        print(f"\nTIMING {handler_kind} handler: busy client SUSPENDED "
              f"{at - cut_at:.2f}s after the cut")
    else:
        print(f"\nTIMING {handler_kind} handler: busy client still CONNECTED "
              f"{3 * session_timeout:.0f}s after the cut")
    # kazoo 2.11's own handler does not notice while the client keeps sending (docs/chaos.md);
    # should a later kazoo fix that, this fails, and the docs need updating.
    assert noticed is (handler_kind == "lean")
    assert wait_until(lambda: client.state == KazooState.CONNECTED, 20)


def test_clients_sharing_one_lean_handler_each_notice_a_silent_server(zk_client_factory, proxy):
    """Each connection keeps its own count of unanswered requests: a second client's waits
    on the same handler must not reset the first's (they did, and its server's silence went
    unnoticed while the client kept sending)."""
    handler = LeanHandler()
    cut_off = zk_client_factory(handler=handler, hosts=proxy.connect_string, timeout=3.0)
    direct = zk_client_factory(handler=handler, timeout=3.0)
    suspended = threading.Event()
    cut_off.add_listener(lambda state: state == KazooState.SUSPENDED and suspended.set())
    with kept_busy(cut_off, direct):
        time.sleep(0.3)
        proxy.blackhole()
        try:
            assert suspended.wait(9.0)  # three session timeouts: noticed as a lone client would
            assert direct.state == KazooState.CONNECTED
            assert direct.exists("/") is not None
        finally:
            proxy.heal()
    assert wait_until(lambda: cut_off.state == KazooState.CONNECTED, 20)

