"""Faults between a kazoo client and ZooKeeper: server-side session expiry and a TCP proxy.

:func:`expire_session` ends a client's session on the server, the way a real expiry does (not
kazoo's client-side simulation). :class:`TcpProxy` sits between a client and one server and can
drop its connections (the client reconnects and keeps its session), black-hole them (a
partition: the session expires on the server while the client hears nothing), or hold back the
server's replies only (requests run on the server; dropped then, their replies are lost).
"""

from __future__ import annotations

import contextlib
import functools
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional, TypeVar, Union

from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState

from ._errors import HarnessError
from ._settings import LOOPBACK

if TYPE_CHECKING:
    from typing import Self

__all__ = ["TcpProxy", "connect_string_of", "expire_session", "expire_session_id"]

_T = TypeVar("_T")


def connect_string_of(client: KazooClient) -> str:
    """Rebuild the ``hosts`` string (servers and chroot) a kazoo client was created with."""
    servers = []
    for host, port in client.hosts:
        servers.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return ",".join(servers) + (client.chroot or "")


def expire_session(client: KazooClient, *, hosts: Optional[str] = None, timeout: float = 10.0) -> bool:
    """Expire ``client``'s session on the server; return whether the client saw it in time.

    Opens a second client on the same session (``client_id``) and closes it, so the server
    ends the session: ephemeral nodes go, and ``client`` gets ``KazooState.LOST`` when it next
    talks to the server (kazoo then starts a new session by itself). ``hosts`` defaults to the
    client's own servers; pass the real servers when ``client`` goes through a
    :class:`TcpProxy`. Waits up to ``timeout`` seconds for ``client`` to report LOST.
    Raises :class:`HarnessError` when the session cannot be joined there.
    """
    client_id = client.client_id
    if client_id is None:
        raise HarnessError("the client has no session to expire (not connected)")
    lost = threading.Event()

    def listener(state: Any) -> None:
        if state == KazooState.LOST:
            lost.set()

    client.add_listener(listener)
    try:
        expire_session_id(hosts or connect_string_of(client), *client_id, timeout=timeout)
        deadline = time.monotonic() + timeout
        while not lost.is_set() and time.monotonic() < deadline:
            if client.client_id is not None and client.client_id[0] != client_id[0]:
                return True  # already reconnected with a new session
            lost.wait(0.05)
        return lost.is_set()
    finally:
        client.remove_listener(listener)


def expire_session_id(hosts: str, session_id: int, password: bytes, *, timeout: float = 10.0) -> None:
    """Expire the session ``(session_id, password)`` on the servers of ``hosts``.

    For a client in another process, which :func:`expire_session` cannot reach: that process
    tells its ``client.client_id`` (the id and the password) and this ends the session the
    same way, by joining it and closing it. Returns once the server has closed it; the
    client learns of it when it next talks to the server.
    """
    impostor = KazooClient(hosts=hosts, client_id=(session_id, password))
    try:
        impostor.start(timeout=timeout)
        impostor.stop()  # sends closeSession for the victim's session
    except Exception as error:  # kazoo's timeout or error: the harness's failure, typed so
        raise HarnessError(f"could not expire session 0x{session_id:x} on {hosts}: {error!r}") from error
    finally:
        impostor.close()


_BUFFER_LIMIT = 1 << 20
_COMMAND_TIMEOUT = 10.0


class _End:
    """One socket of a proxied connection and the bytes waiting to be written to it."""

    __slots__ = ("eof", "outbox", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.outbox = bytearray()
        self.eof = False  # the peer behind this socket finished sending


class _Pipe:
    """A proxied connection: the client's socket and, once connected, the server's."""

    __slots__ = ("client", "server")

    def __init__(self, client: _End, server: Optional[_End]) -> None:
        self.client = client
        self.server = server

    def peer(self, end: _End) -> Optional[_End]:
        return self.server if end is self.client else self.client

    def ends(self) -> list[_End]:
        return [self.client] if self.server is None else [self.client, self.server]


class TcpProxy:
    """A loopback TCP proxy to one ZooKeeper server, for network faults.

    ::

        with TcpProxy(zookeeper.connect_string) as proxy:
            client = KazooClient(hosts=proxy.connect_string)
            proxy.drop()         # connections closed: SUSPENDED, then CONNECTED, same session
            proxy.blackhole()    # bytes stop, sockets stay open: the session expires
            proxy.heal()
            proxy.hold_replies() # requests reach the server, its replies wait in the proxy
            proxy.drop()         # ... and are lost with the connections
            proxy.heal()

    One thread serves every connection; :meth:`close` stops and joins it and closes every
    socket. At most ``max_connections`` connections are open at a time; more are refused.
    While black-holed, new connections are accepted and held without being forwarded, and
    :meth:`heal` closes them (the client gave up on them long ago); established connections
    resume with whatever bytes the kernel buffered, as TCP would after a partition heals.
    :meth:`hold_replies` is the one-way fault: see there.
    """

    def __init__(
        self,
        upstream: Union[str, tuple[str, int]],
        *,
        listen_host: str = LOOPBACK,
        listen_port: int = 0,
        max_connections: int = 64,
        connect_timeout: float = 2.0,
    ) -> None:
        if isinstance(upstream, str):
            first = upstream.partition("/")[0].split(",")[0].strip()
            host, _, port = first.rpartition(":")
            upstream = (host.strip("[]"), int(port))
        self.upstream = upstream
        self._listen = (listen_host, listen_port)
        self._max = max_connections
        self._connect_timeout = connect_timeout
        self._selector: Optional[selectors.BaseSelector] = None
        self._listener: Optional[socket.socket] = None
        self._wake_r: Optional[socket.socket] = None
        self._wake_w: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._commands: queue.SimpleQueue[tuple[Callable[[], Any], _Reply]] = queue.SimpleQueue()
        self._pipes: set[_Pipe] = set()
        self._blackholed = False
        self._holding = False
        self._stopping = False
        self._address: Optional[tuple[str, int]] = None

    # ---------------------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        """Listen and start forwarding."""
        if self._thread is not None:
            raise HarnessError("proxy already started")
        if self._stopping:
            raise HarnessError("a closed proxy cannot be started again; make a new TcpProxy")
        try:
            self._selector = selectors.DefaultSelector()
            self._listener = socket.create_server(self._listen, backlog=self._max)
            self._listener.setblocking(False)
            self._address = self._listener.getsockname()[:2]
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._selector.register(self._listener, selectors.EVENT_READ, self._accept)
            self._selector.register(self._wake_r, selectors.EVENT_READ, self._drain_wakeups)
            thread = threading.Thread(
                target=self._run, name=f"zklock-tcp-proxy-{self._address[1]}", daemon=True
            )
            thread.start()
        except BaseException:
            # A port already taken, say: close what was opened (the selector's epoll fd too),
            # so that failed starts leak no descriptors and a later start() may try again.
            self._cleanup()
            self._address = None
            raise
        self._thread = thread
        return self

    def close(self) -> None:
        """Close every connection and the listener, and join the proxy's thread."""
        thread = self._thread
        if thread is not None:
            self._stopping = True
            self._wake()
            thread.join(_COMMAND_TIMEOUT)
            if thread.is_alive():
                raise HarnessError(f"TCP proxy thread {thread.name} did not stop")
        self._cleanup()

    def __enter__(self) -> Self:
        """Start the proxy (:meth:`start`); leaving the block closes it."""
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    # ---------------------------------------------------------------------------- inspection
    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` the proxy listens on."""
        if self._address is None:
            raise HarnessError("proxy not started")
        return self._address

    @property
    def connect_string(self) -> str:
        """The kazoo ``hosts`` string that reaches the server through the proxy."""
        host, port = self.address
        return f"{host}:{port}"

    @property
    def connections(self) -> int:
        """Connections open now (forwarded, frozen or held)."""
        return self._call(lambda: len(self._pipes))

    @property
    def blackholed(self) -> bool:
        """True between :meth:`blackhole` and :meth:`heal`."""
        return self._blackholed

    @property
    def holding_replies(self) -> bool:
        """True between :meth:`hold_replies` and :meth:`heal`."""
        return self._holding

    # ------------------------------------------------------------------------------- faults
    def drop(self) -> int:
        """Close every current connection (a short network blip); return how many.

        Bytes not delivered yet (held by :meth:`hold_replies` or :meth:`blackhole`) are lost
        with their connections.
        """

        def drop_all() -> int:
            count = len(self._pipes)
            for pipe in list(self._pipes):
                self._close_pipe(pipe)
            return count

        return self._call(drop_all)

    def blackhole(self) -> None:
        """Stop forwarding bytes without closing sockets, and hold new connections."""

        def freeze() -> None:
            self._blackholed = True
            for pipe in self._pipes:
                self._update(pipe)

        self._call(freeze)

    def hold_replies(self) -> None:
        """Forward the client's bytes to the server, but hold back what the server sends.

        Requests reach the server and run there; their replies (and the server closing a
        connection) wait in the proxy, on this and on later connections, until
        :meth:`heal` delivers them late, or :meth:`drop` closes the connections and loses
        them: the client then cannot know whether its requests ran. For a reply lost with
        its connection, call :meth:`drop` before :meth:`heal`. A client that hears nothing
        for its read timeout (kazoo: two thirds of the session timeout) drops the
        connection itself; its session stays alive meanwhile, since its pings reach the
        server.
        """

        def hold() -> None:
            self._holding = True
            for pipe in self._pipes:
                self._update(pipe)

        self._call(hold)

    def heal(self) -> None:
        """End :meth:`blackhole` and :meth:`hold_replies`: forward bytes both ways again.

        Bytes held meanwhile are delivered; connections accepted while black-holed are
        closed.
        """

        def thaw() -> None:
            self._blackholed = False
            self._holding = False
            for pipe in list(self._pipes):
                if pipe.server is None:
                    self._close_pipe(pipe)
                else:
                    self._update(pipe)

        self._call(thaw)

    # -------------------------------------------------------------------- the proxy's thread
    def _run(self) -> None:
        assert self._selector is not None
        try:
            while not self._stopping:
                for key, mask in self._selector.select(timeout=0.5):
                    key.data(mask)
                self._run_commands()
        finally:
            self._stopping = True
            for pipe in list(self._pipes):
                self._close_pipe(pipe)
            self._run_commands()  # answer what is left (the pipes are gone by now)

    def _run_commands(self) -> None:
        while True:
            try:
                command, reply = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                reply.value = command()
            except Exception as exc:
                reply.error = exc
            reply.done.set()

    def _drain_wakeups(self, mask: int) -> None:
        assert self._wake_r is not None
        with contextlib.suppress(BlockingIOError):
            self._wake_r.recv(4096)

    def _accept(self, mask: int) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if len(self._pipes) >= self._max:
            sock.close()
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._blackholed:
            self._pipes.add(_Pipe(_End(sock), None))  # held: never forwarded
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=self._connect_timeout)
        except OSError:
            sock.close()
            return
        upstream.setblocking(False)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pipe = _Pipe(_End(sock), _End(upstream))
        self._pipes.add(pipe)
        self._update(pipe)

    def _on_ready(self, pipe: _Pipe, end: _End, mask: int) -> None:
        if pipe not in self._pipes:
            return
        peer = pipe.peer(end)
        try:
            if mask & selectors.EVENT_READ and peer is not None:
                data = end.sock.recv(65536)
                if data:
                    peer.outbox += data
                    self._flush(peer)
                else:
                    end.eof = True
                    if not peer.outbox:
                        peer.sock.shutdown(socket.SHUT_WR)
            if mask & selectors.EVENT_WRITE:
                self._flush(end)
                if not end.outbox and peer is not None and peer.eof:
                    end.sock.shutdown(socket.SHUT_WR)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close_pipe(pipe)
            return
        if all(e.eof for e in pipe.ends()) and not any(e.outbox for e in pipe.ends()):
            self._close_pipe(pipe)
        else:
            self._update(pipe)

    @staticmethod
    def _flush(end: _End) -> None:
        if end.outbox:
            sent = end.sock.send(end.outbox)
            del end.outbox[:sent]

    def _update(self, pipe: _Pipe) -> None:
        """Register each socket for what it can do now.

        Nothing while black-holed; while replies are held, the server's socket is not read
        (its bytes wait in the kernel) and the client's is not written to.
        """
        assert self._selector is not None
        for end in pipe.ends():
            peer = pipe.peer(end)
            events = 0
            if not self._blackholed and peer is not None:
                held = self._holding
                if not end.eof and len(peer.outbox) < _BUFFER_LIMIT and not (held and end is pipe.server):
                    events |= selectors.EVENT_READ
                if end.outbox and not (held and end is pipe.client):
                    events |= selectors.EVENT_WRITE
            try:
                key: Optional[selectors.SelectorKey] = self._selector.get_key(end.sock)
            except KeyError:
                key = None
            if not events:
                if key is not None:
                    self._selector.unregister(end.sock)
            elif key is None:
                self._selector.register(end.sock, events, functools.partial(self._on_ready, pipe, end))
            elif key.events != events:
                self._selector.modify(end.sock, events, key.data)

    def _close_pipe(self, pipe: _Pipe) -> None:
        self._pipes.discard(pipe)
        for end in pipe.ends():
            if self._selector is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(end.sock)
            end.sock.close()

    # -------------------------------------------------------------------------- the caller's side
    def _call(self, command: Callable[[], _T]) -> _T:
        """Run ``command`` on the proxy's thread and return its result."""
        thread = self._thread
        if thread is None or not thread.is_alive() or self._stopping:
            raise HarnessError("proxy not running")
        reply = _Reply()
        self._commands.put((command, reply))
        self._wake()
        if not reply.done.wait(_COMMAND_TIMEOUT):
            raise HarnessError("TCP proxy did not answer")
        if reply.error is not None:
            raise reply.error
        value: _T = reply.value
        return value

    def _wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def _cleanup(self) -> None:
        for pipe in list(self._pipes):
            self._close_pipe(pipe)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._listener = self._wake_r = self._wake_w = None
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        self._thread = None


class _Reply:
    """The outcome of a command run on the proxy's thread."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: Optional[BaseException] = None
