"""The processes a command started, so that a lost lock stops all of them, not just the first.

A shell script's children keep running when the shell is killed: signalling only the
command's own pid would let them work on without the lock.  On Linux the tree is read from
``/proc`` (each process's parent, process group and start time); elsewhere it is the command
alone.  A process is named by its pid *and* start time, so a pid reused by an unrelated
process after the first one ended is never signalled.

On Linux, :func:`child_subreaper` also makes ``zklock exec`` a *child subreaper*: a process
whose parent dies (a shell killed mid-script, a daemon that double-forked) is re-parented to
zklock instead of to init, so it stays in zklock's tree, can be found, stopped and waited for.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Collection, Iterator
from typing import NamedTuple

from .._parent_death import libc_prctl

__all__ = [
    "Process",
    "alive",
    "can_see_processes",
    "child_pids",
    "child_subreaper",
    "children",
    "descendants",
    "finished",
    "group_of",
    "process_tree",
    "signal_all",
]

_PROC = "/proc"

# prctl(2) options, from <linux/prctl.h>.
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


class Process(NamedTuple):
    """One process, as long as it lives: its pid and when it started (kernel clock ticks)."""

    pid: int
    started: int


class _Stat(NamedTuple):
    state: str
    parent: int
    group: int
    started: int


def _stat(pid: int) -> _Stat | None:
    """State, parent pid, process group and start time of ``pid``, or None once it is gone."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as stat:
            raw = stat.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = raw.rpartition(")")[2].split()  # the command name may hold spaces and ")"
    if len(fields) < 20:
        return None
    return _Stat(fields[0], int(fields[1]), int(fields[2]), int(fields[19]))


def process_tree(root: int, prune: Collection[Process] = ()) -> list[Process]:
    """``root`` and every process descended from it that is still running, root first.

    The processes in ``prune`` are left out, and so is everything below them.
    """
    found = _stat(root)
    if found is None or found.state == "Z":
        return []
    tree = [Process(root, found.started)]
    if not can_see_processes():  # pragma: no cover - systems without /proc
        return tree
    children: dict[int, list[Process]] = {}
    for entry in os.listdir(_PROC):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat.state != "Z":
                children.setdefault(stat.parent, []).append(Process(int(entry), stat.started))
    index = 0
    while index < len(tree):
        tree.extend(child for child in children.get(tree[index].pid, ()) if child not in prune)
        index += 1
    return tree


def can_see_processes() -> bool:
    """True where ``/proc`` shows the processes (Linux): elsewhere the tree is unknowable."""
    return os.path.isdir(_PROC)


def descendants(sparing: Collection[Process] = ()) -> list[Process] | None:
    """Every running process descended from this one, but ``sparing`` and those below them.

    None where ``/proc`` cannot tell.
    """
    if not can_see_processes():  # pragma: no cover - systems without /proc
        return None
    return process_tree(os.getpid(), prune=sparing)[1:]


def child_pids() -> list[int] | None:
    """Pids of this process's children, zombies included; None where the kernel cannot tell.

    Read from each thread's own list (``/proc/self/task/*/children``, Linux 4.2 and later):
    tens of microseconds, where scanning every process in ``/proc`` takes about a millisecond.
    """
    try:
        threads = os.listdir(f"{_PROC}/self/task")
    except OSError:
        return None
    pids: list[int] = []
    listed = False
    for thread in threads:
        try:
            with open(f"{_PROC}/self/task/{thread}/children", "rb") as listing:
                pids.extend(int(pid) for pid in listing.read().split())
            listed = True
        except OSError:  # the thread has ended, or the kernel keeps no such list
            continue
    return pids if listed else None


def children() -> list[Process]:
    """The children of this process now, finished ones not yet reaped (zombies) included."""
    if not can_see_processes():  # pragma: no cover - systems without /proc
        return []
    pids = child_pids()
    if pids is not None:
        return [Process(pid, stat.started) for pid in pids if (stat := _stat(pid)) is not None]
    me = os.getpid()  # pragma: no cover - kernels without the per-thread lists: scan them all
    found = []
    for entry in os.listdir(_PROC):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat.parent == me:
                found.append(Process(int(entry), stat.started))
    return found


def finished(pid: int) -> bool:
    """True once ``pid`` has exited: gone, or a zombie not yet reaped."""
    stat = _stat(pid)
    return stat is None or stat.state == "Z"


def alive(processes: list[Process]) -> list[Process]:
    """Those of ``processes`` still running (a zombie has finished its work)."""
    running = []
    for process in processes:
        stat = _stat(process.pid)
        if stat is not None and stat.started == process.started and stat.state != "Z":
            running.append(process)
    return running


def group_of(process: Process) -> int | None:
    """The process group of ``process``, or None once it is gone (or its pid names another)."""
    stat = _stat(process.pid)
    if stat is None or stat.started != process.started:
        return None
    return stat.group


def signal_all(processes: list[Process], signum: int) -> None:
    """Send ``signum`` to each of ``processes`` that is still the process it was."""
    for process in alive(processes):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process.pid, signum)


@contextlib.contextmanager
def child_subreaper() -> Iterator[bool]:
    """Make this process a child subreaper (Linux) while in the block; yield whether it is.

    Elsewhere, or if the kernel refuses, nothing changes and False is yielded: orphans of the
    command then go to init as before, out of reach.  The previous setting is restored on
    exit, since ``zklock.cli.main`` may run inside a longer-lived process (tests).
    """
    prctl = libc_prctl()
    if prctl is None:
        yield False
        return
    previous = ctypes.c_int(0)
    if prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0) != 0:
        yield False
        return
    if prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        yield False
        return
    try:
        yield True
    finally:
        prctl(_PR_SET_CHILD_SUBREAPER, previous.value, 0, 0, 0)
