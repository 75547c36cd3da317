"""The ZooKeeper the benchmark runs against, and the server-side request counts.

Without ``--hosts`` the server is started through ``zklock.testing``: one standalone container,
or with ``--ensemble`` a 3-node ensemble whose clients all connect through one follower.  The
image is the harness's setting (``ZKLOCK_ZOOKEEPER_IMAGE``) unless ``--image`` names one.  The
server is set up as a deployment runs it, so that no test-rig cost common to every
implementation pulls the ratios towards 1: clients connect to the container's own address
(no ``docker-proxy``), the JVM is a deployment's (:data:`SERVER_JVMFLAGS`), and
:func:`warm_up` lets its JIT compile the request path before anything is measured.
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


def _route(
    published: tuple[str, int], network: Optional[tuple[str, int]], via_proxy: bool
) -> tuple[str, str]:
    """``(hosts, how)``: the container's own address when it answers, else the published port.

    The published loopback port goes through ``docker-proxy``, a userland copy loop that no
    deployment has; here it added 50 to 400 us to every request (most to writes), the same for
    every implementation, which pulls every ratio towards 1. On Linux the host reaches the
    container's network directly; elsewhere (Docker Desktop) it does not, and the run falls
    back to the proxy and says so.
    """
    if not via_proxy and network is not None:
        try:
            four_letter_word(network[0], network[1], "ruok", timeout=1.0)
        except OSError:
            pass
        else:
            return f"{network[0]}:{network[1]}", "direct to the container"
    return f"{published[0]}:{published[1]}", "through docker-proxy (published port)"


#: The servers' JVM: what a deployment runs (C2 compiler, G1), not the test harness's small
#: C1-only JVM, which starts fast but spends more time on every request, the same for every
#: implementation, and so pulls every ratio towards 1.
SERVER_JVMFLAGS = "-Xms256m -Xmx256m -XX:-UsePerfData"

#: Cycles of create, get_children and delete sent before anything is measured, so the server's
#: request path is compiled (C2 compiles a method after some thousands of calls).
_WARM_UP_CYCLES = 3000


def warm_up(hosts: str, cycles: int = _WARM_UP_CYCLES) -> None:
    """Run the lock's requests on the server until its JIT has compiled their path."""
    from kazoo.client import KazooClient

    client = KazooClient(hosts=hosts)
    client.start(timeout=30)
    try:
        path = client.create("/zklock-bench-warm-up", ephemeral=False, sequence=True)
        for _ in range(cycles):
            node = client.create(f"{path}/n", ephemeral=True, sequence=True)
            client.get_children(path)
            client.delete(node)
        client.delete(path)
    finally:
        client.stop()
        client.close()


@contextlib.contextmanager
def zookeeper(
    hosts: Optional[str],
    ensemble: bool,
    image: Optional[str],
    force_sync: bool = True,
    via_proxy: bool = False,
    test_jvm: bool = False,
) -> Iterator[Target]:
    """Yield the target: ``hosts`` as given, else a container (or ensemble) removed at exit.

    A started server runs :data:`SERVER_JVMFLAGS` (``test_jvm=True``: the harness's default
    JVM). ``force_sync=False`` starts the standalone server with ``forceSync=no``: writes are
    logged without waiting for the disk, which shows how much of a cycle the disk takes.
    ``via_proxy=True`` connects through the published port even where the container's own
    address is reachable (see :func:`_route`).
    """
    if hosts:
        yield Target(hosts, "external", f"--hosts {hosts}")
        return
    from zklock.testing import ZooKeeperContainer, ZooKeeperEnsemble  # only when needed

    jvm_flags = None if test_jvm else SERVER_JVMFLAGS
    jvm = "the harness's test JVM" if test_jvm else f"JVMFLAGS {SERVER_JVMFLAGS}"
    if ensemble:
        with ZooKeeperEnsemble(3, image, jvm_flags=jvm_flags) as zk:
            follower = zk.followers()[0]
            where, how = _route(zk.address(follower), zk.network_address(follower), via_proxy)
            yield Target(where, "ensemble-follower", f"3-node ensemble ({zk.image}, {jvm}), "
                         f"clients on follower zk{follower}, {how}")
        return
    # Up to 16 contenders + spare sessions, all from one address: lift the 60-per-IP limit.
    server = ZooKeeperContainer(image).with_config("maxClientCnxns", "0")
    if jvm_flags is not None:
        server.with_jvm_flags(jvm_flags)
    if not force_sync:
        server.with_config("forceSync", "no")
    sync = "" if force_sync else ", forceSync=no"
    with server as zk:
        where, how = _route(zk.address, zk.network_address, via_proxy)
        yield Target(where, "standalone", f"standalone ({zk.image}, {jvm}{sync}), {how}")


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


def _servers(hosts: str) -> list[tuple[str, int]]:
    """``(host, port)`` of every server in a ``host:port,...[/chroot]`` connect string."""
    servers = []
    for entry in hosts.split("/")[0].split(","):
        host, _, port = entry.strip().rpartition(":")
        servers.append((host, int(port)))
    return servers


def received_by_session(hosts: str) -> dict[int, int]:
    """Packets each session's connection has sent to the server, from ``cons`` on every host.

    ``recved`` counts every packet the server read on that connection: requests and pings
    (kazoo pings only after a third of the session timeout without a request).
    """
    counts: dict[int, int] = {}
    for host, port in _servers(hosts):
        try:
            reply = four_letter_word(host, port, "cons")
        except OSError:
            continue
        for match in _CONS.finditer(reply):
            counts[int(match.group(3), 16)] = int(match.group(1))
    return counts


def disk_flushes(hosts: str) -> Optional[int]:
    """Log flushes (``fdatasync``) the servers in ``hosts`` have made, from ``mntr``'s
    ``zk_cnt_fsynctime``, summed; None if no server answers with it."""
    from zklock.testing import monitor  # as above: only when needed

    total: Optional[int] = None
    for host, port in _servers(hosts):
        try:
            count = monitor(host, port, timeout=5.0).get("zk_cnt_fsynctime", "")
        except OSError:
            continue
        if count.isdigit():
            total = (total or 0) + int(count)
    return total


def watches_below(hosts: str, parent: str) -> int:
    """Watches the servers hold on znodes directly below ``parent``, from ``wchp``."""
    total = 0
    prefix = parent.rstrip("/") + "/"
    for host, port in _servers(hosts):
        try:
            reply = four_letter_word(host, port, "wchp")
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
