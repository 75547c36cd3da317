"""How long this machine's disk takes to flush one small log append, back to back and after a pause.

::

    python -m benchmarks.disk [--dir /var/lib/docker] [--gaps-us 0,100,500] [--seconds 1.5] [--spin]

ZooKeeper answers a write only after ``fdatasync`` of its transaction log, and in the contended
suite it flushes about twice per acquisition, each time after a short pause (its sync thread
flushes as soon as its queue is empty).  This writes the same kind of file (64 MiB made sparse
by one byte at its end, as ZooKeeper pads its log, then appends of ``--size`` bytes, a lock
node's create or delete being about 60) and times each append's ``fdatasync``, pausing after
each flush for each of ``--gaps-us`` in turn (0: back to back).  It prints the median and 90th
percentile per pause, and removes its file.  The pause is a sleep, or with ``--spin`` a busy
wait: running both tells a disk that is slow after a pause from a CPU slow to wake from one.

A disk that flushes quickly back to back but slowly after a pause (as the virtual disk of the
machines this project was measured on does, see ``docs/performance.md``) makes every ZooKeeper
write slow at the rates a lock sees, for every implementation alike.  ``--dir`` should be on
the disk ZooKeeper's data lives on (for a container, Docker's data root).  To see ZooKeeper's
own flushes instead::

    perf trace -p <tid of the server's SyncThread> -e fdatasync

This touches no ZooKeeper and takes no ratio; it says what the server's disk costs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid

from .suites import percentile

_LOG_SIZE = 64 * 1024 * 1024  # ZooKeeper's preAllocSize default


def flush_latencies(
    directory: str, gap_s: float, seconds: float, size: int, spin: bool = False
) -> list[float]:
    """Seconds each ``fdatasync`` of a ``size``-byte append took, for ``seconds``.

    ``gap_s`` is the pause after each flush: a sleep, or with ``spin`` a busy wait.
    """
    path = os.path.join(directory, f"zklock-disk-probe-{uuid.uuid4().hex}.log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.pwrite(fd, b"\0", _LOG_SIZE - 1)  # sparse, as ZooKeeper pads its log
        record = b"x" * size
        flushes: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            os.write(fd, record)
            started = time.perf_counter()
            os.fdatasync(fd)
            flushes.append(time.perf_counter() - started)
            if gap_s and spin:
                until = time.perf_counter() + gap_s
                while time.perf_counter() < until:
                    pass
            elif gap_s:
                time.sleep(gap_s)
        return flushes
    finally:
        os.close(fd)
        os.unlink(path)


def main(argv: list[str] | None = None) -> int:
    """Print the flush latency per pause between flushes."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.disk", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--dir", default=tempfile.gettempdir(),
                        help="a directory on the disk to measure (default: the temporary directory)")
    parser.add_argument("--gaps-us", default="0,100,500",
                        help="pauses between a flush and the next append, in µs, comma-separated")
    parser.add_argument("--seconds", type=float, default=1.5, help="time per pause")
    parser.add_argument("--size", type=int, default=61, help="bytes per append")
    parser.add_argument("--spin", action="store_true", help="pause with a busy wait, not a sleep")
    args = parser.parse_args(argv)
    try:
        gaps = [int(gap) for gap in args.gaps_us.split(",") if gap.strip()]
    except ValueError:
        parser.error(f"--gaps-us {args.gaps_us!r}: pauses must be whole microseconds")
    if not gaps or any(gap < 0 for gap in gaps) or args.seconds <= 0 or args.size <= 0:
        parser.error("pauses must be >= 0, --seconds and --size > 0")
    pause = "busy wait" if args.spin else "sleep"
    print(f"fdatasync of one {args.size}-byte append in {args.dir}, {args.seconds:g} s per pause"
          f" ({pause}):")
    print(f"{'pause us':>9}  {'flushes':>8}  {'p50 us':>7}  {'p90 us':>7}")
    for gap in gaps:
        flushes = flush_latencies(args.dir, gap / 1e6, args.seconds, args.size, args.spin)
        print(f"{gap:>9}  {len(flushes):>8}  {percentile(flushes, 0.5) * 1e6:>7.0f}"
              f"  {percentile(flushes, 0.9) * 1e6:>7.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
