"""The measurements.  Each returns plain data (dicts, lists, floats) for the table and JSON.

Ratios are always taken inside one repeat, between implementations that ran one after
another in that repeat (the order turning by one each repeat: A B C D, B C D A, ...), and
summarised by their median over repeats.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any, Callable, Optional

from .impls import REFERENCE
from .pool import Pool, run_once
from .server import received_by_session


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (``fraction`` in [0, 1])."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, int(-(-fraction * len(ordered) // 1)))  # ceil
    return ordered[min(rank, len(ordered)) - 1]


def slug(impl: str) -> str:
    """An implementation name usable in a znode path."""
    return impl.replace("+", "-")


def ratio_summary(
    per_repeat: dict[str, list[dict[str, Any]]], metric: str, reference: str = REFERENCE
) -> dict[str, Optional[float]]:
    """Median over repeats of ``metric[impl] / metric[reference]`` within each repeat."""
    summary: dict[str, Optional[float]] = {}
    base = per_repeat.get(reference)
    for impl, repeats in per_repeat.items():
        if base is None:
            summary[impl] = None
            continue
        ratios = [
            mine[metric] / ref[metric]
            for mine, ref in zip(repeats, base)
            if mine.get(metric) is not None and ref.get(metric)
        ]
        summary[impl] = statistics.median(ratios) if ratios else None
    return summary


def median_of(repeats: list[dict[str, Any]], metric: str) -> Optional[float]:
    """The median of ``metric`` over repeats (``None`` if never measured)."""
    values = [r[metric] for r in repeats if r.get(metric) is not None]
    return statistics.median(values) if values else None


# ---------------------------------------------------------------------- uncontended
def uncontended(
    pool: Pool,
    hosts: str,
    base: str,
    impls: Sequence[str],
    repeats: int,
    cycles: int,
    warmup: int,
    progress: Callable[[str], None],
    block: int = 10,
) -> dict[str, Any]:
    """Acquire+release latency (p50, p99) and process CPU, one worker per implementation.

    A repeat runs ``cycles`` cycles of each implementation in blocks of ``block`` cycles, the
    implementations taking turns block by block (A B C, B C A, C A B, ...). The server's disk
    here changes speed within a second (a write took 0.3 ms, then 1 ms for a while): blocks of
    a few milliseconds let every implementation of a repeat meet the same disk.
    """
    workers = dict(zip(impls, pool.workers))
    for impl, worker in workers.items():
        worker.call("connect", impl=impl, hosts=hosts, path=f"{base}/uncontended/{slug(impl)}")
        worker.call("cycles", n=warmup)
    per_repeat: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
    pooled: dict[str, list[float]] = {impl: [] for impl in impls}
    order = list(impls)
    for repeat in range(repeats):
        latencies: dict[str, list[float]] = {impl: [] for impl in impls}
        cpu = dict.fromkeys(impls, 0.0)
        for done in range(0, cycles, block):
            for impl in order:
                reply = workers[impl].call("cycles", n=min(block, cycles - done))
                latencies[impl] += reply["latencies"]
                cpu[impl] += reply["cpu"]
            order.append(order.pop(0))
        for impl in impls:
            pooled[impl] += latencies[impl]
            per_repeat[impl].append({
                "p50_us": percentile(latencies[impl], 0.50) * 1e6,
                "p99_us": percentile(latencies[impl], 0.99) * 1e6,
                "cpu_s_per_1000": cpu[impl] / cycles * 1000,
            })
        progress(f"uncontended repeat {repeat + 1}/{repeats}: " + ", ".join(
            f"{impl} {per_repeat[impl][-1]['p50_us']:.0f}us" for impl in impls))
    for worker in workers.values():
        worker.call("disconnect")
    # p50 and CPU: median over repeats, ratios per repeat.  p99: a repeat has too few cycles
    # for its own p99, so the p99 is taken over all cycles of an implementation (which ran in
    # the same interleaved time slices as the reference's), and so is its ratio.
    p99 = {impl: percentile(pooled[impl], 0.99) * 1e6 for impl in impls}
    ratio = {m: ratio_summary(per_repeat, m) for m in ("p50_us", "cpu_s_per_1000")}
    ratio["p99_us"] = {impl: p99[impl] / p99[REFERENCE] if REFERENCE in p99 else None
                       for impl in impls}
    return {
        "repeats": repeats,
        "cycles_per_repeat": cycles,
        "cycles_per_block": block,
        "per_repeat": per_repeat,
        "median": {
            impl: {
                "p50_us": median_of(per_repeat[impl], "p50_us"),
                "p99_us": p99[impl],
                "cpu_s_per_1000": median_of(per_repeat[impl], "cpu_s_per_1000"),
                "pooled_p50_us": percentile(pooled[impl], 0.5) * 1e6,
            }
            for impl in impls
        },
        "ratio": ratio,
    }


def requests_per_cycle(
    pool: Pool, hosts: str, base: str, impls: Sequence[str], cycles: int
) -> dict[str, Any]:
    """Requests per uncontended cycle, counted by the server (``cons``) and by the client."""
    counted: dict[str, Any] = {}
    for impl, worker in zip(impls, pool.workers):
        worker.call("connect", impl=impl, hosts=hosts, path=f"{base}/count/{slug(impl)}")
        counted[impl] = worker.call("count", n=cycles)
        worker.call("disconnect")
    return {"cycles": cycles, "per_impl": counted}


# ---------------------------------------------------------------------- contended
def _analyse(sections: list[tuple[float, float, Optional[int], int]]) -> dict[str, Any]:
    """Exclusion check and hand-offs over all processes' sections (monotonic clock)."""
    ordered = sorted(sections)
    overlaps = 0
    token_inversions = 0
    handoffs = []
    for before, after in zip(ordered, ordered[1:]):
        if after[0] < before[1]:
            overlaps += 1
        if before[2] is not None and after[2] is not None and after[2] <= before[2]:
            token_inversions += 1
        if after[3] != before[3]:
            handoffs.append(after[0] - before[1])
    return {"overlaps": overlaps, "token_inversions": token_inversions, "handoffs": handoffs}


def contended(
    pool: Pool,
    hosts: str,
    base: str,
    impls: Sequence[str],
    counts: Sequence[int],
    repeats: int,
    duration: float,
    hold: float,
    progress: Callable[[str], None],
    count_at: int = 8,
) -> dict[str, Any]:
    """N processes (own sessions) contend on one lock for ``duration`` seconds each round.

    Before anything is timed, every implementation contends once, untimed, at the largest N,
    so that no timed round is the first in which the server runs an implementation's requests
    (Create2, GetData with a watch, the deletion notice: the server's warm-up sends none of
    them); without it, the implementations that ran first met that server in the first
    repeats.  The order turns by one each repeat (A B C, B C A, ...), so that none always
    runs first.  At N = ``count_at`` one extra, untimed round per implementation counts the
    requests by type on the client side.
    """
    results: dict[str, Any] = {}
    settle = 0.1  # the first instants, while contenders queue up, are left out of throughput

    def one_round(
        impl: str, n: int, label: str, count: bool = False, server_count: bool = False
    ) -> tuple[float, list[dict[str, Any]], Optional[list[int]]]:
        """Connect ``n`` workers, contend for ``duration`` s, disconnect.

        Returns the round's start, the workers' replies, and with ``server_count`` the
        packets each session sent, from the server (``None`` when a server did not say).
        """
        workers = pool.workers[:n]
        path = f"{base}/contended/{slug(impl)}-{n}-{label}"
        replies = pool.all(workers, "connect", impl=impl, hosts=hosts, path=path, warm=True)
        sessions = [r["session_id"] for r in replies]
        before = received_by_session(hosts) if server_count else {}
        start = time.monotonic() + 0.2
        replies = pool.all(workers, "contend", start=start, end=start + duration, hold=hold,
                           count=count)
        after = received_by_session(hosts) if server_count else {}
        pool.all(workers, "disconnect")
        requests = [after[s] - before[s] for s in sessions if s in after and s in before]
        return start, replies, requests if len(requests) == len(sessions) else None

    for impl in impls:
        one_round(impl, max(counts), "warm-up")
    order = list(impls)
    for n in counts:
        per_repeat: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
        for repeat in range(repeats):
            for impl in order:
                start, replies, requests = one_round(impl, n, str(repeat), server_count=True)
                end = start + duration
                sections = [
                    (entered, leaving, token, index)
                    for index, reply in enumerate(replies)
                    for entered, leaving, token in reply["sections"]
                ]
                analysis = _analyse(sections)
                inside = [s for s in sections if start + settle <= s[0] < end]
                per_repeat[impl].append({
                    "acquisitions": len(sections),
                    "throughput_per_s": len(inside) / (duration - settle),
                    "handoff_p50_us": percentile(analysis["handoffs"], 0.5) * 1e6,
                    "handoff_p99_us": percentile(analysis["handoffs"], 0.99) * 1e6,
                    "handoffs": len(analysis["handoffs"]),
                    "cpu_per_acquisition_us": (
                        sum(r["cpu_s"] for r in replies) / len(sections) * 1e6
                        if sections else None
                    ),
                    "overlaps": analysis["overlaps"],
                    "token_inversions": analysis["token_inversions"],
                    "requests_per_acquisition": (
                        sum(requests) / len(sections) if requests is not None and sections
                        else None
                    ),
                })
            order.append(order.pop(0))
            progress(f"contended N={n} repeat {repeat + 1}/{repeats}: " + ", ".join(
                f"{impl} {per_repeat[impl][-1]['throughput_per_s']:.0f}/s"
                for impl in impls))
        by_type: dict[str, Any] = {}
        if n == count_at:  # one more round each, untimed, counting requests by type
            for impl in impls:
                _start, replies, _requests = one_round(impl, n, "count", count=True)
                acquisitions = sum(len(r["sections"]) for r in replies)
                totals: dict[str, int] = {}
                for reply in replies:
                    for kind, number in reply["requests"].items():
                        totals[kind] = totals.get(kind, 0) + number
                by_type[impl] = {
                    "acquisitions": acquisitions,
                    "per_acquisition": {k: v / acquisitions for k, v in sorted(totals.items())},
                    "total_per_acquisition": sum(totals.values()) / acquisitions,
                }
        metrics = ("throughput_per_s", "handoff_p50_us", "handoff_p99_us",
                   "cpu_per_acquisition_us", "requests_per_acquisition")
        results[str(n)] = {
            "per_repeat": per_repeat,
            "median": {impl: {m: median_of(per_repeat[impl], m) for m in metrics}
                       for impl in impls},
            "ratio": {m: ratio_summary(per_repeat, m) for m in metrics[:4]},
            "overlaps": {impl: sum(r["overlaps"] for r in per_repeat[impl]) for impl in impls},
            "token_inversions": {
                impl: sum(r["token_inversions"] for r in per_repeat[impl]) for impl in impls
            },
            "requests_by_type": by_type,
        }
    return {"duration_s": duration, "hold_s": hold, "repeats": repeats, "by_n": results}


# ---------------------------------------------------------------------- scale
def scale(
    hosts: str,
    base: str,
    impls: Sequence[str],
    locks: int,
    waiters: int,
    sessions: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """10,000 locks held by one client; 1,000 waiters on one lock.  A fresh process each."""
    hold: dict[str, Any] = {}
    chain: dict[str, Any] = {}
    for impl in impls:
        path = f"{base}/scale-hold/{slug(impl)}"
        run_once(["scale-parents", "create", hosts, str(locks), path], 600)
        hold[impl] = run_once(["scale-hold", impl, hosts, str(locks), path], 600)
        run_once(["scale-parents", "remove", hosts, str(locks), path], 600)
        progress(f"scale: {impl} held {locks} locks, acquire {hold[impl]['acquire_s']:.1f}s")
    for impl in impls:
        chain[impl] = run_once(
            ["scale-waiters", impl, hosts, str(waiters), str(sessions),
             f"{base}/scale-waiters/{slug(impl)}"], 600)
        progress(f"scale: {impl} {waiters} waiters, "
                 f"{chain[impl]['watch_events']} watch events")
    return {"hold": hold, "waiters": chain}
