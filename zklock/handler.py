"""A leaner kazoo handler: fewer system calls and thread hand-offs per ZooKeeper request.

kazoo is zklock's connection layer; most of the time a request spends in the client is kazoo's
own path: the caller queues the request and wakes the connection thread through a socket
pair, the connection thread waits on its sockets through ``handler.select`` about five times
per request, and the stock :class:`~kazoo.handlers.threading.SequentialThreadingHandler`
answers each of those calls with ``kazoo.handlers.utils.selector_select``, which builds a new
``selectors.DefaultSelector``, registers the sockets, polls once and closes it again.
:class:`LeanHandler` trims that path through kazoo's public handler interface, without
patching kazoo::

    from kazoo.client import KazooClient
    from zklock.handler import LeanHandler

    client = KazooClient(hosts, handler=LeanHandler())

What it changes, all inside the handler:

- ``select`` keeps one epoll object per socket set for as long as the sockets live, so a wait
  is one ``epoll_wait`` (``selectors.DefaultSelector`` on systems without epoll).
- ``create_connection`` returns the TCP socket inside a :class:`BufferedSocket`: one ``recv``
  reads everything the server has sent, so a reply costs one system call instead of a
  length read, a body read and a ``select`` before each; ``select`` reports buffered bytes as
  readable.  Its ``send`` waits for room itself, so asking whether it is writable costs
  nothing.  TLS sockets (``use_ssl=True``) are left as they are, with one difference from
  kazoo's stock ``select``: an ``ssl.SSLSocket`` holding decrypted bytes it has not returned
  yet (``SSLSocket.pending()``) counts as readable at once.  Polling its descriptor cannot
  show those bytes, so without this a reply that came in the same TLS record as the
  previous one would wait until the server sends something more (at worst the answer to
  kazoo's next ping, a third of the session timeout later).
- ``create_socket_pair`` returns a :class:`Doorbell` (an eventfd) for the caller -> connection
  thread wake-ups: cheaper than a socket pair, and a wake-up never blocks.
- Completion callbacks of kazoo's own ``create_async`` / ``ensure_path_async`` /
  ``sync_async`` (which only turn one result into another), and any callback marked with
  :func:`runs_inline`, run on the thread that delivers them instead of waiting for a worker
  thread: a ``create`` reply then reaches its caller with one thread hand-off instead of
  two.  (kazoo hides most of them inside its ``wrap()`` decorator; they are recognised by
  the closure that decorator keeps.)  Every other callback is queued exactly as kazoo
  does.  (Only where eventfd exists, Linux with Python >= 3.10, since an inline callback
  may send a request from the connection thread, and that must never block.)

- A busy client notices a server that stopped answering.  kazoo counts every request it
  sends as a heartbeat and checks for an unanswered ping only after a quiet spell with
  nothing sent, so a client that keeps sending never leaves a frozen (not dead) server.
  When the connection socket has stayed silent for longer than kazoo waits between
  heartbeats although requests went out, ``select`` holds back the request doorbell and
  waits on the socket alone: kazoo's own ping check then runs, and drops the connection if
  the server stays silent (kazoo then moves to another server, keeping the session).
  (Only with the eventfd doorbell as well: kazoo's own socket pair, left unread while held
  back, would fill, and the next request would block its caller.)

Everything else (worker threads, queues, result objects, timeouts) is kazoo's.
"""

from __future__ import annotations

import errno
import functools
import logging
import operator
import os
import select
import selectors
import socket
import ssl
import threading
import time
import weakref
from collections import OrderedDict
from typing import Any, Callable, TypeVar

from kazoo.handlers import utils as kazoo_utils
from kazoo.handlers.threading import AsyncResult, SequentialThreadingHandler

from .errors import _KAZOO_CONNECTION_FAILURES, UsageError

__all__ = ["BufferedSocket", "LeanAsyncResult", "LeanHandler", "runs_inline"]

log = logging.getLogger("zklock.handler")

F = TypeVar("F", bound=Callable[..., Any])

_INLINE_ATTRIBUTE = "_zklock_runs_inline"
_CACHED_SETS = 8  # kazoo uses three socket sets per connection; a few spare for reconnects
_RECV_SIZE = 65536

_HAS_EPOLL = hasattr(select, "epoll")
_HAS_EVENTFD = hasattr(os, "eventfd")  # Linux, Python >= 3.10
_FILENO = operator.methodcaller("fileno")
# Linux and the BSDs; elsewhere (Windows) 0, which is as good: kazoo makes its sockets non-blocking.
_DONTWAIT: int = getattr(socket, "MSG_DONTWAIT", 0)
_IN: int = getattr(select, "EPOLLIN", 1)  # the same bits as select.poll's POLLIN / POLLOUT
_OUT: int = getattr(select, "EPOLLOUT", 4)


def runs_inline(func: F) -> F:
    """Mark ``func`` as safe to run on the thread that delivers it, and return it unchanged.

    Under :class:`LeanHandler`, a marked watch callback runs on kazoo's connection thread
    and a marked completion callback (``AsyncResult.rawlink``) on the thread that sets the
    result (or, linked to a result already set, on the linking thread), instead of waiting
    for a handler worker thread to pick it up.  A marked function must return quickly, must
    never block nor wait for a ZooKeeper reply (that would stall the connection; sending an
    ``*_async`` request is fine), and gets no ordering guarantee against queued callbacks.
    A result that kazoo itself failed (connection lost or closed, session expired, auth
    failed) still has its callbacks queued: a callback that sends again in answer to those
    must wait for the reconnect.  A bound method is marked through its function (for every
    instance); a ``functools.partial`` of a marked function counts as marked.  Under any
    other handler the mark has no effect.
    """
    target = getattr(func, "__func__", func)  # a bound method takes no attribute of its own
    try:
        setattr(target, _INLINE_ATTRIBUTE, True)
    except (AttributeError, TypeError):  # a built-in, a number, a type: nothing to mark
        raise UsageError(f"runs_inline marks a Python function or method, not {func!r}") from None
    return func


# kazoo's own completion closures (kazoo/client.py): each only reads a result that is already
# set, sets another, and may send a further request without waiting for it.
_KAZOO_INLINE = frozenset({
    "KazooClient.create_async.<locals>.create_completion",
    "KazooClient.create_async.<locals>.retry_completion",
    "KazooClient.ensure_path_async.<locals>.create_completion",
    "KazooClient.ensure_path_async.<locals>.prepare_completion",
    "KazooClient.ensure_path_async.<locals>.exists_completion",
    "KazooClient.sync_async.<locals>._sync_completion",
})


def _inline(func: Any) -> bool:
    # Inline only when a callback that sends a request cannot block the sending thread.
    if not _HAS_EVENTFD:
        return False
    while True:  # the mark may be on a partial itself or on the function it wraps
        if getattr(func, _INLINE_ATTRIBUTE, False) is True:
            return True
        if not isinstance(func, functools.partial):
            break
        func = func.func
    return _kazoo_completion(func) in _KAZOO_INLINE


def _kazoo_completion(func: Any) -> str | None:
    """The qualified name of the kazoo.client completion ``func`` is, or wraps; else None.

    kazoo decorates its completions with ``capture_exceptions`` (``functools.wraps``: the
    name shows through) or ``wrap``, whose inner function is not ``functools.wraps``-ed: the
    completion it calls is found in that function's closure.
    """
    for _ in range(4):  # a partial, capture_exceptions' wrapper, wrap's inner function
        while isinstance(func, functools.partial):
            func = func.func
        if _module(func) == "kazoo.client":
            return getattr(func, "__qualname__", None)
        inner = getattr(func, "__wrapped__", None)
        if inner is None:
            inner = next(
                (value for value in _closure_values(func) if _module(value) == "kazoo.client"),
                None,
            )
        if inner is None:
            return None
        func = inner
    return None


def _closure_values(func: Any) -> list[Any]:
    """The values ``func``'s closure holds (a cell not yet filled is left out)."""
    values = []
    for cell in getattr(func, "__closure__", None) or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    return values


def _module(obj: Any) -> Any:
    return getattr(obj, "__module__", None)


def _has_buffered(obj: Any) -> bool:
    """True if reading ``obj`` returns at once without its descriptor being readable."""
    if type(obj) is BufferedSocket:
        return obj.ready()
    if isinstance(obj, ssl.SSLSocket):
        # Decrypted bytes of a TLS record already read from the descriptor: no poll sees them.
        try:
            return obj.pending() > 0
        except (OSError, ValueError):  # closed: the poll reports it
            return False
    return False


def _check_timeout(timeout: Any) -> None:
    """Refuse what ``select`` refuses as a timeout: not a number, or negative."""
    if not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a number")
    if timeout < 0:
        raise ValueError("timeout must be non-negative")


def _fileno(fileobj: Any) -> int:
    # The fast path of kazoo's fileobj_to_fd; anything unusual goes through it, for its errors.
    try:
        fd = fileobj.fileno()
    except AttributeError:
        fd = -1
    if type(fd) is int and fd >= 0:
        return fd
    checked: int = kazoo_utils.fileobj_to_fd(fileobj)
    return checked


def _wait_writable(sock: socket.socket, timeout: float | None) -> bool:
    """Wait until ``sock`` can take bytes; False when ``timeout`` passed first.

    Not select.select: that refuses a descriptor of 1024 or more with a ValueError, which
    kazoo does not take for a dropped connection (it stops the client).  poll() has no such
    limit and, unlike a selector, opens no descriptor of its own.
    """
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLOUT)
        return bool(poller.poll(None if timeout is None else timeout * 1000))
    with selectors.DefaultSelector() as selector:  # pragma: no cover - systems without poll
        selector.register(sock, selectors.EVENT_WRITE)
        return bool(selector.select(timeout))


class BufferedSocket:
    """A non-blocking TCP socket with a receive buffer (what ``LeanHandler`` connects with).

    ``recv(n)`` serves buffered bytes first and otherwise reads everything available (up to
    64 KiB) in one system call; :meth:`pending` says how many bytes are buffered, which is
    how kazoo's reader knows it need not wait for the socket again.  ``send`` waits for room
    when the socket's send buffer is full (bounded by ``send_timeout``, which
    :meth:`LeanHandler.select` sets to the bound kazoo gives each write) instead of failing
    with ``EAGAIN``.  Every other socket method is the wrapped socket's.
    """

    def __init__(self, sock: socket.socket, send_timeout: float | None) -> None:
        self.socket = sock
        """The wrapped socket."""
        self.send_timeout = send_timeout
        """How long ``send`` waits for room in the send buffer (``None``: no limit)."""
        self._buffer = b""
        self._offset = 0
        self._error: OSError | None = None  # met by fill(), raised by the next recv
        self._eof = False
        # One reused receive area, instead of a fresh 64 KiB bytes object per recv.
        self._area = bytearray(_RECV_SIZE)
        self._view = memoryview(self._area)

    def fileno(self) -> int:
        """The wrapped socket's descriptor (-1 once closed)."""
        return self.socket.fileno()

    def pending(self) -> int:
        """Bytes received from the server and not yet returned by :meth:`recv`."""
        return len(self._buffer) - self._offset

    def ready(self) -> bool:
        """True if :meth:`recv` returns at once: bytes, an error or the end are buffered."""
        return self._offset < len(self._buffer) or self._error is not None or self._eof

    def fill(self) -> bool:
        """Read what the server has sent, without waiting; True if :meth:`recv` will not wait.

        An error or the end of the stream met here is what the next :meth:`recv` reports.
        """
        if self.ready():
            return True
        try:
            count = self.socket.recv_into(self._area, _RECV_SIZE, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as error:
            self._error = error
            return True
        if not count:
            self._eof = True
        self._buffer = bytes(self._view[:count])
        self._offset = 0
        return True

    def recv(self, size: int) -> bytes:
        """Return up to ``size`` bytes: buffered ones, else one ``recv`` of the socket."""
        if self._offset < len(self._buffer):
            end = self._offset + size
            chunk = self._buffer[self._offset : end]
            self._offset = min(end, len(self._buffer))
            return chunk
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._eof:
            return b""
        if size >= _RECV_SIZE:
            return self.socket.recv(size)
        count = self.socket.recv_into(self._area, _RECV_SIZE)
        if count <= size:
            return bytes(self._view[:count])
        self._buffer = bytes(self._view[:count])
        self._offset = size
        return self._buffer[:size]

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Send what fits; if nothing fits now, wait for room (``socket.timeout`` past the limit)."""
        try:
            return self.socket.send(data)
        except BlockingIOError:
            pass
        deadline = None if self.send_timeout is None else time.monotonic() + self.send_timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not _wait_writable(self.socket, remaining):
                raise socket.timeout("timed out waiting to send to ZooKeeper")
            try:
                return self.socket.send(data)
            except BlockingIOError:
                continue

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        """The wrapped socket's ``sendall``."""
        self.socket.sendall(data)

    def setblocking(self, flag: bool) -> None:
        """The wrapped socket's ``setblocking``."""
        self.socket.setblocking(flag)

    def close(self) -> None:
        """Close the wrapped socket and drop the buffer."""
        self._buffer = b""
        self._offset = 0
        self.socket.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.socket, name)

    def __repr__(self) -> str:
        return f"BufferedSocket({self.socket!r}, pending={self.pending()})"


class Doorbell:
    """The wake-up channel between kazoo's callers and its connection thread, on an eventfd.

    kazoo queues a request, then writes one byte to a socket pair so that the connection
    thread, waiting in ``select``, wakes up and reads one byte per request it sends.  A socket
    pair holds only a few hundred such bytes before ``send`` blocks, which would stall a
    callback that runs on the connection thread and sends a request.  An eventfd in semaphore
    mode counts instead: ``send`` adds to the count and never blocks, ``recv(1)`` takes one,
    and it is readable while the count is above zero.  The same object is both ends.
    """

    def __init__(self) -> None:
        self._fd = os.eventfd(0, os.EFD_SEMAPHORE | os.EFD_CLOEXEC)
        # A caller's send may race close() (a client stopped by another thread): without
        # the lock, the number could be closed and reused by a new file between reading it
        # and writing to it, and the ring would land in that file.
        self._closing = threading.Lock()

    def fileno(self) -> int:
        """The eventfd (-1 once closed)."""
        return self._fd

    def send(self, data: bytes) -> int:
        """Ring once per byte of ``data``."""
        with self._closing:
            os.eventfd_write(self._open_fd(), len(data))
        return len(data)

    def recv(self, size: int) -> bytes:
        """Take one ring (waits for one if there is none), whatever ``size`` asks."""
        os.eventfd_read(self._open_fd())
        return b"\0"

    def _open_fd(self) -> int:
        fd = self._fd
        if fd < 0:
            raise OSError(errno.EBADF, "Bad file descriptor")
        return fd

    def close(self) -> None:
        """Close the eventfd; later use raises ``OSError`` (EBADF), as a closed socket does."""
        with self._closing:
            fd, self._fd = self._fd, -1
            if fd >= 0:
                os.close(fd)

    def __repr__(self) -> str:
        return f"Doorbell(fd={self._fd})"


class _Poller:
    """One registered socket set: the poller and what each descriptor stands for."""

    __slots__ = ("__weakref__", "_close", "closed", "fds", "fileobjs", "poll", "readers", "writers")

    def __init__(self, rlist: list[Any], wlist: list[Any]) -> None:
        rfds = [_fileno(obj) for obj in rlist]
        wfds = [_fileno(obj) for obj in wlist]
        # Strong references, so that the cache key (made of these objects) stays unique.
        self.fileobjs = tuple(rlist) + tuple(wlist)
        self.fds = tuple(rfds) + tuple(wfds)
        self.closed = False
        self.readers: dict[int, list[Any]] = {}
        self.writers: dict[int, list[Any]] = {}
        for fd, obj in zip(rfds, rlist):
            self.readers.setdefault(fd, []).append(obj)
        for fd, obj in zip(wfds, wlist):
            self.writers.setdefault(fd, []).append(obj)
        masks = {fd: (_IN if fd in self.readers else 0) | (_OUT if fd in self.writers else 0)
                 for fd in (*self.readers, *self.writers)}
        self.poll: Callable[[float], list[tuple[int, int]]]
        # Out of descriptors (EMFILE) for the poller itself: an OSError, which kazoo takes for
        # a dropped connection and retries, as with its own handler.  A descriptor the poller
        # refuses (a closed socket): ValueError, as kazoo's own handler raises.
        if _HAS_EPOLL:
            epoll = select.epoll()
            try:
                for fd, mask in masks.items():
                    epoll.register(fd, mask)
            except OSError as error:
                epoll.close()
                raise ValueError("Invalid event mask or fd") from error
            except BaseException:
                epoll.close()
                raise
            self._close: Callable[[], None] = epoll.close
            self.poll = epoll.poll
        else:  # pragma: no cover - systems without epoll
            selector = selectors.DefaultSelector()
            try:
                for fd, mask in masks.items():
                    events = (selectors.EVENT_READ if mask & _IN else 0) | (
                        selectors.EVENT_WRITE if mask & _OUT else 0
                    )
                    selector.register(fd, events)
            except OSError as error:
                selector.close()
                raise ValueError("Invalid event mask or fd") from error
            except BaseException:
                selector.close()
                raise
            self._close = selector.close
            self.poll = functools.partial(_selector_poll, selector)

    def current(self) -> bool:
        """True while open and every socket still has the descriptor it was registered with."""
        return not self.closed and tuple(map(_FILENO, self.fileobjs)) == self.fds

    def close(self) -> None:
        """Close the poller's own descriptor."""
        self.closed = True
        self._close()


def _selector_poll(selector: selectors.BaseSelector, timeout: float) -> list[tuple[int, int]]:
    # A selectors result in epoll's (fd, mask) shape, for systems without epoll.
    ready = selector.select(None if timeout < 0 else timeout)
    return [
        (key.fd, (_IN if events & selectors.EVENT_READ else 0)
         | (_OUT if events & selectors.EVENT_WRITE else 0))
        for key, events in ready
    ]


class LeanAsyncResult(AsyncResult):  # type: ignore[misc]  # kazoo is untyped
    """kazoo's threading ``AsyncResult``; callbacks marked :func:`runs_inline` run at once.

    Except when kazoo itself failed the result (``errors._KAZOO_CONNECTION_FAILURES``): it does so on
    its connection thread while it empties its queue of pending requests, and a callback
    that sent a new request from there would have it queued behind, failed, and so on for
    ever, before the connection could ever be made again.
    """

    def _do_callbacks(self) -> None:
        inline_allowed = not isinstance(self._exception, _KAZOO_CONNECTION_FAILURES)
        for callback in self._callbacks:
            if (inline_allowed and _inline(callback)) or not self._handler.running:
                try:
                    callback(self)
                except Exception:
                    log.exception("completion callback %r failed", callback)
            else:
                self._handler.completion_queue.put(functools.partial(callback, self))


class _SilenceWatch:
    """How long the server has left requests unanswered, seen from kazoo's ``select`` calls.

    kazoo's connection loop waits on ``[connection socket, doorbell]`` with a timeout of at
    most half its read timeout (its heartbeat interval).  A request goes out each time the
    doorbell is reported; any readable moment of the socket means the server spoke.  (Plain
    attributes, read and written by ``LeanHandler`` inline: this runs on every wait.)
    """

    __slots__ = ("connection", "heartbeat", "poller", "unanswered_since")

    def __init__(self) -> None:
        self.connection: Any = None
        # Of [connection, doorbell]; weak, so that it closes with the connection thread's
        # cache (a strong reference kept one epoll descriptor open per stopped client).
        self.poller: weakref.ref[_Poller] | None = None
        self.heartbeat = 0.0  # the longest wait kazoo asked for on this connection
        self.unanswered_since: float | None = None


class LeanHandler(SequentialThreadingHandler):  # type: ignore[misc]  # kazoo is untyped
    """kazoo's ``SequentialThreadingHandler`` with a leaner request path (see the module).

    Cached pollers, buffered connection sockets, an eventfd doorbell, and inline callbacks for
    kazoo's own completions and those marked :func:`runs_inline`.  Pass one instance to each
    ``KazooClient``: ``KazooClient(hosts, handler=LeanHandler())`` (clients sharing one work,
    each connection with its own silence watch, but kazoo stops the handler, and with it
    the others' callbacks, when any one of them stops).
    """

    name = "zklock_lean_handler"

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()
        # The read end of each client's wake-up pair (what its connection loop waits on) and
        # that connection's silence watch, by id(read end); one per client using this handler.
        self._silences: dict[int, tuple[Any, _SilenceWatch]] = {}
        self._silences_changing = threading.Lock()  # two clients starting at once

    # ------------------------------------------------------------------ sockets
    def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        """Kazoo's ``create_connection``; a plain TCP socket comes back as a :class:`BufferedSocket`."""
        sock = super().create_connection(*args, **kwargs)
        if type(sock) is not socket.socket:  # TLS: its own buffering; select knows it
            return sock
        return BufferedSocket(sock, sock.gettimeout())

    def select(
        self, rlist: list[Any], wlist: list[Any], xlist: list[Any], timeout: float | None = None
    ) -> tuple[list[Any], list[Any], list[Any]]:
        """Wait until a socket of ``rlist`` is readable or one of ``wlist`` writable.

        Same contract as kazoo's ``selector_select``: ``timeout`` in seconds (``None``
        blocks), ``xlist`` is accepted and never reported, a closed socket raises.  A
        :class:`BufferedSocket` with buffered bytes, or an ``ssl.SSLSocket`` with decrypted
        bytes pending, is readable at once; a :class:`BufferedSocket` is always writable (its
        ``send`` waits for room, for at most this ``timeout``: kazoo's bound on the write).
        """
        if timeout is not None and (type(timeout) is not float or timeout < 0):
            _check_timeout(timeout)  # kazoo passes a float: anything else is checked here
        if wlist:
            if not rlist and all(type(obj) is BufferedSocket for obj in wlist):
                for obj in wlist:  # kazoo about to send: a BufferedSocket waits for room itself
                    _fileno(obj)  # a closed socket raises, as it would in a real select
                    obj.send_timeout = timeout  # within the bound kazoo set for this write
                return [], list(wlist), []
        else:
            if len(rlist) == 1 and type(rlist[0]) is BufferedSocket:
                # kazoo reading a reply it was told is there: one recv instead of a poll first.
                connection = rlist[0]
                _fileno(connection)  # a closed socket raises, as it would in a real select
                if connection.fill():
                    return [connection], [], []
                readable, _writable = self._poll(rlist, wlist, timeout)
                return readable, [], []
            if timeout is not None and len(rlist) == 2:
                watched = self._silences.get(id(rlist[1]))
                if watched is not None and watched[0] is rlist[1]:
                    return self._connection_loop_wait(rlist, timeout, watched[1])
        return self._select(rlist, wlist, xlist, timeout)

    def _connection_loop_wait(
        self, rlist: list[Any], timeout: float, silence: _SilenceWatch
    ) -> tuple[list[Any], list[Any], list[Any]]:
        """One wait of kazoo's connection loop, for a reply or a request to send (see the module)."""
        connection, doorbell = rlist
        if connection is not silence.connection:  # a new connection starts afresh
            silence.connection, silence.heartbeat, silence.unanswered_since = connection, 0.0, None
        if timeout > silence.heartbeat:
            silence.heartbeat = timeout
        since = silence.unanswered_since
        if since is not None and time.monotonic() - since > silence.heartbeat:
            # Requests unanswered for a heartbeat interval: hold them back, so that kazoo's
            # heartbeat deadline passes, it sends a ping, and a ping left unanswered for one
            # more wait makes it drop the connection.
            readable = self._select([connection], [], [], timeout)[0]
        elif type(connection) is BufferedSocket:
            # The wait of nearly every request, without _select's general checks: only the
            # connection can hold buffered bytes.  With some buffered, the doorbell is still
            # polled (without waiting): kazoo sends what is queued before reading on.
            buffered = connection.ready()
            poller = None if silence.poller is None else silence.poller()
            if poller is None or poller.fileobjs != (connection, doorbell) or not poller.current():
                poller = self._poller(rlist, [])
                silence.poller = weakref.ref(poller)
            readable = [connection] if buffered else []
            for fd, _mask in poller.poll(0.0 if buffered else timeout):
                # Any event counts as readable (an error or hang-up too, as selectors says).
                if fd == poller.fds[1]:
                    readable.append(doorbell)
                elif not buffered:
                    readable.insert(0, connection)
        else:
            readable = self._select(rlist, [], [], timeout)[0]
        if readable:
            if connection in readable:  # the server spoke
                silence.unanswered_since = None
            if silence.unanswered_since is None and doorbell in readable:  # a request goes out
                silence.unanswered_since = time.monotonic()
        return readable, [], []

    def _select(
        self, rlist: list[Any], wlist: list[Any], xlist: list[Any], timeout: float | None
    ) -> tuple[list[Any], list[Any], list[Any]]:
        buffered = [obj for obj in rlist if _has_buffered(obj)]
        if buffered:
            timeout = 0.0  # report the buffered ones now, and whatever else is ready
        if any(type(obj) is int for obj in (*rlist, *wlist)):
            # A bare descriptor may be closed and reused unnoticed: no caching for those.
            readable, writable, _x = kazoo_utils.selector_select(rlist, wlist, xlist, timeout)
        else:
            readable, writable = self._poll(rlist, wlist, timeout)
        if buffered:
            readable = buffered + [obj for obj in readable if obj not in buffered]
        return readable, writable, []

    def _poll(
        self, rlist: list[Any], wlist: list[Any], timeout: float | None
    ) -> tuple[list[Any], list[Any]]:
        poller = self._poller(rlist, wlist)
        ready = poller.poll(-1 if timeout is None else timeout)
        readable: list[Any] = []
        writable: list[Any] = []
        for fd, mask in ready:
            # As selectors does: an error or hang-up counts as both readable and writable.
            if mask & ~_OUT and fd in poller.readers:
                readable.extend(poller.readers[fd])
            if mask & ~_IN and fd in poller.writers:
                writable.extend(poller.writers[fd])
        return readable, writable

    def _poller(self, rlist: list[Any], wlist: list[Any]) -> _Poller:
        """The cached poller of this socket set (on this thread), made if there is none."""
        key = (tuple(rlist), tuple(wlist))
        pollers = self._pollers()
        poller = pollers.get(key)
        if poller is None or not poller.current():
            poller = self._add_poller(pollers, key, rlist, wlist)
        return poller

    def _pollers(self) -> OrderedDict[tuple[tuple[Any, ...], tuple[Any, ...]], _Poller]:
        try:
            pollers: OrderedDict[tuple[tuple[Any, ...], tuple[Any, ...]], _Poller]
            pollers = self._local.pollers
        except AttributeError:
            pollers = self._local.pollers = OrderedDict()
        return pollers

    @staticmethod
    def _add_poller(
        pollers: OrderedDict[tuple[tuple[Any, ...], tuple[Any, ...]], _Poller],
        key: tuple[tuple[Any, ...], tuple[Any, ...]],
        rlist: list[Any],
        wlist: list[Any],
    ) -> _Poller:
        for old_key, old in list(pollers.items()):  # forget sets with a closed socket
            if old_key == key or not old.current():
                del pollers[old_key]
                old.close()
        while len(pollers) >= _CACHED_SETS:
            _key, oldest = pollers.popitem(last=False)
            oldest.close()
        poller = _Poller(rlist, wlist)
        pollers[key] = poller
        return poller

    def create_socket_pair(self) -> tuple[Any, Any]:
        """The wake-up pair: a :class:`Doorbell` (both ends) where eventfd exists."""
        if not _HAS_EVENTFD:
            # No silence watch either: it would leave kazoo's socket pair unread for a while,
            # and a few hundred wake-ups fill it, blocking the next request's caller.
            pair: tuple[Any, Any] = super().create_socket_pair()
            return pair
        doorbell = Doorbell()
        pair = (doorbell, doorbell)
        # kazoo makes one pair per client start after a close(); forget the closed ones.
        with self._silences_changing:
            silences = {key: entry for key, entry in self._silences.items() if entry[0].fileno() >= 0}
            silences[id(pair[0])] = (pair[0], _SilenceWatch())
            self._silences = silences  # replaced, not changed: other clients' loops read it
        return pair

    # ------------------------------------------------------------------ callbacks
    def async_result(self) -> LeanAsyncResult:
        """A result whose :func:`runs_inline` callbacks run when it is set."""
        return LeanAsyncResult(self)

    def dispatch_callback(self, callback: Any) -> None:
        """Run a :func:`runs_inline` watch callback now; queue any other one (as kazoo does)."""
        if _inline(callback.func):
            try:
                callback.func(*callback.args)
            except Exception:
                log.exception("watch callback %r failed", callback.func)
            return
        super().dispatch_callback(callback)
