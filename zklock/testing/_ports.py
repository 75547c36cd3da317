"""Client ports on 127.0.0.1 for the servers the harness starts: free ones, or fixed ones checked."""

from __future__ import annotations

import random
import socket
from typing import Optional

from ._errors import PortInUseError
from ._settings import LOOPBACK

__all__ = ["free_loopback_ports", "loopback_ports"]


#: Where Linux says which ports it gives to outgoing connections (and to ``bind`` on port 0).
EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
#: Ports below this are left alone: many services listen on them by custom.
LOWEST_CHOSEN_PORT = 10000


def free_loopback_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago.

    Where the kernel tells its range of ephemeral ports, the ports are chosen outside it.
    A port is published only some seconds after it is chosen (a container starts), and
    every client connection made meanwhile (to the session's server, by another test)
    takes an ephemeral port: one chosen inside that range could be taken in between.
    """
    outside = _outside_ephemeral_range()
    if outside is None or len(outside) < 4 * count:
        return _kernel_chosen_ports(count)
    chosen: list[int] = []
    for port in random.sample(outside, min(len(outside), 50 * count)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:  # in use, or in TIME_WAIT
                continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    return _kernel_chosen_ports(count)


def _outside_ephemeral_range(path: str = EPHEMERAL_RANGE_FILE) -> Optional[list[int]]:
    """Ports from :data:`LOWEST_CHOSEN_PORT` up that the kernel never hands out by itself.

    None where the range cannot be read (no ``/proc``: macOS, a sandbox).
    """
    try:
        with open(path, encoding="ascii") as file:
            low, high = (int(field) for field in file.read().split())
    except (OSError, ValueError):
        return None
    return [port for port in range(LOWEST_CHOSEN_PORT, 65536) if not low <= port <= high]


def _kernel_chosen_ports(count: int) -> list[int]:
    """``count`` distinct ports the kernel picks (from its ephemeral range)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((LOOPBACK, 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def loopback_ports(count: int, first: Optional[int] = None) -> list[int]:
    """Return ``count`` TCP ports on 127.0.0.1: ``first`` and the ports after it, or free ones.

    With ``first`` None or 0 this is :func:`free_loopback_ports`. Otherwise each port is checked
    to be free now; :class:`PortInUseError` names the first one that is not.
    """
    if not first:
        return free_loopback_ports(count)
    ports = list(range(first, first + count))
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOOPBACK, port))
            except OSError as error:
                raise PortInUseError(LOOPBACK, port, str(error.strerror)) from None
    return ports
