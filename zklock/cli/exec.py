"""``zklock exec``: run a command while holding a lock, as ``flock(1)`` does with a file.

The main thread connects, acquires (one blocking ``Lock.acquire``, so the node keeps its place
in the queue), runs the command as a child, waits for it, releases and exits with the child's
status.  Two helper threads, each alive for one phase only:

* while waiting, :class:`_Waiting` shows who holds the lock (polling ``Lock.contenders`` twice a
  second) and turns a SIGINT/SIGTERM/SIGHUP into ``Lock.cancel()``;
* while the command runs, :class:`_LeaseMonitor` watches the lease and, once it is LOST, stops
  the command: SIGTERM, then SIGKILL after ``--grace`` seconds.

Signal handlers only record, write one byte to a pipe, or forward the signal to the child:
nothing in them takes a lock.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from ._common import (
    add_connection_options,
    add_verbosity_options,
    connect,
    non_negative_seconds,
    say,
)
from ._errors import (
    CannotExecute,
    CommandLineError,
    CommandNotFound,
    Conflict,
    Interrupted,
    LockLostWhileRunning,
)
from ._exit import EXIT_STATUS_HELP, signal_status

if TYPE_CHECKING:
    from kazoo.client import KazooClient

    from ..lease import Lease, LeaseState
    from ..lock import Lock

__all__ = ["configure", "run"]

DEFAULT_GRACE = 5.0
POLL_INTERVAL = 0.5
"""Seconds between two looks at the queue while waiting (at most ~2 requests a second)."""
FIRST_POLL = 0.2
"""Nothing is shown if the lock comes within this time."""
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_ENVIRONMENT_HELP = """\
environment of COMMAND:
  ZKLOCK_TOKEN   the fencing token (the lock node's czxid, a decimal integer);
                 strictly increasing across holders: let resources refuse lower ones
  ZKLOCK_PATH    the lock's path
  ZKLOCK_NODE    the full path of the lock node held for the command

signals: SIGINT, SIGTERM and SIGHUP sent to zklock are passed to COMMAND (a SIGINT or
SIGHUP from zklock's own terminal already reached it and is not sent twice); the lock
is released once COMMAND exits.  Before COMMAND starts they stop the wait: 128+N.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``zklock exec``."""
    parser.usage = "zklock exec [OPTIONS] PATH [--] COMMAND [ARGS...]"
    parser.description = (
        "Acquire the lock PATH, run COMMAND while holding it, release it when COMMAND "
        "exits, and exit with COMMAND's status.  Options go before PATH; everything "
        "after PATH is the command."
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = f"{_ENVIRONMENT_HELP}\n{EXIT_STATUS_HELP}"
    parser.add_argument("path", metavar="PATH", help="the lock, a ZooKeeper path such as /locks/backup")
    parser.add_argument(
        "command", metavar="COMMAND", nargs=argparse.REMAINDER, help="the command and its arguments"
    )
    waiting = parser.add_mutually_exclusive_group()
    waiting.add_argument(
        "-w",
        "--timeout",
        metavar="SECONDS",
        type=non_negative_seconds,
        default=None,
        help="give up when the lock is not had within SECONDS (0: as --no-wait)",
    )
    waiting.add_argument(
        "-n", "--no-wait", action="store_true", help="give up at once if the lock is held"
    )
    parser.add_argument(
        "-E",
        "--conflict-exit-code",
        metavar="CODE",
        type=_exit_code,
        default=1,
        help="exit status when the lock is not had (default: 1)",
    )
    parser.add_argument(
        "--identifier",
        metavar="TEXT",
        default=None,
        help="who is holding, as others see it (default: HOSTNAME:PID)",
    )
    parser.add_argument(
        "--grace",
        metavar="SECONDS",
        type=non_negative_seconds,
        default=DEFAULT_GRACE,
        help="if the lock is lost, seconds between SIGTERM and SIGKILL to COMMAND "
        f"(default: {DEFAULT_GRACE:g})",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="show nothing while waiting, nor on conflict"
    )
    add_connection_options(parser)
    add_verbosity_options(parser)


def _exit_code(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"must be 0-255: {text!r}")
    return value


# ---------------------------------------------------------------------- entry point
def run(args: argparse.Namespace) -> int:
    """Run ``zklock exec``; return the command's status (errors are raised, see ``main``)."""
    from .._validate import check_identifier, check_lock_path

    command = _command(args.command)
    path = check_lock_path(args.path)
    if args.identifier is not None:
        check_identifier(args.identifier)
    _check_executable(command[0])
    with _SignalRouter() as router, connect(args) as client:
        lock = _make_lock(client, path, args)
        if not _acquire(lock, client, args, router):
            raise Conflict(_conflict_message(lock, args))
        return _hold_and_run(lock, command, args, router)


def _command(command: list[str]) -> list[str]:
    if command and command[0] == "--":  # argparse keeps a '--' that follows a REMAINDER start
        command = command[1:]
    if not command:
        raise CommandLineError("no COMMAND given", "zklock exec")
    if command[0].startswith("-"):
        raise CommandLineError(
            f"options go before PATH: {command[0]!r} came after it "
            "(write 'zklock exec [OPTIONS] PATH -- COMMAND')",
            "zklock exec",
        )
    return command


def _check_executable(name: str) -> None:
    """Fail before connecting when the command cannot run (statuses 127 / 126)."""
    if "/" in name:
        if not os.path.exists(name):
            raise CommandNotFound(f"{name}: no such file")
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            raise CannotExecute(f"{name}: not an executable file")
    elif shutil.which(name) is None:
        raise CommandNotFound(f"{name}: command not found")


def _make_lock(client: KazooClient, path: str, args: argparse.Namespace) -> Lock:
    from ..lease import LeaseState
    from ..lock import Lock

    def on_state(lease: Lease, state: LeaseState) -> None:
        if args.quiet:
            return
        if state is LeaseState.SUSPENDED:
            say(
                f"connection to ZooKeeper lost; the lock {lease.path} is in doubt "
                f"(it is lost within {args.session_timeout:g} s without ZooKeeper)"
            )
        elif state is LeaseState.HELD:
            say(f"connection to ZooKeeper back; the lock {lease.path} is still held")

    return Lock(client, path, args.identifier, listener=on_state)


# ---------------------------------------------------------------------- waiting
def _acquire(
    lock: Lock, client: KazooClient, args: argparse.Namespace, router: _SignalRouter
) -> bool:
    """Acquire as the options say; True once held.  A signal while waiting raises Interrupted."""
    from ..errors import AcquireCancelled

    if args.no_wait or args.timeout == 0:
        try:
            return lock.acquire(blocking=False)  # one round trip; a signal raises Interrupted
        finally:
            router.mode = _Mode.RECORD
    display = _Display.for_stream(sys.stderr, quiet=args.quiet)
    waiting = _Waiting(lock, client, router, display)
    router.mode = _Mode.WAIT
    router.check()
    waiting.start()
    started = time.monotonic()
    try:
        acquired = lock.acquire(timeout=args.timeout)
    except AcquireCancelled:
        if router.received:
            raise Interrupted(router.received[0]) from None
        raise
    finally:
        waiting.stop()
        router.mode = _Mode.RECORD  # held now: a signal is dealt with by _hold_and_run
    if acquired and display.shown:
        lease = lock.lease
        token = f" (token {lease.token})" if lease else ""
        display.line(f"acquired {lock.path}{token} after {time.monotonic() - started:.1f} s")
    return acquired  # a signal that came meanwhile is seen by _hold_and_run, which releases


def _conflict_message(lock: Lock, args: argparse.Namespace) -> str:
    holder = ""
    if not args.quiet:
        with contextlib.suppress(Exception):
            contenders = lock.contenders(timeout=1.0)
            if contenders:
                holder = f"; held by {contenders[0].identifier!r} (token {contenders[0].token})"
    if args.no_wait or args.timeout == 0:
        return f"{lock.path} is locked{holder}; not waiting (--no-wait)"
    return f"gave up waiting for {lock.path} after {args.timeout:g} s{holder}"


class _Display:
    """The wait shown on stderr: one line updated in place on a terminal, else log lines."""

    def __init__(self, stream: TextIO | None, in_place: bool) -> None:
        self._stream = stream
        self._in_place = in_place
        self._last_key: object = None
        self._on_screen = False
        self.shown = False

    @classmethod
    def for_stream(cls, stream: TextIO, quiet: bool) -> _Display:
        """A display on ``stream`` (nothing at all when ``quiet``)."""
        if quiet:
            return cls(None, False)
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        return cls(stream, tty)

    def columns(self) -> int | None:
        """The terminal's width for an in-place line, or None when lines may be any length."""
        if not self._in_place or self._stream is None:
            return None
        try:
            columns = os.get_terminal_size(self._stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
        return columns or 80

    def update(self, text: str, key: object) -> None:
        """Show ``text``; as a log line only when ``key`` changed since the last one."""
        if self._stream is None:
            return
        if self._in_place:
            width = self.columns() or 80
            self._write("\r\x1b[2K" + f"zklock: {text}"[: max(10, width - 1)])
            self._on_screen = True
        elif key != self._last_key:
            self._write(f"zklock: {text}\n")
        self._last_key = key
        self.shown = True

    def clear(self) -> None:
        """Remove the in-place line, if any."""
        if self._on_screen:
            self._write("\r\x1b[2K")
            self._on_screen = False

    def line(self, text: str) -> None:
        """Print one log line (not on a terminal, where the cleared status line says enough)."""
        if self._stream is not None and not self._in_place:
            self._write(f"zklock: {text}\n")

    def _write(self, text: str) -> None:
        assert self._stream is not None
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(text)
            self._stream.flush()


class _Waiting(threading.Thread):
    """While the main thread acquires: show the queue, and cancel the acquire on a signal."""

    def __init__(
        self, lock: Lock, client: KazooClient, router: _SignalRouter, display: _Display
    ) -> None:
        super().__init__(name="zklock-exec-waiting", daemon=True)
        self._lock = lock
        self._client = client
        self._router = router
        self._display = display
        self._since = time.monotonic()

    def stop(self) -> None:
        """Ask the thread to end, and wait for it (it ends within one request timeout)."""
        if self.is_alive():
            self._router.poke(_STOP)
            self.join()

    def run(self) -> None:
        """Poll the queue every POLL_INTERVAL until stopped; on a signal, cancel the acquire."""
        next_poll = self._since + FIRST_POLL
        cancelling = False
        try:
            while True:
                now = time.monotonic()
                timeout = 0.1 if cancelling else max(0.0, next_poll - now)
                data = self._router.read(timeout)
                if _STOP in data:
                    return
                if data:  # a signal number: stop waiting
                    cancelling = True
                    self._display.clear()
                if cancelling:
                    # Again and again: an acquire that had not yet started is cancelled too.
                    self._lock.cancel()
                    continue
                if time.monotonic() >= next_poll:
                    self._show()
                    next_poll = time.monotonic() + POLL_INTERVAL
        finally:
            self._display.clear()

    def _show(self) -> None:
        from ..errors import ZkLockError

        waited = f"waited {time.monotonic() - self._since:.0f} s"
        try:
            contenders = self._lock.contenders(timeout=POLL_INTERVAL)
        except ZkLockError as error:
            text = f"waiting for {self._lock.path}: no answer from ZooKeeper ({error}); {waited}"
            self._display.update(text, ("error", type(error)))
            return
        client_id = self._client.client_id
        own_session = client_id[0] if client_id else None
        place = next(
            (i for i, c in enumerate(contenders) if c.session_id == own_session), None
        )
        if not contenders or place == 0:
            self._display.update(f"waiting for {self._lock.path}; {waited}", ("free",))
            return
        holder = contenders[0]
        queue = "" if place is None else f"; we are #{place + 1} in the queue ({place} ahead)"
        rest = f": held by {holder.identifier!r} (token {holder.token}){queue}; {waited}"
        path = self._lock.path
        columns = self._display.columns()
        if columns is not None:  # on a terminal: shorten the path, not the news
            path = _elide(path, columns - 1 - len(f"zklock: waiting for {rest}"))
        self._display.update(f"waiting for {path}{rest}", (holder.node, place))


def _elide(text: str, room: int) -> str:
    """``text`` shortened to ``room`` characters (at least 12) by dropping its middle."""
    room = max(12, room)
    if len(text) <= room:
        return text
    head = (room - 3) // 2
    return text[:head] + "..." + text[len(text) - (room - 3 - head) :]


# ---------------------------------------------------------------------- running the command
def _hold_and_run(
    lock: Lock, command: list[str], args: argparse.Namespace, router: _SignalRouter
) -> int:
    from ..lease import LeaseState

    lease = lock.lease
    assert lease is not None
    proc: subprocess.Popen[bytes] | None = None
    try:
        router.mode = _Mode.FORWARD  # from here a signal is kept for the child, or passed on
        router.check()
        env = dict(
            os.environ,
            ZKLOCK_TOKEN=str(lease.token),
            ZKLOCK_PATH=lease.path,
            ZKLOCK_NODE=lease.node,
        )
        try:
            proc = subprocess.Popen(command, env=env)
        except FileNotFoundError as error:
            raise CommandNotFound(f"{command[0]}: {error.strerror}") from None
        except OSError as error:
            raise CannotExecute(f"{command[0]}: {error.strerror or error}") from None
        router.attach(proc)
        monitor = _LeaseMonitor(lease, proc, args.grace)
        monitor.start()
        try:
            returncode = proc.wait()
        finally:
            monitor.finish()
        status = signal_status(-returncode) if returncode < 0 else returncode
        if monitor.stopped_with:
            raise LockLostWhileRunning(
                f"the lock {lease.path} was lost while the command ran ({monitor.reason}); "
                f"the command was stopped with {monitor.stopped_with}"
            )
        if lease.state is LeaseState.LOST:
            raise LockLostWhileRunning(
                f"the lock {lease.path} was lost before the command finished ({lease.reason}); "
                f"its exit status {status} is not passed on"
            )
        return status
    finally:
        router.mode = _Mode.RECORD
        if proc is not None and proc.poll() is None:  # only if something above went wrong
            proc.kill()
            proc.wait()
        _release(lock)


def _release(lock: Lock) -> None:
    """Release, never raising: a failure is reported; the node goes with the session anyway."""
    from ..errors import LockLost, ZkLockError

    lease = lock.lease
    try:
        lock.release()
    except LockLost:
        if lease is not None and not lease.lost.is_set():
            say(f"warning: the lock {lock.path} was lost after the command finished")
    except ZkLockError as error:
        say(f"warning: could not release {lock.path} ({error}); it goes when the session closes")


class _LeaseMonitor(threading.Thread):
    """While the command runs: once the lease is LOST, SIGTERM it, then SIGKILL after ``grace``."""

    def __init__(self, lease: Lease, proc: subprocess.Popen[bytes], grace: float) -> None:
        super().__init__(name="zklock-exec-lease", daemon=True)
        self._lease = lease
        self._proc = proc
        self._grace = grace
        self._done = threading.Event()
        self.reason: str | None = None
        self.stopped_with: str | None = None

    def finish(self) -> None:
        """The command has exited: end the thread."""
        self._done.set()
        self.join()

    def run(self) -> None:
        """Watch the lease until the command exits; stop the command if the lease is lost."""
        from ..lease import LeaseState

        while not self._done.is_set():
            # ``state`` also applies the lease's own clock (no reply within the session timeout).
            if self._lease.lost.wait(0.1) or self._lease.state is LeaseState.LOST:
                break
        else:
            return
        if self._done.is_set():
            return
        self.reason = self._lease.reason or "lost"
        pid = self._proc.pid
        say(f"the lock {self._lease.path} was lost ({self.reason}); sending SIGTERM to pid {pid}")
        self._send(signal.SIGTERM)
        self.stopped_with = "SIGTERM"
        if self._done.wait(self._grace):
            return
        say(f"pid {pid} still running {self._grace:g} s after SIGTERM; sending SIGKILL")
        self._send(signal.SIGKILL)
        self.stopped_with = f"SIGKILL after {self._grace:g} s"

    def _send(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signum)


# ---------------------------------------------------------------------- signals
class _Mode:
    RAISE = "raise"  # nothing to clean up in the main thread's way: raise Interrupted
    WAIT = "wait"  # the waiting thread cancels the acquire
    FORWARD = "forward"  # pass the signal to the child
    RECORD = "record"  # only note it (lock held, child not started yet or already done)


_STOP = 0  # the byte that stops the waiting thread; signal numbers are never 0


class _SignalRouter:
    """Handlers for SIGINT/SIGTERM/SIGHUP whose effect depends on the phase (``mode``).

    Handlers run in the main thread between two bytecodes, so they take no lock: they append to
    a list, write to a non-blocking pipe, or send a signal.  A signal that the shell set to be
    ignored (as for ``zklock ... &``) stays ignored.
    """

    def __init__(self) -> None:
        self.mode = _Mode.RAISE
        self.received: list[int] = []
        self._pending: list[int] = []
        self._child: subprocess.Popen[bytes] | None = None
        self._old: dict[int, Any] = {}
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)

    def __enter__(self) -> _SignalRouter:
        for signum in FORWARDED_SIGNALS:
            old = signal.getsignal(signum)
            if old == signal.SIG_IGN:
                continue
            self._old[signum] = old
            signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, old in self._old.items():
            signal.signal(signum, signal.SIG_DFL if old is None else old)
        os.close(self._read_fd)
        os.close(self._write_fd)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if self.mode == _Mode.RAISE:
            self.mode = _Mode.RECORD
            raise Interrupted(signum)
        if self.mode == _Mode.WAIT:
            self.poke(signum)
        elif self.mode == _Mode.FORWARD:
            if self._child is None:
                self._pending.append(signum)
            else:
                self._forward(signum)

    def check(self) -> None:
        """Raise :class:`Interrupted` if a signal has arrived (before the child started)."""
        if self.received:
            raise Interrupted(self.received[0])

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        """From now on pass signals to ``child``; pass those that came while it started."""
        self._child = child
        while self._pending:
            self._forward(self._pending.pop(0))

    def _forward(self, signum: int) -> None:
        child = self._child
        if child is None or child.returncode is not None:
            return
        if signum in (signal.SIGINT, signal.SIGHUP) and _in_terminal_foreground():
            return  # the terminal sent it to the whole foreground group, the child included
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    def poke(self, byte: int) -> None:
        """Wake the waiting thread with one byte (a signal number, or ``_STOP``)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write_fd, bytes([byte]))

    def read(self, timeout: float) -> bytes:
        """Bytes poked so far, waiting up to ``timeout`` seconds for the first."""
        ready, _, _ = select.select([self._read_fd], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self._read_fd, 256)
        except BlockingIOError:
            return b""


def _in_terminal_foreground() -> bool:
    """True when zklock runs in the foreground process group of its terminal."""
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                return True
        except OSError:
            continue
    return False
