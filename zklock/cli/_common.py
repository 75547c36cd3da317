"""What the subcommands share: connection options, the connection itself, logging, stderr.

Only the subcommands that talk to ZooKeeper (``exec``, ``status``) import kazoo, and only when
they run, so ``zklock --help`` and ``zklock server`` stay light.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ._errors import CommandLineError, Unreachable
from ._tls import add_tls_options, tls_options

if TYPE_CHECKING:
    from kazoo.client import KazooClient

__all__ = [
    "DEFAULT_HOSTS",
    "ENV_AUTH",
    "ENV_HOSTS",
    "add_connection_options",
    "add_verbosity_options",
    "auth_pair",
    "configure_logging",
    "connect",
    "non_negative_seconds",
    "positive_seconds",
    "say",
    "session_seconds",
]

ENV_HOSTS = "ZKLOCK_HOSTS"
ENV_AUTH = "ZKLOCK_AUTH"
DEFAULT_HOSTS = "127.0.0.1:2181"
DEFAULT_SESSION_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 10.0

log = logging.getLogger("zklock.cli")


def say(message: str) -> None:
    """Write one ``zklock: message`` line to stderr (never raises on a closed stderr)."""
    # AttributeError: started with stderr closed (2>&-), Python sets sys.stderr to None.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.write(f"zklock: {message}\n")
        sys.stderr.flush()


# ---------------------------------------------------------------------- argument types
def positive_seconds(text: str) -> float:
    """Argparse type: a finite number of seconds > 0."""
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def session_seconds(text: str) -> float:
    """Argparse type: a session timeout ZooKeeper's handshake can carry (whole ms, 32 bits)."""
    value = _seconds(text)
    if not 0.001 <= value <= _LONGEST_SESSION:
        raise argparse.ArgumentTypeError(
            f"must be from 0.001 to {_LONGEST_SESSION} seconds: {text!r}"
        )
    return value


# The handshake sends the session timeout in milliseconds as a signed 32-bit number.
_LONGEST_SESSION = (2**31 - 1) / 1000


def non_negative_seconds(text: str) -> float:
    """Argparse type: a finite number of seconds >= 0."""
    value = _seconds(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"not a finite number of seconds: {text!r}")
    if value > threading.TIMEOUT_MAX:  # Python's waits refuse these (OverflowError)
        raise argparse.ArgumentTypeError(
            f"more seconds than a wait can take ({threading.TIMEOUT_MAX:.0f}): {text!r}"
        )
    return value


def auth_pair(text: str) -> tuple[str, str]:
    """Argparse type: ``scheme:credential`` (as kazoo's ``auth_data``), e.g. ``digest:user:pw``."""
    scheme, colon, credential = text.partition(":")
    if not colon or not scheme:
        raise argparse.ArgumentTypeError(
            "expected SCHEME:CREDENTIAL, e.g. digest:user:password"
        )
    return scheme, credential


# ---------------------------------------------------------------------- options
def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--hosts``, ``--session-timeout``, ``--connect-timeout``, ``--auth`` and the TLS options."""
    group = parser.add_argument_group("ZooKeeper connection")
    group.add_argument(
        "--hosts",
        metavar="HOST:PORT[,...][/CHROOT]",
        default=None,
        help=f"ZooKeeper connect string (default: ${ENV_HOSTS}, else {DEFAULT_HOSTS})",
    )
    group.add_argument(
        "--session-timeout",
        metavar="SECONDS",
        type=session_seconds,
        default=DEFAULT_SESSION_TIMEOUT,
        help="ZooKeeper session timeout: how long a silent client keeps its locks "
        f"(default: {DEFAULT_SESSION_TIMEOUT:g}; the server may clamp it)",
    )
    group.add_argument(
        "--connect-timeout",
        metavar="SECONDS",
        type=positive_seconds,
        default=DEFAULT_CONNECT_TIMEOUT,
        help="give up if no connection is made within this time "
        f"(default: {DEFAULT_CONNECT_TIMEOUT:g})",
    )
    group.add_argument(
        "--auth",
        metavar="SCHEME:CREDENTIAL",
        type=auth_pair,
        action="append",
        default=None,
        help="authenticate, e.g. digest:user:password (repeatable; default: "
        f"${ENV_AUTH}, comma-separated, which keeps secrets out of the process list)",
    )
    add_tls_options(group)


def add_verbosity_options(parser: argparse.ArgumentParser) -> None:
    """Add ``-v``/``--verbose`` (repeatable)."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log what zklock does on stderr (-vv: also kazoo's debug log)",
    )


def configure_logging(verbosity: int) -> None:
    """Send log records to stderr: warnings by default, more with ``-v``/``-vv``."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_zklock_cli", False)]:
        root.removeHandler(old)  # main() may run more than once in a process
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("zklock: %(name)s: %(message)s"))
    handler._zklock_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO if verbosity else logging.WARNING)
    # kazoo warns on every failed connection attempt; zklock reports the outcome itself.
    kazoo = logging.getLogger("kazoo")
    kazoo.setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)
    kazoo.propagate = verbosity >= 1
    if not kazoo.handlers:
        kazoo.addHandler(logging.NullHandler())  # else logging's last resort prints them


def _hosts(args: argparse.Namespace, prog: str) -> str:
    if args.hosts is not None and not args.hosts.strip():  # an unset shell variable, say
        raise CommandLineError("--hosts is empty", prog)
    hosts = str(args.hosts or os.environ.get(ENV_HOSTS, "").strip() or DEFAULT_HOSTS)
    _check_chroot(hosts, prog)
    return hosts


def _check_chroot(hosts: str, prog: str) -> None:
    """Refuse a chroot (``HOST:PORT/CHROOT``) that PATH itself could not be.

    Every lock path is under the chroot: ``H/zookeeper`` would put them under ZooKeeper's own
    tree, and ``H/a//b`` fails only later, inside kazoo.  A bare trailing ``/`` means no chroot,
    as for kazoo and ZooKeeper's own clients.
    """
    from .._validate import check_lock_path
    from ..errors import InvalidPath

    _, slash, rest = hosts.partition("/")
    if not slash or not rest:
        return
    try:
        check_lock_path("/" + rest)
    except InvalidPath as error:
        reason = str(error).replace("lock path ", "a chroot ", 1)
        raise CommandLineError(f"--hosts {hosts!r}: bad chroot ({reason})", prog) from None


def _auth(args: argparse.Namespace) -> list[tuple[str, str]]:
    if args.auth:
        return list(args.auth)
    text = os.environ.get(ENV_AUTH, "").strip()
    if not text:
        return []
    pairs = []
    for item in text.split(","):
        try:
            pairs.append(auth_pair(item.strip()))
        except argparse.ArgumentTypeError as error:
            raise CommandLineError(f"${ENV_AUTH}: {error}") from None
    return pairs


class _LastWarning(logging.Handler):
    """Keeps kazoo's last warning, to say *why* a connection could not be made."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith("Failed connecting"):  # says no more than our own message
            self.message = message


@contextlib.contextmanager
def connect(args: argparse.Namespace) -> Iterator[KazooClient]:
    """A started, authenticated ``KazooClient`` for the connection options; stopped on exit.

    Raises :class:`Unreachable` when no connection is made within ``--connect-timeout``,
    ``zklock.NoAuthorization`` when the server refuses the credentials, and
    :class:`CommandLineError` when the chroot of ``--hosts`` does not exist.  Every wait here is
    bounded, the stop on the way out included: a server that accepts the connection and never
    answers holds kazoo's connection thread for the whole session timeout, and zklock does
    not wait for it (:func:`_stop_client`).
    """
    from kazoo.client import KazooClient

    from ..errors import translate_kazoo_errors

    prog = f"zklock {getattr(args, 'subcommand', '')}".rstrip()
    hosts = _hosts(args, prog)
    tls = tls_options(args, prog)
    try:
        client = KazooClient(
            hosts=hosts, timeout=args.session_timeout, auth_data=_auth(args), **tls
        )
    except ValueError as error:
        raise CommandLineError(f"--hosts {hosts!r}: {error}", prog) from None
    answered = False  # whether the server answered the first request in time
    try:
        _start_client(client, hosts, args.connect_timeout)
        # Credentials are checked after the connect: one request shows whether they passed.
        # With a chroot, "/" is the chroot: the same request tells whether it exists.
        with translate_kazoo_errors():
            root = client.exists_async("/").get(timeout=args.connect_timeout)
        answered = True
        if client.chroot and root is None:
            # kazoo's start() only warns (a raw UserWarning); a lock would then fail to be
            # made (NoNodeError) or, one level deep, make the chroot itself: from a typo, a
            # namespace that no other client shares.
            raise CommandLineError(
                f"--hosts {hosts!r}: the chroot {client.chroot} does not exist on ZooKeeper "
                "(is it mistyped? create it first, e.g. with zkCli.sh)",
                prog,
            )
        yield client
    finally:
        # A server that took the handshake and then answered nothing in time is not waited
        # for a second time on the way out: the caller was promised about --connect-timeout.
        stop_bound = args.connect_timeout if answered and client.connected else _GIVE_UP_STOP
        _stop_client(client, stop_bound)


_GIVE_UP_STOP = 1.0
"""Seconds to wait for kazoo to stop a client that never connected (then left to exit)."""


def _start_client(client: KazooClient, hosts: str, timeout: float) -> None:
    """Connect ``client`` within ``timeout`` seconds, else raise :class:`Unreachable`.

    ``start_async`` and a bounded wait, not kazoo's ``start(timeout)``: that one stops the
    client itself on a time-out, which waits for the connection thread, stuck for the whole
    session timeout in the handshake with a server that accepts and never answers.
    """
    last = _LastWarning()
    kazoo_log = logging.getLogger("kazoo")
    kazoo_log.addHandler(last)
    try:
        client.start_async().wait(timeout)  # a signal handler may raise Interrupted in here
    finally:
        kazoo_log.removeHandler(last)
    if not client.connected:
        reason = f": {last.message}" if last.message else ""
        raise Unreachable(
            f"could not connect to ZooKeeper at {hosts} within {timeout:g} s{reason}"
        )


def _stop_client(client: KazooClient, bound: float) -> None:
    """Stop and close ``client``, waiting at most ``bound`` seconds for it.

    A daemon thread does the stopping: kazoo's ``stop`` may wait for its connection thread
    for a whole session timeout, and the process may exit before it is done (the session
    then ends on the server's clock).  Errors are kazoo's to log; a signal that comes while
    the main thread waits here is not swallowed.
    """

    def stop() -> None:
        with contextlib.suppress(Exception):
            client.stop()
        with contextlib.suppress(Exception):
            client.close()

    stopper = threading.Thread(target=stop, name="zklock-disconnect", daemon=True)
    stopper.start()
    stopper.join(bound)
    if stopper.is_alive():
        log.debug("the ZooKeeper client did not stop within %g s; not waiting for it", bound)
