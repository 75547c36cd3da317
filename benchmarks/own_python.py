"""What zklock's own Python costs per acquire+release, with ZooKeeper's part taken away.

    python -m benchmarks.own_python [--cycles N]

The lock runs on a stand-in client whose requests are answered at once, in memory: no
server, no kazoo connection, no thread hand-off.  What is left is the lock's own code (the
API, the recipe, the ledger of creates, the lease and the session bookkeeping), and this
prints it two ways:

- Python opcodes and Python-level calls per cycle, counted with ``sys.settrace``: the same on
  every machine and every run, so a change to the lock's path shows as a plain number;
- microseconds of the calling thread's CPU per cycle, in a warm loop (the median of 7 runs).

This is a profiling aid, not a lock test: the stand-in answers every create as if the queue
were empty, and nothing here says anything about locking.  Where the lock's code runs cold
(the suite's interleaved blocks) it costs several times the warm figure (docs/performance.md,
"What limits the rest").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from types import FrameType, SimpleNamespace
from typing import Any, Callable

from kazoo.protocol.states import KazooState, KeeperState

import zklock

_SESSION_ID = 0x5A
_WARM_UP = 200


class _Answered:
    """A kazoo async result that is already set."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        return self.value

    def ready(self) -> bool:
        return True

    def successful(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> bool:
        return True

    def rawlink(self, callback: Callable[[Any], None]) -> None:
        callback(self)


class StandInClient:
    """The part of ``KazooClient`` the lock's uncontended path uses, answered in memory."""

    def __init__(self) -> None:
        self.client_state = KeeperState.CONNECTED
        self.state = KazooState.CONNECTED
        self.client_id = (_SESSION_ID, b"")
        self._session_timeout = 10_000
        self._stopped = threading.Event()
        self.default_acl = None
        self.auth_data: set[Any] = set()
        self._serial = 0
        self._children: list[str] = []

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Connection states never change here."""

    def create_async(self, path: str, value: bytes = b"", **_options: Any) -> _Answered:
        """A sequential node, alone in the queue; its stat carries the czxid and the owner."""
        self._serial += 1
        node = f"{path}{self._serial:010d}"
        self._children = [node.rsplit("/", 1)[1]]
        stat = SimpleNamespace(czxid=self._serial, ephemeralOwner=_SESSION_ID)
        return _Answered((node, stat))

    def get_children_async(self, path: str, **_options: Any) -> _Answered:
        """The queue: the last node created, unless it was deleted."""
        return _Answered(list(self._children))

    def delete_async(self, path: str, version: int = -1) -> _Answered:
        """Empty the queue."""
        self._children = []
        return _Answered(True)


def _cycle(lock: zklock.Lock) -> None:
    lock.acquire()
    lock.release()


def count_steps(lock: zklock.Lock, cycles: int) -> tuple[float, float]:
    """Python opcodes and Python-level calls per cycle (every frame, the stand-in's included)."""
    opcodes = calls = 0

    def trace(frame: FrameType, event: str, _arg: Any) -> Any:
        nonlocal opcodes, calls
        frame.f_trace_opcodes = True
        if event == "opcode":
            opcodes += 1
        elif event == "call":
            calls += 1
        return trace

    sys.settrace(trace)
    try:
        for _ in range(cycles):
            _cycle(lock)
    finally:
        sys.settrace(None)
    return opcodes / cycles, calls / cycles


def warm_cpu_us(lock: zklock.Lock, cycles: int, runs: int = 7) -> float:
    """The calling thread's CPU per cycle in a warm loop, median of ``runs`` runs (µs)."""
    results = []
    for _ in range(runs):
        started = time.thread_time()
        for _ in range(cycles):
            _cycle(lock)
        results.append((time.thread_time() - started) / cycles * 1e6)
    return statistics.median(results)


def measure(cycles: int) -> dict[str, float]:
    """Opcodes, calls and warm CPU per cycle of one lock on a stand-in client."""
    lock = zklock.Lock(StandInClient(), "/benchmarks/own-python")
    for _ in range(_WARM_UP):
        _cycle(lock)
    opcodes, calls = count_steps(lock, min(cycles, 200))
    return {"opcodes": opcodes, "calls": calls, "cpu_us": warm_cpu_us(lock, cycles)}


def main(argv: list[str] | None = None) -> int:
    """Print the figures (see the module's docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.own_python", description=__doc__)
    parser.add_argument("--cycles", type=int, default=10_000, help="cycles per timed run")
    args = parser.parse_args(argv)
    if args.cycles < 1:
        parser.error("--cycles must be at least 1")
    figures = measure(args.cycles)
    print(
        f"zklock's own Python per acquire+release (stand-in client): "
        f"{figures['opcodes']:.0f} opcodes, {figures['calls']:.0f} calls, "
        f"{figures['cpu_us']:.1f} us of CPU warm"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
