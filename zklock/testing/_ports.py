"""Client ports on 127.0.0.1 for the servers the harness starts: free ones, or fixed ones checked."""

from __future__ import annotations

import socket
from typing import Optional

from ._errors import PortInUseError
from ._settings import LOOPBACK

__all__ = ["free_loopback_ports", "loopback_ports"]


def free_loopback_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago."""
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
