"""Where the memory of a held zklock lock goes: Python's allocations per lock while held.

    python -m benchmarks.held_memory --hosts HOST:PORT [--locks N] [--top K]

One client (on the lean handler) makes N lock objects on N paths, untraced; then, traced with
``tracemalloc``, acquires them all.  What the process allocated for the holding and still
keeps is printed per held lock, grouped by the line of zklock (or kazoo) that made it.  The
scale suite shows the resident-memory growth of 10,000 held locks beside kazoo's; this says
what it is made of.  A profiling aid: no ratio, nothing about locking.
"""

from __future__ import annotations

import argparse
import gc
import linecache
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

import zklock
from zklock.handler import LeanHandler

from .impls import BENCH_ROOT, remove_znodes

_LIBRARIES = (str(Path(zklock.__file__).parent) + "/", "/kazoo/")


def _made_by(trace: tracemalloc.Traceback) -> str:
    """The innermost line of zklock or kazoo in ``trace``: the one that asked for the memory."""
    for frame in reversed(trace):  # tracemalloc lists the innermost frame last
        if any(library in frame.filename for library in _LIBRARIES):
            break
    else:
        frame = trace[-1]
    source = linecache.getline(frame.filename, frame.lineno).strip()
    return f"{Path(frame.filename).name}:{frame.lineno}  {source}"


def measure(hosts: str, locks: int, base: str) -> dict[str, Any]:
    """Bytes and blocks per held lock, in total and by the line that allocated them.

    The locks live below ``base``, which the caller removes.
    """
    client = KazooClient(hosts=hosts, handler=LeanHandler())
    client.start()
    try:
        for i in range(locks):
            client.ensure_path(f"{base}/l{i}")
        held = [zklock.Lock(client, f"{base}/l{i}") for i in range(locks)]
        warm = zklock.Lock(client, f"{base}/warm")  # first-use costs, not per lock
        warm.acquire()
        warm.release()
        gc.collect()
        tracemalloc.start(10)
        try:
            before = tracemalloc.take_snapshot()
            for lock in held:
                lock.acquire()
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        by_line: dict[str, list[int]] = {}
        for stat in after.compare_to(before, "traceback"):
            sizes = by_line.setdefault(_made_by(stat.traceback), [0, 0])
            sizes[0] += stat.size_diff
            sizes[1] += stat.count_diff
        for lock in held:
            lock.release()
        total = sum(size for size, _ in by_line.values())
        return {
            "locks": locks,
            "bytes_per_lock": total / locks,
            "by_line": {line: {"bytes_per_lock": size / locks, "blocks_per_lock": count / locks}
                        for line, (size, count) in sorted(by_line.items(),
                                                          key=lambda item: -item[1][0])},
        }
    finally:
        client.stop()
        client.close()


def main(argv: list[str] | None = None) -> int:
    """Print the bytes per held lock and the lines that keep the most (see the module's docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.held_memory",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", required=True, help="a running ZooKeeper, host:port")
    parser.add_argument("--locks", type=int, default=2000, help="locks held at once (2000)")
    parser.add_argument("--top", type=int, default=12, help="lines shown (12)")
    args = parser.parse_args(argv)
    if args.locks < 1:
        raise SystemExit(f"--locks must be at least 1, not {args.locks}")
    base = f"{BENCH_ROOT}/held-memory-{uuid.uuid4().hex[:8]}"
    try:
        found = measure(args.hosts, args.locks, base)
    finally:
        remove_znodes(args.hosts, base)
    print(f"{found['bytes_per_lock']:.0f} bytes per held lock, allocated while acquiring "
          f"{found['locks']} locks and kept (tracemalloc; lean handler)")
    for line, sizes in list(found["by_line"].items())[:args.top]:
        print(f"  {sizes['bytes_per_lock']:7.1f} B  {sizes['blocks_per_lock']:5.2f} blocks  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
