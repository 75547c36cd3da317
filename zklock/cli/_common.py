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
        type=positive_seconds,
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
    hosts = args.hosts or os.environ.get(ENV_HOSTS, "").strip() or DEFAULT_HOSTS
    return str(hosts)


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

    Raises :class:`Unreachable` when no connection is made within ``--connect-timeout``, and
    ``zklock.NoAuthorization`` when the server refuses the credentials.
    """
    from kazoo.client import KazooClient
    from kazoo.handlers.threading import KazooTimeoutError

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
    last = _LastWarning()
    kazoo_log = logging.getLogger("kazoo")
    kazoo_log.addHandler(last)
    try:
        try:
            client.start(timeout=args.connect_timeout)
        except KazooTimeoutError:
            reason = f": {last.message}" if last.message else ""
            raise Unreachable(
                f"could not connect to ZooKeeper at {hosts} within "
                f"{args.connect_timeout:g} s{reason}"
            ) from None
        finally:
            kazoo_log.removeHandler(last)
        # Credentials are checked after the connect: one request shows whether they passed.
        with translate_kazoo_errors():
            client.exists_async("/").get(timeout=args.connect_timeout)
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.stop()
        with contextlib.suppress(Exception):
            client.close()
