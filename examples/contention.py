"""Several processes contend for one lock; the parent checks that it really excluded them.

    python examples/contention.py [HOSTS] [--workers 6] [--rounds 12] [--hold 0.02] [--without-lock]

Each worker is a separate process with its own KazooClient. In every critical section it does
a read-modify-write of a counter kept in a znode (read, sleep ``--hold`` seconds, write the
value plus one), and notes when it entered and left on the monotonic clock, which on Linux is
one clock for the whole machine, so times from different processes compare. The parent then
prints who held the lock when and checks:

* no two critical sections overlapped;
* the counter equals the number of critical sections (no update was lost), and each holder
  read exactly the value the previous holder wrote;
* the fencing tokens increase in the order the lock was held.

The exit status is 0 when every check passes, 1 when one fails. ``--without-lock`` runs the
same workers with no lock at all, to show that the checks do catch what the lock prevents.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import queue
import statistics
import sys
import time
import traceback
from dataclasses import dataclass

from _common import connected, scratch_path, zookeeper

import zklock

CHART_WIDTH = 64


@dataclass(frozen=True)
class Section:
    """One critical section, as the worker that ran it reported it."""

    worker: int
    enter: float
    exit: float
    token: int
    read: int


# ---------------------------------------------------------------------------- the workers
class NoLease:
    """What ``--without-lock`` holds instead of a lease: nothing."""

    token = 0

    def check(self) -> None:
        pass


def worker(index, hosts, lock_path, counter_path, rounds, hold, use_lock, barrier, results) -> None:
    """Run in a child process: ``rounds`` critical sections, each reported on ``results``."""
    try:
        with connected(hosts) as client:
            lock = zklock.Lock(client, lock_path, identifier=f"worker-{index}")
            barrier.wait(timeout=60)  # all connected: start contending together
            for _ in range(rounds):
                holding = lock.hold(timeout=30) if use_lock else contextlib.nullcontext(NoLease())
                with holding as lease:
                    entered = time.monotonic()
                    data, _stat = client.get(counter_path)
                    value = int(data)
                    time.sleep(hold)  # a slow computation: the window a lost update needs
                    lease.check()  # still ours? (raises LockLost / LockInDoubt if not)
                    client.set(counter_path, str(value + 1).encode())
                    left = time.monotonic()
                results.put(("section", Section(index, entered, left, lease.token, value)))
        results.put(("done", index))
    except BaseException:
        results.put(("error", index, traceback.format_exc()))


# ---------------------------------------------------------------------------- the parent
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "hosts", nargs="?", help="ZooKeeper hosts (default: $ZKLOCK_HOSTS, or a throwaway server)"
    )
    parser.add_argument("--workers", type=int, default=6, help="processes (default 6)")
    parser.add_argument("--rounds", type=int, default=12, help="critical sections per process (default 12)")
    parser.add_argument("--hold", type=float, default=0.02, help="seconds spent inside each (default 0.02)")
    parser.add_argument("--without-lock", action="store_true", help="no lock: watch the checks fail")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.rounds < 1 or args.hold < 0:
        parser.error("--workers and --rounds must be positive, --hold not negative")

    with zookeeper(args.hosts) as hosts, connected(hosts) as client:
        with scratch_path(client, "contention") as root:
            counter_path = f"{root}/counter"
            client.create(counter_path, b"0", makepath=True)
            started, sections, errors = run_workers(hosts, f"{root}/lock", counter_path, args)
            counter = int(client.get(counter_path)[0])
    print_timeline(sections, started, args.workers)
    return check(sections, errors, counter, args.workers * args.rounds, started)


def run_workers(hosts, lock_path, counter_path, args):
    """Start the workers, gather what they report; return (start time, sections, errors)."""
    context = multiprocessing.get_context("spawn")  # fresh processes: no kazoo threads forked
    results = context.Queue()
    barrier = context.Barrier(args.workers + 1)
    processes = [
        context.Process(
            target=worker,
            args=(i, hosts, lock_path, counter_path, args.rounds, args.hold, not args.without_lock,
                  barrier, results),
            name=f"worker-{i}",
        )
        for i in range(args.workers)
    ]
    for process in processes:
        process.start()
    sections: list[Section] = []
    errors: list[str] = []
    try:
        barrier.wait(timeout=60)
        started = time.monotonic()
        print(f"{args.workers} processes contend for {lock_path}, "
              f"{args.rounds} critical sections each, {args.hold * 1000:.0f} ms inside each"
              + (" -- WITHOUT THE LOCK" if args.without_lock else ""))
        running = set(range(args.workers))
        give_up = started + 60 + args.workers * args.rounds * (args.hold + 0.5)
        while running:
            try:
                message = results.get(timeout=max(0.1, give_up - time.monotonic()))
            except queue.Empty:
                errors.append(f"workers {sorted(running)} did not finish in time")
                break
            if message[0] == "section":
                sections.append(message[1])
            else:
                running.discard(message[1])
                if message[0] == "error":
                    errors.append(f"worker-{message[1]} failed:\n{message[2]}")
    except multiprocessing.BrokenBarrierError:
        errors.append("the workers did not all connect within 60 s")
        started = time.monotonic()
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()
    return started, sorted(sections, key=lambda s: s.enter), errors


def print_timeline(sections: list[Section], started: float, workers: int) -> None:
    """Who held the lock when: one line per section, then one chart row per worker."""
    if not sections:
        return
    print()
    print("   #   enter ms    exit ms  held ms   gap ms  holder     token        counter")
    previous_exit = None
    gaps = []
    for number, s in enumerate(sections, 1):
        gap = "" if previous_exit is None else f"{(s.enter - previous_exit) * 1000:7.1f}"
        if previous_exit is not None:
            gaps.append(s.enter - previous_exit)
        print(f"{number:4d} {(s.enter - started) * 1000:10.1f} {(s.exit - started) * 1000:10.1f} "
              f"{(s.exit - s.enter) * 1000:8.1f} {gap:>8}  worker-{s.worker:<3d} {s.token:<12d} "
              f"{s.read} -> {s.read + 1}")
        previous_exit = s.exit

    end = max(s.exit for s in sections)
    span = max(end - started, 1e-9)
    print()
    print(f"holding, {span * 1000:.0f} ms across (one column = {span * 1000 / CHART_WIDTH:.1f} ms):")
    for index in range(workers):
        row = [" "] * CHART_WIDTH
        for s in sections:
            if s.worker == index:
                first = int((s.enter - started) / span * (CHART_WIDTH - 1))
                last = int((s.exit - started) / span * (CHART_WIDTH - 1))
                for column in range(first, last + 1):
                    row[column] = "#"
        print(f"  worker-{index:<3d}|{''.join(row)}|")
    if gaps:
        print(f"hand-over from one holder to the next: median {statistics.median(gaps) * 1000:.1f} ms, "
              f"max {max(gaps) * 1000:.1f} ms")


def check(sections: list[Section], errors: list[str], counter: int, expected: int, started: float) -> int:
    """Print each check's verdict; return the exit status."""

    def show(pair: tuple[Section, Section]) -> str:
        return " and ".join(
            f"worker-{s.worker} {(s.enter - started) * 1000:.1f}-{(s.exit - started) * 1000:.1f} ms "
            f"(token {s.token})"
            for s in pair
        )

    overlaps = [(a, b) for a, b in zip(sections, sections[1:]) if b.enter < a.exit]
    stale_reads = [(n, s.read) for n, s in enumerate(sections) if s.read != n]
    disorder = [(a, b) for a, b in zip(sections, sections[1:]) if not a.token < b.token]
    checks = [
        ("every worker finished", not errors, "; ".join(errors)),
        (f"{expected} critical sections ran", len(sections) == expected, f"{len(sections)} ran"),
        ("no two critical sections overlapped", not overlaps,
         f"{len(overlaps)} overlaps, first: {show(overlaps[0]) if overlaps else ''}"),
        (f"the counter is {len(sections)} (no lost update)", counter == len(sections), f"it is {counter}"),
        ("each holder read the previous holder's write", not stale_reads,
         f"(section, value read): {stale_reads[:5]}"),
        ("fencing tokens increase in holding order", not disorder,
         f"first: {show(disorder[0]) if disorder else ''}"),
    ]
    print()
    for title, passed, detail in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {title}" + ("" if passed else f": {detail}"))
    failed = sum(not passed for _, passed, _ in checks)
    print("all checks passed" if not failed else f"{failed} check(s) FAILED")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
