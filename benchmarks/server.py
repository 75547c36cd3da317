"""The ZooKeeper the benchmark runs against, and the server-side request counts.

Without ``--hosts`` the server is started through ``zklock.testing``: one standalone container,
or with ``--ensemble`` a 3-node ensemble whose clients all connect through one follower.  The
image is the harness's setting (``ZKLOCK_ZOOKEEPER_IMAGE``) unless ``--image`` names one.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Optional


@dataclass
class Target:
    """Where the clients connect, and what that is."""

    hosts: str
    kind: str  # "standalone", "ensemble-follower" or "external"
    detail: str


@contextlib.contextmanager
def zookeeper(
    hosts: Optional[str], ensemble: bool, image: Optional[str], force_sync: bool = True
) -> Iterator[Target]:
    """Yield the target: ``hosts`` as given, else a container (or ensemble) removed at exit.

    ``force_sync=False`` starts the standalone server with ``forceSync=no``: writes are logged
    without waiting for the disk, which shows how much of a cycle the disk takes.
    """
    if hosts:
        yield Target(hosts, "external", f"--hosts {hosts}")
        return
    from zklock.testing import ZooKeeperContainer, ZooKeeperEnsemble  # only when needed

    if ensemble:
        with ZooKeeperEnsemble(3, image) as zk:
            follower = zk.followers()[0]
            host, port = zk.address(follower)
            yield Target(f"{host}:{port}", "ensemble-follower",
                         f"3-node ensemble ({zk.image}), clients on follower zk{follower}")
        return
    # Up to 16 contenders + spare sessions, all from one address: lift the 60-per-IP limit.
    server = ZooKeeperContainer(image).with_config("maxClientCnxns", "0")
    if not force_sync:
        server.with_config("forceSync", "no")
    sync = "" if force_sync else ", forceSync=no"
    with server as zk:
        yield Target(zk.get_connect_string(), "standalone", f"standalone ({zk.image}{sync})")


def four_letter_word(host: str, port: int, command: str, timeout: float = 5.0) -> str:
    """Send a four-letter word and return the whole reply."""
    chunks = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(command.encode("ascii"))
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


_CONS = re.compile(r"recved=(\d+),sent=(\d+),sid=0x([0-9a-f]+)")


def received_by_session(hosts: str) -> dict[int, int]:
    """Packets each session's connection has sent to the server, from ``cons`` on every host.

    ``recved`` counts every packet the server read on that connection: requests and pings
    (kazoo pings only after a third of the session timeout without a request).
    """
    counts: dict[int, int] = {}
    for entry in hosts.split("/")[0].split(","):
        host, _, port = entry.strip().rpartition(":")
        try:
            reply = four_letter_word(host, int(port), "cons")
        except OSError:
            continue
        for match in _CONS.finditer(reply):
            counts[int(match.group(3), 16)] = int(match.group(1))
    return counts


def watches_below(hosts: str, parent: str) -> int:
    """Watches the servers hold on znodes directly below ``parent``, from ``wchp``."""
    total = 0
    prefix = parent.rstrip("/") + "/"
    for entry in hosts.split("/")[0].split(","):
        host, _, port = entry.strip().rpartition(":")
        try:
            reply = four_letter_word(host, int(port), "wchp")
        except OSError:
            continue
        path = None
        for line in reply.splitlines():
            if line.startswith("\t"):
                if path is not None and path.startswith(prefix) and "/" not in path[len(prefix):]:
                    total += 1
            elif line:
                path = line.strip()
    return total
