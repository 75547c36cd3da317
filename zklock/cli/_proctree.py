"""The processes a command started, so that a lost lock stops all of them, not just the first.

A shell script's children keep running when the shell is killed: signalling only the
command's own pid would let them work on without the lock.  On Linux the tree is read from
``/proc`` (each process's parent and start time); elsewhere it is the command alone.  A
process is named by its pid *and* start time, so a pid reused by an unrelated process after
the first one ended is never signalled.
"""

from __future__ import annotations

import contextlib
import os
from typing import NamedTuple

__all__ = ["Process", "alive", "process_tree", "signal_all"]

_PROC = "/proc"


class Process(NamedTuple):
    """One process, as long as it lives: its pid and when it started (kernel clock ticks)."""

    pid: int
    started: int


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of ``pid``, or None once it is gone."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as stat:
            raw = stat.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = raw.rpartition(")")[2].split()  # the command name may hold spaces and ")"
    if len(fields) < 20:
        return None
    return fields[0], int(fields[1]), int(fields[19])


def process_tree(root: int) -> list[Process]:
    """``root`` and every process descended from it that is still running, root first."""
    found = _stat(root)
    if found is None or found[0] == "Z":
        return []
    tree = [Process(root, found[2])]
    if not os.path.isdir(_PROC):  # pragma: no cover - systems without /proc
        return tree
    children: dict[int, list[Process]] = {}
    for entry in os.listdir(_PROC):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[0] != "Z":
                children.setdefault(stat[1], []).append(Process(int(entry), stat[2]))
    index = 0
    while index < len(tree):
        tree.extend(children.get(tree[index].pid, ()))
        index += 1
    return tree


def alive(processes: list[Process]) -> list[Process]:
    """Those of ``processes`` still running (a zombie has finished its work)."""
    running = []
    for process in processes:
        stat = _stat(process.pid)
        if stat is not None and stat[2] == process.started and stat[0] != "Z":
            running.append(process)
    return running


def signal_all(processes: list[Process], signum: int) -> None:
    """Send ``signum`` to each of ``processes`` that is still the process it was."""
    for process in alive(processes):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process.pid, signum)
