"""A lock over TLS: kazoo's TLS options, zklock's LeanHandler, and a client that is refused.

    python examples/tls.py [HOSTS]

``HOSTS`` (or ``$ZKLOCK_HOSTS``) is ZooKeeper's secure client port; the PEM files come from
``$ZKLOCK_TLS_CA``, ``$ZKLOCK_TLS_CERT`` and ``$ZKLOCK_TLS_KEY`` (the variables ``zklock exec``
reads too). Without a server, the example makes a CA and certificates and starts a throwaway
TLS-enabled ZooKeeper container through ``zklock.testing`` (needs Docker and
``pip install "zklock[testing]"``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any, Optional

from _common import connected, hosts_from, scratch_path
from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError

import zklock
from zklock.handler import LeanHandler


def tls_options(ca: str, cert: Optional[str], key: Optional[str]) -> dict[str, Any]:
    """What KazooClient needs for TLS: verify the server against `ca`, show our certificate."""
    options: dict[str, Any] = {"use_ssl": True, "verify_certs": True, "ca": ca}
    if cert and key:
        options.update(certfile=cert, keyfile=key)  # servers with ssl.clientAuth=need ask for it
    return options


@contextlib.contextmanager
def tls_zookeeper(argument: Optional[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The TLS hosts and kazoo options: given in the environment, or a throwaway server."""
    hosts = hosts_from(argument)
    if hosts:
        ca = os.environ.get("ZKLOCK_TLS_CA")
        if not ca:
            sys.exit("with HOSTS given, set ZKLOCK_TLS_CA (and ZKLOCK_TLS_CERT, ZKLOCK_TLS_KEY)")
        yield hosts, tls_options(ca, os.environ.get("ZKLOCK_TLS_CERT"), os.environ.get("ZKLOCK_TLS_KEY"))
        return
    try:
        from zklock.testing import TlsCertificates, ZooKeeperTlsContainer
    except ImportError as error:
        sys.exit(f"no ZooKeeper given, and a throwaway one needs zklock[testing] and Docker: {error}")
    print("(starting a throwaway TLS-enabled ZooKeeper in a container...)", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="zklock-tls-example-") as directory:
        certs = TlsCertificates.create(directory)
        with ZooKeeperTlsContainer(certs) as server:
            yield server.secure_connect_string, tls_options(certs.ca, certs.client_cert, certs.client_key)


class LastWarning(logging.Handler):
    """Keeps kazoo's last warning: the reason a connection failed is only in its log."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.message = ""

    def emit(self, record: logging.LogRecord) -> None:
        if "Connection dropped" in record.getMessage():
            self.message = record.getMessage()


def main(argument: Optional[str]) -> int:
    with tls_zookeeper(argument) as (hosts, options):
        # 1. Two TLS clients, one on kazoo's stock handler, one on zklock's LeanHandler.
        with connected(hosts, **options) as alice_client, \
                connected(hosts, handler=LeanHandler(), **options) as bob_client:
            with scratch_path(alice_client, "tls") as root:
                path = f"{root}/report"
                with zklock.Lock(alice_client, path, identifier="alice").hold(timeout=10) as lease:
                    print(f"alice holds {path} over TLS, token {lease.token}")
                    busy = zklock.Lock(bob_client, path, identifier="bob").acquire(blocking=False)
                    print(f"bob (LeanHandler, TLS) acquire(blocking=False) -> {busy}")
                with zklock.Lock(bob_client, path, identifier="bob").hold(timeout=10) as bob_lease:
                    print(f"bob holds it, token {bob_lease.token} > {lease.token}: "
                          f"{bob_lease.token > lease.token}")

        # 2. A client that does not trust the CA: TLS with certificate checks, system CAs only.
        last = LastWarning()
        logging.getLogger("kazoo.client").addHandler(last)
        logging.getLogger("kazoo.client").propagate = False  # the example prints it itself
        stranger = KazooClient(hosts=hosts, use_ssl=True, verify_certs=True)
        try:
            stranger.start(timeout=2)
            print("FAILED: a client without the CA connected")
            return 1
        except KazooTimeoutError:
            print("a client without the CA: start() raised KazooTimeoutError (no connection in 2 s)")
        finally:
            logging.getLogger("kazoo.client").removeHandler(last)
        print(f"  kazoo's log says why: {last.message}")
        try:
            zklock.Lock(stranger, "/zklock-examples/tls").acquire(timeout=2)
        except zklock.ClientNotConnected as error:
            print(f"  and a lock on it raises ClientNotConnected: {error}")
        finally:
            stranger.stop()
            stranger.close()
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
