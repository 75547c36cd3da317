"""A child process that the kernel kills when the thread that started it ends (Linux).

``zklock exec`` must not leave COMMAND running unlocked when zklock is killed outright, and
the testing harness's local ZooKeeper servers must not outlive the test process that
started them.  Both ask the kernel for it as the child starts (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from typing import Callable

__all__ = ["killed_with_this_thread", "libc_prctl"]

_PR_SET_PDEATHSIG = 1


def killed_with_this_thread(signum: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send ``signum`` to the child when this thread ends.

    The kernel sends it when the *thread* that started the child ends, not the process:
    start the child from a thread that outlives it.  If this process ended before the child
    asked, the child ends itself with ``signum``.  The kernel forgets the request when the
    child executes a set-user-ID or set-group-ID program, or one with file capabilities
    (``sudo``, say).  None where there is no ``prctl`` (not Linux).

    A ``preexec_fn`` makes ``subprocess`` fork and run Python in the child before the exec,
    which Python's docs warn against in a process with threads: this one only calls a C
    function looked up beforehand, loading and locking nothing after the fork.
    """
    prctl = libc_prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def in_the_child() -> None:
        if prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0 and os.getppid() != parent:
            os.kill(os.getpid(), signum)  # the parent is gone already: no signal would come

    return in_the_child


@functools.cache
def libc_prctl() -> Callable[..., int] | None:
    """The C library's ``prctl``, or None where there is none (not Linux, no C library).

    Looked up once, among the symbols the process already has (a dynamically linked Python
    has the C library's): ``ctypes.util.find_library`` would run ``ldconfig``, or a compiler,
    on each call.
    """
    if not sys.platform.startswith("linux"):
        return None
    for library in (None, "libc.so.6"):
        try:
            prctl: Callable[..., int] = ctypes.CDLL(library, use_errno=True).prctl
            return prctl
        except (OSError, AttributeError):
            continue
    return None
