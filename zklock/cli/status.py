"""``zklock status``: who holds a lock and who waits for it, as a table or as JSON.

The JSON document (``--json``) is stable; fields are only ever added::

    {
      "version": 1,
      "path": "/locks/backup",
      "holder": {CONTENDER} or null,
      "waiters": [{CONTENDER}, ...]           # in queue order
    }
    CONTENDER = {
      "position": 0,                          # 0 = the holder, 1 = next in line, ...
      "identifier": "build-7:4242",
      "node": "/locks/backup/_c_...-lock-0000000003",
      "token": 4294967310,                    # fencing token (czxid), an integer
      "session_id": "0x1000086c1f40003",      # hexadecimal, as ZooKeeper's logs print it
      "created_at": 1718000000.123,           # Unix time, from the server's clock
      "age_seconds": 12.3                     # local clock minus created_at, at least 0
    }
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from ._common import add_connection_options, add_verbosity_options, connect
from ._errors import OutputFailed

if TYPE_CHECKING:
    from ..contender import Contender

__all__ = ["SCHEMA_VERSION", "configure", "document", "run", "table"]

SCHEMA_VERSION = 1


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``zklock status``."""
    parser.description = (
        "Show the holder of the lock PATH and the contenders waiting for it, in queue order: "
        "identifier, node, fencing token, session id and age.  Exit status 0 whether or not "
        "the lock is held; 64 bad arguments; 69 ZooKeeper unreachable; 74 stdout not "
        "writable; 77 credentials or ACLs refused."
    )
    parser.add_argument("path", metavar="PATH", help="the lock, a ZooKeeper path such as /locks/backup")
    parser.add_argument("--json", action="store_true", help="print a JSON document (stable schema)")
    add_connection_options(parser)
    add_verbosity_options(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``zklock status``; print the queue on stdout."""
    from .._validate import check_lock_path
    from ..lock import Lock

    path = check_lock_path(args.path)
    with connect(args) as client:
        contenders = Lock(client, path, "zklock-status").contenders(timeout=args.connect_timeout)
    now = time.time()
    if args.json:
        text = json.dumps(document(path, contenders, now), indent=2) + "\n"
    else:
        text = table(path, contenders, now)
    _print(text)
    return 0


def _print(text: str) -> None:
    """Write ``text`` on stdout, or raise :class:`OutputFailed` if it cannot be written.

    Started with stdout closed (``>&-``), Python sets ``sys.stdout`` to None.  A broken pipe
    (``| head -1``) is left to ``main``, which exits as the shell's own commands do (141).
    """
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except (AttributeError, OSError, ValueError) as error:
        reason = "stdout is closed" if sys.stdout is None else str(error)
        raise OutputFailed(f"cannot write the status: {reason}") from None


def _entry(position: int, contender: Contender, now: float) -> dict[str, Any]:
    return {
        "position": position,
        "identifier": contender.identifier,
        "node": contender.node,
        "token": contender.token,
        "session_id": f"0x{contender.session_id:x}",
        "created_at": contender.created_at,
        "age_seconds": round(max(0.0, now - contender.created_at), 3),
    }


def document(path: str, contenders: list[Contender], now: float) -> dict[str, Any]:
    """The ``--json`` document for ``contenders`` (queue order) seen at Unix time ``now``."""
    entries = [_entry(i, contender, now) for i, contender in enumerate(contenders)]
    return {
        "version": SCHEMA_VERSION,
        "path": path,
        "holder": entries[0] if entries else None,
        "waiters": entries[1:],
    }


def table(path: str, contenders: list[Contender], now: float) -> str:
    """The human-readable table: one row per contender, the holder first."""
    if not contenders:
        return f"{path}: free (no holder, nobody waiting)\n"
    waiting = len(contenders) - 1
    lines = [f"{path}: held by {contenders[0].identifier!r}, {waiting} waiting"]
    header = ("#", "ROLE", "IDENTIFIER", "TOKEN", "SESSION", "AGE", "NODE")
    rows = [header]
    for i, contender in enumerate(contenders):
        rows.append(
            (
                str(i),
                "holder" if i == 0 else "waiting",
                _shown(contender.identifier),
                str(contender.token),
                f"0x{contender.session_id:x}",
                f"{max(0.0, now - contender.created_at):.1f}s",
                _shown(contender.node),
            )
        )
    widths = [max(len(row[col]) for row in rows) for col in range(len(header))]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return "\n".join(lines) + "\n"


def _shown(text: str) -> str:
    """``text`` for a table cell: control characters escaped, as ``repr`` writes them.

    Any client may write any identifier (zklock's own refuses control characters, kazoo's and
    Curator's do not): a newline must not split a row, nor forge one.
    """
    return text if text.isprintable() else repr(text)[1:-1]
