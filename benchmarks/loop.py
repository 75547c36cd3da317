"""One implementation's uncontended loop in this process: the loop to look inside.

::

    python -m benchmarks.loop zklock+lean --hosts HOST:PORT --cycles 3000
    strace -f -c -o calls.txt python -m benchmarks.loop kazoo --hosts HOST:PORT
    py-spy record --gil -o cycle.svg -- python -m benchmarks.loop zklock+lean --hosts ...

It runs ``--warm-up`` cycles, then ``--cycles`` acquire+release cycles of one lock, and prints
the median cycle and the process CPU per cycle.  Nothing is interleaved and no ratio is taken:
``python -m benchmarks.run`` is the measurement; this is for a profiler or a system-call count,
which would otherwise trace the suite's coordinator and workers.  ``--hosts`` is required, so
that no Docker client runs in the traced process (``zklock server`` starts a ZooKeeper).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import uuid

from kazoo.exceptions import NoNodeError, NotEmptyError

from . import impls as implementations
from .worker import Worker


def run(impl: str, hosts: str, cycles: int, warm_up: int) -> dict[str, float]:
    """Time ``cycles`` acquire+release cycles of ``impl`` after ``warm_up`` untimed ones.

    The cycles are the suite's own (:meth:`benchmarks.worker.Worker.cycles`), run in this
    process instead of a worker's.
    """
    worker = Worker()
    path = f"{implementations.BENCH_ROOT}/loop-{uuid.uuid4().hex[:8]}"
    try:
        worker.connect(impl=impl, hosts=hosts, path=path)
        worker.cycles(warm_up)
        timed = worker.cycles(cycles)
        assert worker.session is not None
        client = worker.session.client
        with contextlib.suppress(NoNodeError):  # tooz keeps its locks elsewhere
            client.delete(path, recursive=True)
        with contextlib.suppress(NoNodeError, NotEmptyError):  # another run's path is there
            client.delete(implementations.BENCH_ROOT)
    finally:
        worker.disconnect()
    return {
        "p50_us": statistics.median(timed["latencies"]) * 1e6,
        "cpu_us_per_cycle": timed["cpu"] / cycles * 1e6,
    }


def main(argv: list[str]) -> int:
    """Run the loop and print its median cycle and CPU per cycle (see the module's docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loop", description=__doc__.split("\n\n")[0])
    parser.add_argument("impl", choices=implementations.ALL, help="the implementation to loop")
    parser.add_argument("--hosts", required=True, help="ZooKeeper to use (host:port,...)")
    parser.add_argument("--cycles", type=int, default=3000, help="timed cycles (default 3000)")
    parser.add_argument("--warm-up", type=int, default=300, help="untimed cycles first (default 300)")
    args = parser.parse_args(argv)
    if args.cycles < 1 or args.warm_up < 0:
        parser.error("--cycles must be at least 1 and --warm-up at least 0")
    result = run(args.impl, args.hosts, args.cycles, args.warm_up)
    print(f"{args.impl}: {args.cycles} cycles, p50 {result['p50_us']:.0f} us, "
          f"CPU {result['cpu_us_per_cycle']:.0f} us per cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
