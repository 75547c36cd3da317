"""Where a contended hand-off's time goes, for zklock on ``LeanHandler``.

    python -m benchmarks.handoff --hosts 172.17.0.2:2181 [--processes 8] [--seconds 3]

``--processes`` processes (each with its own session) take one lock in turn, as the suite's
contended rounds do, for ``--seconds``.  Each stamps, with the system-wide monotonic clock,
the points a hand-off passes through, and this prints the median of each stage over every
hand-off whose next holder was woken by its predecessor's deletion:

1. the release call, until it asks kazoo to delete the node (the releasing thread);
2. until the delete is written to the socket (kazoo's queue, doorbell and connection thread);
3. until the next holder's watch callback runs (the server's write, the watch event, and
   the waking of that process's connection thread);
4. until its confirming listing is written to the socket (sent from the watch callback);
5. until the listing's reply is in (the server's read);
6. until its ``acquire()`` returns (waking the waiting thread, and the lock's bookkeeping).

With two processes the next holder knows from the deletion alone that it holds: stages 4 and
5 are absent, and 6 starts at the watch callback.  The stamps are a few microseconds each,
so every stage reads a little slower than it runs.  This is a profiling aid, not a
measurement of zklock against anything: ``python -m benchmarks.run`` is that.  ``--hosts`` is
required, as for ``benchmarks.loop``.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import multiprocessing
import statistics
import sys
import time
import uuid
from queue import Empty
from typing import Any, Optional

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NotEmptyError

from zklock import Lock
from zklock.handler import LeanHandler, runs_inline

from .impls import SESSION_TIMEOUT

_PARENT = "/zklock-bench"  # as benchmarks.loop
_clock = time.monotonic

STAGES = (
    "release call -> delete asked",
    "delete asked -> delete sent",
    "delete sent -> watch callback",
    "watch callback -> listing sent",
    "listing sent -> listing's reply",
    "last of these -> acquire returns",
)


class _Stamps:
    """One process's stamps for the hand-off in progress, by name."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.next_send: Optional[str] = None  # the stamp the next socket write takes

    def sent(self) -> None:
        name, self.next_send = self.next_send, None
        if name is not None:
            self.at.setdefault(name, _clock())


def _stamping_client(hosts: str, stamps: _Stamps) -> KazooClient:
    """A lean client whose socket writes, deletes, watches and listings leave stamps."""

    class StampingHandler(LeanHandler):
        def create_connection(self, *args: Any, **kwargs: Any) -> Any:
            sock = super().create_connection(*args, **kwargs)
            send = sock.send

            def stamped_send(data: Any) -> int:
                stamps.sent()
                sent: int = send(data)
                return sent

            sock.send = stamped_send  # an instance attribute: kazoo calls sock.send(...)
            return sock

    client = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT, handler=StampingHandler())
    delete_async, get_async = client.delete_async, client.get_async
    get_children_async = client.get_children_async

    def stamped_delete(*args: Any, **kwargs: Any) -> Any:
        stamps.at["delete asked"] = _clock()
        stamps.next_send = "delete sent"
        return delete_async(*args, **kwargs)

    def stamped_get(path: str, watch: Any = None) -> Any:
        if watch is None:
            return get_async(path)

        @runs_inline  # as the recipe's own watch callback, which it calls at once
        def stamped_watch(event: Any) -> Any:
            stamps.at["watch callback"] = _clock()
            stamps.next_send = "listing sent"
            return watch(event)

        return get_async(path, watch=stamped_watch)

    def stamped_listing(*args: Any, **kwargs: Any) -> Any:
        result = get_children_async(*args, **kwargs)
        if "watch callback" in stamps.at:

            @runs_inline  # only stamps
            def replied(_result: Any) -> None:
                stamps.at.setdefault("listing's reply", _clock())

            result.rawlink(replied)
        return result

    client.delete_async = stamped_delete
    client.get_async = stamped_get
    client.get_children_async = stamped_listing
    client.start(timeout=30)
    return client


def _contend(hosts: str, path: str, start: float, end: float, queue: Any) -> None:
    """One process: acquire, release, again, from ``start`` until ``end``; report the stamps."""
    stamps = _Stamps()
    client = _stamping_client(hosts, stamps)
    try:
        lock = Lock(client, path)
        lock.acquire()
        lock.release()
        releases: list[tuple[float, float, float]] = []  # call, delete asked, delete sent
        acquisitions: list[dict[str, float]] = []
        time.sleep(max(0.0, start - _clock()))
        while _clock() < end:
            stamps.at.clear()
            lock.acquire()
            acquisitions.append({**stamps.at, "acquired": _clock()})
            stamps.at.clear()
            called = _clock()
            lock.release()
            at = stamps.at
            if "delete asked" in at and "delete sent" in at:
                releases.append((called, at["delete asked"], at["delete sent"]))
        queue.put((releases, acquisitions))
    finally:
        client.stop()
        client.close()


def hand_off_stages(
    releases: list[tuple[float, float, float]], acquisitions: list[dict[str, float]]
) -> list[list[float]]:
    """Each woken hand-off's stages in seconds (the six of :data:`STAGES`; absent ones None).

    An acquisition is matched with the latest release called before it returned; one whose
    stamps are out of order (its holder was not woken by that release) is left out.
    """
    releases = sorted(releases)
    calls = [release[0] for release in releases]
    rows = []
    for acquired in acquisitions:
        if "watch callback" not in acquired:
            continue  # not woken by a deletion (the first in the queue, say)
        index = bisect.bisect_left(calls, acquired["acquired"]) - 1
        if index < 0:
            continue
        called, asked, sent = releases[index]
        points = [called, asked, sent, acquired["watch callback"]]
        listed = "listing sent" in acquired and "listing's reply" in acquired
        if listed:
            points += [acquired["listing sent"], acquired["listing's reply"]]
        points.append(acquired["acquired"])
        if any(later < earlier for earlier, later in zip(points, points[1:])):
            continue
        steps: list[Any] = [later - earlier for earlier, later in zip(points, points[1:])]
        if not listed:
            steps[3:3] = [None, None]
        rows.append([*steps, points[-1] - called])
    return rows


def _collect(queue: Any, workers: list[Any], deadline: float) -> list[Any]:
    """Every contender's report; a contender that died or a run past ``deadline`` raises."""
    reports = []
    while len(reports) < len(workers):
        try:
            reports.append(queue.get(timeout=0.5))
        except Empty:
            failed = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            if failed:
                raise RuntimeError(f"a contender process failed (exit codes {failed})") from None
            if _clock() > deadline:
                raise RuntimeError("the contenders did not report in time") from None
    return reports


def stamped_hand_offs(hosts: str, processes: int, seconds: float) -> tuple[int, list[list[float]]]:
    """Contend with ``processes`` processes for ``seconds``: the acquisitions made, and each
    woken hand-off's stages (:func:`hand_off_stages`)."""
    admin = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT)
    admin.start(timeout=30)
    path = f"{_PARENT}/handoff-{uuid.uuid4().hex[:8]}"
    workers: list[Any] = []
    try:
        admin.ensure_path(path)
        context = multiprocessing.get_context("spawn")  # no kazoo threads inherited
        queue = context.Queue()
        start = _clock() + 3.0  # every process connected and warmed up by then
        workers = [
            context.Process(target=_contend, args=(hosts, path, start, start + seconds, queue))
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        reports = _collect(queue, workers, deadline=start + seconds + 60)
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():  # only after a failure: it holds a session and a lock node
                worker.kill()
                worker.join()
        with contextlib.suppress(NoNodeError):
            admin.delete(path, recursive=True)
        with contextlib.suppress(NoNodeError, NotEmptyError):  # another run's path is there
            admin.delete(_PARENT)
        admin.stop()
        admin.close()
    releases = [release for report in reports for release in report[0]]
    acquisitions = [acquired for report in reports for acquired in report[1]]
    return len(acquisitions), hand_off_stages(releases, acquisitions)


def run(hosts: str, processes: int, seconds: float) -> dict[str, Any]:
    """Contend with ``processes`` processes for ``seconds``; the stages' medians in µs."""
    acquisitions, rows = stamped_hand_offs(hosts, processes, seconds)
    medians: list[Optional[float]] = []
    for column in range(len(STAGES) + 1):
        values = [row[column] for row in rows if row[column] is not None]
        medians.append(statistics.median(values) * 1e6 if values else None)
    return {"acquisitions": acquisitions, "hand_offs": len(rows),
            "stage_p50_us": medians[:-1], "total_p50_us": medians[-1]}


def main(argv: list[str]) -> int:
    """Print each stage's median (see the module's docstring); exit status 1 if none was stamped."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.handoff", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--hosts", required=True, help="ZooKeeper to use (host:port,...)")
    parser.add_argument("--processes", type=int, default=8, help="contenders (default 8)")
    parser.add_argument("--seconds", type=float, default=3.0, help="contention time (default 3)")
    args = parser.parse_args(argv)
    if args.processes < 2 or args.seconds <= 0:
        parser.error("--processes must be at least 2 and --seconds above 0")
    result = run(args.hosts, args.processes, args.seconds)
    if not result["hand_offs"]:
        print("no hand-off was stamped", file=sys.stderr)
        return 1
    print(f"{args.processes} processes, {result['acquisitions']} acquisitions, "
          f"{result['hand_offs']} woken hand-offs; medians:")
    for number, (stage, median) in enumerate(zip(STAGES, result["stage_p50_us"]), 1):
        shown = "-" if median is None else f"{median:.0f} us"
        print(f"  {number}. {stage:34} {shown:>8}")
    print(f"  hand-off (release call -> acquire returns) {result['total_p50_us']:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
