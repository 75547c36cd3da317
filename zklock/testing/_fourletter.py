"""ZooKeeper's four-letter-word commands (``srvr``, ``mntr``, ``ruok`` ...) over plain TCP.

Readiness means :func:`server_mode` returns a mode: ``ruok`` answers ``imok`` before the server
serves requests, and a published container port accepts TCP connections (docker-proxy) before
ZooKeeper listens at all. A server only answers commands in its ``4lw.commands.whitelist``;
``srvr`` is allowed by default, and the harness's containers allow all of them.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterable
from typing import Optional

__all__ = ["client_sessions", "four_letter_word", "monitor", "server_mode", "wait_for_mode"]

#: Modes a serving server reports in the ``Mode:`` line of ``srvr``.
SERVING_MODES = ("standalone", "leader", "follower", "observer", "read-only")
_MAX_REPLY = 1 << 20
# In ``cons``, a connection that has a session shows it as ``sid=0x<hex>``; one still in its
# handshake shows none.
_SESSION_ID = re.compile(r"\bsid=0x([0-9a-fA-F]+)")


def four_letter_word(host: str, port: int, command: str, *, timeout: float = 2.0) -> str:
    """Send ``command`` (four lower-case letters) and return the server's whole reply.

    Raises :class:`OSError` when the server cannot be reached or closes without reading, and
    :class:`ValueError` for a malformed command.
    """
    if len(command) != 4 or not command.isascii() or not command.isalpha():
        raise ValueError(f"not a four-letter word: {command!r}")
    chunks: list[bytes] = []
    size = 0
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(command.encode("ascii"))
        while size < _MAX_REPLY:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def server_mode(host: str, port: int, *, timeout: float = 1.0) -> Optional[str]:
    """Return the ``Mode:`` that ``srvr`` reports (``standalone``, ``leader``, ``follower`` ...).

    ``None`` means the server does not serve requests now: unreachable, starting, between
    leaders, or not answering ``srvr``.
    """
    try:
        reply = four_letter_word(host, port, "srvr", timeout=timeout)
    except OSError:
        return None
    for line in reply.splitlines():
        if line.startswith("Mode:"):
            return line[len("Mode:") :].strip() or None
    return None


def monitor(host: str, port: int, *, timeout: float = 2.0) -> dict[str, str]:
    """Return the ``mntr`` statistics as a mapping (``zk_server_state``, ``zk_znode_count`` ...).

    Values are left as text. An empty mapping means the server did not answer ``mntr`` (not
    serving, or not in its whitelist).
    """
    reply = four_letter_word(host, port, "mntr", timeout=timeout)
    stats: dict[str, str] = {}
    for line in reply.splitlines():
        key, tab, value = line.partition("\t")
        if tab:
            stats[key.strip()] = value.strip()
    return stats


def client_sessions(host: str, port: int, *, timeout: float = 2.0) -> frozenset[int]:
    """Return the ids of the client sessions connected to this server now (from ``cons``).

    A session is listed by the one server its client is connected to, so asking each node of
    an ensemble tells which server a client talks to (compare with ``client.client_id[0]``).
    Connections still in their handshake have no session yet and are left out. Raises
    :class:`OSError` when the server cannot be reached; a server that does not serve requests
    (or does not allow ``cons``) gives an empty set.
    """
    reply = four_letter_word(host, port, "cons", timeout=timeout)
    return frozenset(int(found, 16) for found in _SESSION_ID.findall(reply))


def wait_for_mode(
    host: str,
    port: int,
    modes: Iterable[str] = SERVING_MODES,
    *,
    timeout: float = 60.0,
    poll_interval: float = 0.05,
    check: Optional[Callable[[], None]] = None,
) -> str:
    """Poll ``srvr`` until the server reports one of ``modes``; return that mode.

    ``check`` is called about once a second while waiting and may raise to give up early (for
    example when the server's container has exited). Raises :class:`TimeoutError` when no
    wanted mode appears within ``timeout`` seconds.
    """
    wanted = frozenset(modes)
    deadline = time.monotonic() + timeout
    next_check = time.monotonic() + 1.0
    mode: Optional[str] = None
    while True:
        mode = server_mode(host, port, timeout=min(1.0, max(0.1, deadline - time.monotonic())))
        if mode in wanted:
            assert mode is not None
            return mode
        now = time.monotonic()
        if now >= deadline:
            raise TimeoutError(
                f"ZooKeeper at {host}:{port} not serving as {'/'.join(sorted(wanted))} "
                f"after {timeout:g}s (last mode: {mode})"
            )
        if check is not None and now >= next_check:
            check()
            next_check = now + 1.0
        time.sleep(min(poll_interval, max(0.0, deadline - now)))
