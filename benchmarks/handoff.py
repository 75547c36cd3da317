"""Where a contended hand-off's time goes, stage by stage, for zklock and kazoo's Lock.

    python -m benchmarks.handoff --hosts HOST:PORT [--impls zklock+lean,kazoo]
                                 [--processes 8] [--seconds 3] [--rounds 1]

For each implementation (named as in ``benchmarks.run``: ``zklock+lean``, ``zklock``,
``kazoo``, ``kazoo+lean``), ``--processes`` processes (each with its own session) take one
lock in turn, as the suite's contended rounds do, for ``--seconds``; with ``--rounds`` the
implementations take turns that many times.  Each process stamps, with the system-wide
monotonic clock, the points a hand-off passes through, and this prints the median of each
stage over every hand-off whose next holder was woken by its predecessor's deletion:

1. the release call, until it asks kazoo to delete the node (the releasing thread);
2. until the delete is written to the socket (kazoo's queue, doorbell and connection thread);
3. until the next holder's watch callback runs (the server's write, the watch event, and
   the waking of that process's connection thread; on kazoo's stock handler, of its
   callback thread too);
4. until its confirming listing is written to the socket (zklock sends it from the watch
   callback; kazoo's Lock wakes its waiting thread, which sends it);
5. until the first bytes of the listing's reply are read (the server's read);
6. until its ``acquire()`` returns (the reply parsed, the waiting thread woken, the lock's
   bookkeeping).

It also prints the medians of the server's stages (3 and 5) and of the client's (the other
four) summed per hand-off, the whole hand-off's 90th percentile and mean (throughput
follows the mean, which the server's slow tail weighs on), and how many times per
acquisition the servers in ``--hosts`` flushed their log to disk (``mntr``; "-" where the
servers do not answer it; the contenders' session closes at the end add one each at most).

When the next holder knows from the deletion alone that it holds (zklock, with the waiter
right behind the holder), stages 4 and 5 are absent, and 6 starts at the watch callback.  The
stamps are a few microseconds each, so every stage reads a little slower than it runs.  This
is a profiling aid: ``python -m benchmarks.run`` is the measurement of zklock against the
others.  ``--hosts`` is required, as for ``benchmarks.loop``.
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
from kazoo.handlers.threading import SequentialThreadingHandler
from kazoo.recipe.lock import Lock as KazooLock

from zklock import Lock
from zklock.handler import LeanHandler, _inline, runs_inline

from .impls import BENCH_ROOT, SESSION_TIMEOUT
from .server import disk_flushes
from .suites import percentile

IMPLS = ("zklock+lean", "zklock", "kazoo", "kazoo+lean")  # named as in benchmarks.run
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
        self.next_recv: Optional[str] = None  # the stamp the next socket read takes

    def sent(self) -> None:
        name, self.next_send = self.next_send, None
        if name is not None:
            self.at.setdefault(name, _clock())
            if name == "listing sent":
                self.next_recv = "listing's reply"  # the waiter expects nothing else

    def received(self) -> None:
        name, self.next_recv = self.next_recv, None
        if name is not None:
            self.at.setdefault(name, _clock())


def _stamped_io(sock: Any, stamps: _Stamps) -> tuple[Any, Any]:
    """``sock``'s ``send`` and ``recv``, each leaving its stamp."""
    send, recv = sock.send, sock.recv

    def stamped_send(data: Any) -> int:
        stamps.sent()
        sent: int = send(data)
        return sent

    def stamped_recv(size: int) -> bytes:
        data: bytes = recv(size)
        if data:
            stamps.received()
        return data

    return stamped_send, stamped_recv


class _StampingSocket:
    """A plain socket (kazoo's stock handler) whose writes and reads leave stamps.

    ``socket.socket`` takes no instance attributes, so it is wrapped; every other attribute
    is the socket's (and, like it, this has no ``pending``, which kazoo's reader looks for).
    """

    def __init__(self, sock: Any, stamps: _Stamps) -> None:
        self._sock = sock
        self.fileno = sock.fileno
        self.send, self.recv = _stamped_io(sock, stamps)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _stamping_client(hosts: str, stamps: _Stamps, lean: bool) -> KazooClient:
    """A client (on ``LeanHandler`` or kazoo's own) whose socket writes and reads, deletes,
    watches and listings leave stamps."""

    class StampingLeanHandler(LeanHandler):
        def create_connection(self, *args: Any, **kwargs: Any) -> Any:
            sock = super().create_connection(*args, **kwargs)
            # Instance attributes: kazoo calls sock.send(...) and sock.recv(...).
            sock.send, sock.recv = _stamped_io(sock, stamps)
            return sock

    class StampingHandler(SequentialThreadingHandler):  # type: ignore[misc]  # kazoo is untyped
        def create_connection(self, *args: Any, **kwargs: Any) -> Any:
            return _StampingSocket(super().create_connection(*args, **kwargs), stamps)

    handler = StampingLeanHandler() if lean else StampingHandler()
    client = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT, handler=handler)
    delete_async, get_async = client.delete_async, client.get_async

    def stamped_delete(*args: Any, **kwargs: Any) -> Any:
        stamps.at["delete asked"] = _clock()
        stamps.next_send = "delete sent"
        return delete_async(*args, **kwargs)

    def stamped_get(path: str, watch: Any = None) -> Any:
        if watch is None:
            return get_async(path)

        def stamped_watch(event: Any) -> Any:
            stamps.at["watch callback"] = _clock()
            stamps.next_send = "listing sent"
            return watch(event)

        if _inline(watch):  # delivered as the watch itself would be: the recipe's inline,
            runs_inline(stamped_watch)  # kazoo's Lock's on the handler's callback thread
        return get_async(path, watch=stamped_watch)

    # kazoo's synchronous delete and get call these, so both locks go through them.
    client.delete_async = stamped_delete
    client.get_async = stamped_get
    client.start(timeout=30)
    return client


def _contend(impl: str, hosts: str, path: str, start: float, end: float, queue: Any) -> None:
    """One process: acquire, release, again, from ``start`` until ``end``; report the stamps."""
    stamps = _Stamps()
    client = _stamping_client(hosts, stamps, lean=impl.endswith("+lean"))
    try:
        lock: Any = Lock(client, path) if impl.startswith("zklock") else KazooLock(client, path)
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
    reports: list[Any] = []
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


def stamped_hand_offs(
    impl: str, hosts: str, processes: int, seconds: float
) -> tuple[int, list[list[float]], Optional[int]]:
    """Contend with ``processes`` processes of ``impl`` for ``seconds``: the acquisitions made,
    each woken hand-off's stages (:func:`hand_off_stages`), and the servers' disk flushes
    meanwhile (None if they do not say: see :func:`benchmarks.server.disk_flushes`)."""
    admin = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT)
    admin.start(timeout=30)
    path = f"{BENCH_ROOT}/handoff-{uuid.uuid4().hex[:8]}"
    workers: list[Any] = []
    try:
        admin.ensure_path(path)
        context = multiprocessing.get_context("spawn")  # no kazoo threads inherited
        queue = context.Queue()
        start = _clock() + 3.0  # every process connected and warmed up by then
        workers = [
            context.Process(
                target=_contend, args=(impl, hosts, path, start, start + seconds, queue)
            )
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        time.sleep(max(0.0, start - _clock()))
        flushed_before = disk_flushes(hosts)
        reports = _collect(queue, workers, deadline=start + seconds + 60)
        flushed_after = disk_flushes(hosts)
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():  # only after a failure: it holds a session and a lock node
                worker.kill()
                worker.join()
        with contextlib.suppress(NoNodeError):
            admin.delete(path, recursive=True)
        with contextlib.suppress(NoNodeError, NotEmptyError):  # another run's path is there
            admin.delete(BENCH_ROOT)
        admin.stop()
        admin.close()
    releases = [release for report in reports for release in report[0]]
    acquisitions = [acquired for report in reports for acquired in report[1]]
    flushes = None
    if flushed_before is not None and flushed_after is not None:
        flushes = flushed_after - flushed_before
    return len(acquisitions), hand_off_stages(releases, acquisitions), flushes


SERVER_STAGES = (2, 4)  # indexes into STAGES: the write and its event, the read
CLIENT_STAGES = (0, 1, 3, 5)


def summary(
    acquisitions: int, rows: list[list[float]], flushes: Optional[int] = None
) -> dict[str, Any]:
    """The medians, in µs, of each stage, of the server's and the client's stages together
    (summed per hand-off; an absent stage counts 0) and of the whole hand-off; the whole
    hand-off's 90th percentile and mean too; and the servers' disk flushes per acquisition."""

    def median_us(values: list[float]) -> Optional[float]:
        return statistics.median(values) * 1e6 if values else None

    def part(row: list[float], stages: tuple[int, ...]) -> float:
        return sum(row[stage] or 0.0 for stage in stages)

    return {
        "acquisitions": acquisitions,
        "hand_offs": len(rows),
        "flushes_per_acquisition": (
            flushes / acquisitions if flushes is not None and acquisitions else None
        ),
        "stage_p50_us": [
            median_us([row[stage] for row in rows if row[stage] is not None])
            for stage in range(len(STAGES))
        ],
        "server_p50_us": median_us([part(row, SERVER_STAGES) for row in rows]),
        "client_p50_us": median_us([part(row, CLIENT_STAGES) for row in rows]),
        "total_p50_us": median_us([row[-1] for row in rows]),
        # What throughput follows: the server's slow tail weighs on it, not on the median.
        "total_p90_us": percentile([row[-1] for row in rows], 0.9) * 1e6 if rows else None,
        "total_mean_us": statistics.fmean(row[-1] for row in rows) * 1e6 if rows else None,
    }


def run(impls: list[str], hosts: str, processes: int, seconds: float,
        rounds: int = 1) -> dict[str, dict[str, Any]]:
    """Each implementation's :func:`summary`, over ``rounds`` runs of ``seconds`` each, the
    implementations taking turns (in reverse order every other round)."""
    pooled: dict[str, tuple[int, list[list[float]], Optional[int]]] = {
        impl: (0, [], 0) for impl in impls
    }
    for round_number in range(rounds):
        for impl in impls if round_number % 2 == 0 else impls[::-1]:
            acquisitions, rows, flushes = stamped_hand_offs(impl, hosts, processes, seconds)
            so_far, rows_so_far, flushes_so_far = pooled[impl]
            if flushes is None or flushes_so_far is None:
                flushes_so_far = None  # one count missing spoils the sum
            else:
                flushes_so_far += flushes
            pooled[impl] = (so_far + acquisitions, rows_so_far + rows, flushes_so_far)
    return {impl: summary(*pooled[impl]) for impl in impls}


def _shown(value: Optional[float], digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main(argv: list[str]) -> int:
    """Print each stage's median (see the module's docstring); exit status 1 if an
    implementation had no hand-off stamped."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.handoff", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--hosts", required=True, help="ZooKeeper to use (host:port,...)")
    parser.add_argument("--impls", default="zklock+lean,kazoo",
                        help=f"comma-separated, of {', '.join(IMPLS)} (default zklock+lean,kazoo)")
    parser.add_argument("--processes", type=int, default=8, help="contenders (default 8)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="contention time per run (default 3)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each implementation, taking turns (default 1)")
    args = parser.parse_args(argv)
    impls = args.impls.split(",")
    if args.processes < 2 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--processes must be at least 2, --seconds above 0, --rounds at least 1")
    if not impls or any(impl not in IMPLS for impl in impls) or len(set(impls)) < len(impls):
        parser.error(f"--impls takes distinct names of {', '.join(IMPLS)}")
    results = run(impls, args.hosts, args.processes, args.seconds, args.rounds)
    print(f"{args.processes} processes, {args.rounds} x {args.seconds:g} s each; medians in us:")
    label = 44
    print(" " * label + "".join(f"{impl:>13}" for impl in impls))
    rows = [(f"  {number}. {stage}", [r["stage_p50_us"][number - 1] for r in results.values()])
            for number, stage in enumerate(STAGES, 1)]
    rows += [
        ("  server's stages (3 + 5)", [r["server_p50_us"] for r in results.values()]),
        ("  client's stages (1 + 2 + 4 + 6)", [r["client_p50_us"] for r in results.values()]),
        ("  hand-off (release call -> acquire returns)",
         [r["total_p50_us"] for r in results.values()]),
        ("  hand-off, 90th percentile", [r["total_p90_us"] for r in results.values()]),
        ("  hand-off, mean", [r["total_mean_us"] for r in results.values()]),
        ("  acquisitions", [r["acquisitions"] for r in results.values()]),
        ("  disk flushes per acquisition (mntr)",
         [r["flushes_per_acquisition"] for r in results.values()]),
        ("  woken hand-offs", [r["hand_offs"] for r in results.values()]),
    ]
    for name, values in rows:
        digits = 2 if name.startswith("  disk flushes") else 0
        print(f"{name:{label}}" + "".join(f"{_shown(value, digits):>13}" for value in values))
    missing = [impl for impl, result in results.items() if not result["hand_offs"]]
    if missing:
        print(f"no hand-off was stamped for {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
