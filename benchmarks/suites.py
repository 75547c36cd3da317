"""The measurements.  Each returns plain data (dicts, lists, floats) for the table and JSON.

Ratios are always taken inside one repeat, between implementations that ran one after
another in that repeat (the order turning by one each repeat: A B C D, B C D A, ...), and
summarised by their median over repeats.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional

from .impls import REFERENCE
from .pool import Pool, run_once
from .server import received_by_session
from .worker import new_occupancy_file


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


def _measured(value: Any) -> bool:
    """A figure that was measured: a finite number (not ``None``, not NaN)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def turns(impls: Sequence[str]) -> Iterator[list[str]]:
    """The implementations' order for each round in turn: A B C, C B A, B C A, A C B, ...

    Each rotation, then the same backwards: every implementation takes every place, and each
    runs right before another as often as right after it, so a drift over a run, or what a
    round leaves to the next, does not favour one of them in their per-repeat ratios.
    """
    order = list(impls)
    while True:
        yield list(order)
        yield order[::-1]
        order.append(order.pop(0))


def ratio_summary(
    per_repeat: dict[str, list[dict[str, Any]]], metric: str, reference: str = REFERENCE
) -> dict[str, Optional[float]]:
    """Median over repeats of ``metric[impl] / metric[reference]`` within each repeat.

    A repeat in which either figure is missing or not finite (NaN: a percentile of nothing),
    or the reference's is 0, gives no ratio.
    """
    summary: dict[str, Optional[float]] = {}
    base = per_repeat.get(reference)
    for impl, repeats in per_repeat.items():
        if base is None:
            summary[impl] = None
            continue
        ratios = [
            mine[metric] / ref[metric]
            for mine, ref in zip(repeats, base)
            if _measured(mine.get(metric)) and _measured(ref.get(metric)) and ref[metric]
        ]
        summary[impl] = statistics.median(ratios) if ratios else None
    return summary


def median_of(repeats: list[dict[str, Any]], metric: str) -> Optional[float]:
    """The median of ``metric`` over repeats (``None`` if never measured; NaN is not)."""
    values = [r[metric] for r in repeats if _measured(r.get(metric))]
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
    orders = turns(impls)
    for repeat in range(repeats):
        latencies: dict[str, list[float]] = {impl: [] for impl in impls}
        cpu = dict.fromkeys(impls, 0.0)
        for done in range(0, cycles, block):
            for impl in next(orders):
                reply = workers[impl].call("cycles", n=min(block, cycles - done))
                latencies[impl] += reply["latencies"]
                cpu[impl] += reply["cpu"]
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
#: One critical section of a contended round: ``(called, entered, leaving, token, process)``:
#: ``acquire()`` called, it returned, ``release()`` about to be called (``time.monotonic()``,
#: system-wide on Linux), zklock's fencing token (None for the others), the worker's index.
Section = tuple[float, float, float, Optional[int], int]


def sections_of(replies: Sequence[dict[str, Any]]) -> list[Section]:
    """Every section of a round's ``contend`` replies, tagged with the worker's index."""
    return [
        (called, entered, leaving, token, index)
        for index, reply in enumerate(replies)
        for called, entered, leaving, token in reply["sections"]
    ]


def _analyse(
    sections: Sequence[Section], window: tuple[float, float] = (-math.inf, math.inf)
) -> dict[str, Any]:
    """Exclusion check and hand-offs over all processes' sections, in the order entered.

    For each two sections entered one after the other: an overlap if the second was entered
    before the first's release call; a token inversion if both have fencing tokens and the
    second's is not higher.  Between two processes (``pairs``), the second one's wait is a
    hand-off only if it had called ``acquire()`` before the first called ``release()`` (it
    was most likely queued and waiting: a call made just before the release may reach the
    server after it).  Otherwise the releaser found nobody waiting, and the gap would time
    the next holder's own acquire, not a hand-off; such pairs are counted, not timed.  Pairs
    are counted and timed only when the second section was entered within ``window`` (the
    round's timed span: not the ramp-up, nor the drain after it, when nobody queues again).
    """
    lowest, highest = window
    ordered = sorted(sections, key=lambda s: (s[1], s[2]))
    overlaps = 0
    token_inversions = 0
    pairs = 0
    handoffs = []
    for before, after in zip(ordered, ordered[1:]):
        if after[1] < before[2]:
            overlaps += 1
        if before[3] is not None and after[3] is not None and after[3] <= before[3]:
            token_inversions += 1
        if after[4] != before[4] and lowest <= after[1] < highest:
            pairs += 1
            if after[0] < before[2]:
                handoffs.append(after[1] - before[2])
    return {"overlaps": overlaps, "token_inversions": token_inversions, "pairs": pairs,
            "handoffs": handoffs}


def throughput(sections: Sequence[Section], start: float, end: float, settle: float) -> float:
    """Sections entered from ``settle`` s after ``start`` until ``end``, per second."""
    inside = sum(1 for s in sections if start + settle <= s[1] < end)
    return inside / (end - start - settle)


def _occupancy_overlaps(replies: Sequence[dict[str, Any]]) -> int:
    """Entries that found the round's shared occupancy counter taken, over all workers."""
    return sum(r.get("occupancy_overlaps") or 0 for r in replies)


def round_figures(
    replies: Sequence[dict[str, Any]],
    start: float,
    duration: float,
    settle: float,
    requests: Optional[list[int]] = None,
) -> dict[str, Any]:
    """The figures of one timed contended round, from its workers' ``contend`` replies."""
    sections = sections_of(replies)
    analysis = _analyse(sections, (start + settle, start + duration))
    handoffs = analysis["handoffs"]
    return {
        "acquisitions": len(sections),
        "throughput_per_s": throughput(sections, start, start + duration, settle),
        "handoff_p50_us": percentile(handoffs, 0.5) * 1e6 if handoffs else None,
        "handoff_p99_us": percentile(handoffs, 0.99) * 1e6 if handoffs else None,
        "handoffs": len(handoffs),
        "handoff_pairs": analysis["pairs"],
        "handoff_share": len(handoffs) / analysis["pairs"] if analysis["pairs"] else None,
        "cpu_per_acquisition_us": (
            sum(r["cpu_s"] for r in replies) / len(sections) * 1e6 if sections else None
        ),
        "overlaps": analysis["overlaps"],
        "token_inversions": analysis["token_inversions"],
        "occupancy_overlaps": _occupancy_overlaps(replies),
        "requests_per_acquisition": (
            sum(requests) / len(sections) if requests is not None and sections else None
        ),
    }


def exclusion_figures(replies: Sequence[dict[str, Any]]) -> dict[str, int]:
    """The three exclusion checks of one round (an untimed one too)."""
    sections = sections_of(replies)
    analysis = _analyse(sections)
    return {"acquisitions": len(sections), "overlaps": analysis["overlaps"],
            "token_inversions": analysis["token_inversions"],
            "occupancy_overlaps": _occupancy_overlaps(replies)}


#: Seconds each section of the contended suite's warm-up round is held: long enough that two
#: holders at once overlap in time.  With no hold, a lock that let two in (kazoo's semaphore
#: with two leases) showed no overlap in a review's runs; with 10 ms, it does in every round
#: (tests/integration/test_benchmark_suites.py).
EXCLUSION_HOLD = 0.01


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
    exclusion_hold: float = EXCLUSION_HOLD,
) -> dict[str, Any]:
    """N processes (own sessions) contend on one lock for ``duration`` seconds each round.

    Before anything is timed, every implementation contends once, untimed, at the largest N,
    so that no timed round is the first in which the server runs an implementation's requests
    (Create2, GetData with a watch, the deletion notice: the server's warm-up sends none of
    them); without it, the implementations that ran first met that server in the first
    repeats.  The order turns by one each repeat (A B C, B C A, ...), so that none always
    runs first.  At N = ``count_at`` one extra, untimed round per implementation counts the
    requests by type on the client side.

    The warm-up round holds each section ``exclusion_hold`` seconds: with no hold a section
    lasts microseconds, and a lock that let two processes in at once (kazoo's semaphore with
    two leases did so in a review) would almost never show it.  Every round, untimed ones
    too, has its own shared occupancy counter (:class:`benchmarks.worker.Occupancy`), raised
    and lowered by every section of every worker; the untimed rounds' exclusion checks are
    reported under ``untimed``.
    """
    results: dict[str, Any] = {}
    settle = 0.1  # the first instants, while contenders queue up, are left out of throughput
    untimed: dict[str, dict[str, int]] = {
        impl: {"rounds": 0, "acquisitions": 0, "overlaps": 0, "token_inversions": 0,
               "occupancy_overlaps": 0}
        for impl in impls
    }

    def one_round(
        impl: str, n: int, label: str, count: bool = False, server_count: bool = False,
        section_hold: float = hold,
    ) -> tuple[float, list[dict[str, Any]], Optional[list[int]]]:
        """Connect ``n`` workers, contend for ``duration`` s, disconnect.

        Returns the round's start, the workers' replies, and with ``server_count`` the
        packets each session sent, from the server (``None`` when a server did not say).
        """
        workers = pool.workers[:n]
        path = f"{base}/contended/{slug(impl)}-{n}-{label}"
        occupancy = new_occupancy_file()
        try:
            replies = pool.all(workers, "connect", impl=impl, hosts=hosts, path=path, warm=True,
                               occupancy=occupancy)
            sessions = [r["session_id"] for r in replies]
            before = received_by_session(hosts) if server_count else {}
            start = time.monotonic() + 0.2
            replies = pool.all(workers, "contend", start=start, end=start + duration,
                               hold=section_hold, count=count)
            after = received_by_session(hosts) if server_count else {}
            pool.all(workers, "disconnect")
        finally:
            with contextlib.suppress(OSError):
                os.unlink(occupancy)
        requests = [after[s] - before[s] for s in sessions if s in after and s in before]
        return start, replies, requests if len(requests) == len(sessions) else None

    def untimed_round(
        impl: str, n: int, label: str, count: bool = False, section_hold: float = hold
    ) -> list[dict[str, Any]]:
        _start, replies, _requests = one_round(impl, n, label, count=count,
                                               section_hold=section_hold)
        checked = exclusion_figures(replies)
        untimed[impl]["rounds"] += 1
        for key, value in checked.items():
            untimed[impl][key] += value
        return replies

    for impl in impls:
        untimed_round(impl, max(counts), "warm-up", section_hold=exclusion_hold)
    orders = turns(impls)
    for n in counts:
        per_repeat: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
        for repeat in range(repeats):
            for impl in next(orders):
                start, replies, requests = one_round(impl, n, str(repeat), server_count=True)
                per_repeat[impl].append(round_figures(replies, start, duration, settle,
                                                      requests))
            progress(f"contended N={n} repeat {repeat + 1}/{repeats}: " + ", ".join(
                f"{impl} {per_repeat[impl][-1]['throughput_per_s']:.0f}/s"
                for impl in impls))
        by_type: dict[str, Any] = {}
        if n == count_at:  # one more round each, untimed, counting requests by type
            for impl in impls:
                replies = untimed_round(impl, n, "count", count=True)
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
                   "cpu_per_acquisition_us", "requests_per_acquisition", "handoff_share")
        results[str(n)] = {
            "per_repeat": per_repeat,
            "median": {impl: {m: median_of(per_repeat[impl], m) for m in metrics}
                       for impl in impls},
            "ratio": {m: ratio_summary(per_repeat, m) for m in metrics[:4]},
            "handoffs": {
                impl: {"handoffs": sum(r["handoffs"] for r in per_repeat[impl]),
                       "pairs": sum(r["handoff_pairs"] for r in per_repeat[impl])}
                for impl in impls
            },
            **{check: {impl: sum(r[check] for r in per_repeat[impl]) for impl in impls}
               for check in ("overlaps", "token_inversions", "occupancy_overlaps")},
            "requests_by_type": by_type,
        }
    return {"duration_s": duration, "hold_s": hold, "exclusion_hold_s": exclusion_hold,
            "repeats": repeats, "by_n": results, "untimed": untimed}


# ---------------------------------------------------------------------- scale
# The scale figures compared with kazoo's, as medians of per-repeat ratios.
SCALE_HOLD_RATIOS = ("acquire_s", "acquire_cpu_s", "release_s", "peak_growth_mib")
SCALE_WAITERS_RATIOS = ("chain_s",)
# Counts that must be whole in every repeat: the merged figure is the worst repeat's.
_FEWEST = ("queued", "watching_at_start", "completed")
_MOST = ("watch_events", "watch_events_per_release", "recipe_wakeups")


def merge_runs(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One implementation's scale runs as one record for the table and the verdict.

    Timings and memory: the median over runs.  Counts a full run reaches (waiters queued,
    completed): the fewest of any run; counts that show a herd (watch events): the most;
    ``sampled_nodes_ok``: every run's; ``errors``: the first few of all runs.
    """
    merged: dict[str, Any] = {}
    for key, first in runs[0].items():
        values: list[Any] = [run.get(key) for run in runs]
        if key == "errors":
            merged[key] = [error for run in runs for error in run.get(key, [])][:3]
        elif key == "sampled_nodes_ok":
            merged[key] = all(values)
        elif key == "requests_by_type_per_handoff":
            names = sorted({name for run in runs for name in run.get(key, {})})
            merged[key] = {name: statistics.median(run.get(key, {}).get(name, 0.0) for run in runs)
                           for name in names}
        elif not all(_measured(value) for value in values):
            merged[key] = first  # a label (``None`` for kazoo's recipe wake-ups)
        elif key in _FEWEST:
            merged[key] = min(values)
        elif key in _MOST:
            merged[key] = max(values)
        elif isinstance(first, float):
            merged[key] = statistics.median(values)
        else:
            merged[key] = first  # a setting: locks, waiters, sessions
    return merged


def scale(
    hosts: str,
    base: str,
    impls: Sequence[str],
    locks: int,
    waiters: int,
    sessions: int,
    repeats: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """10,000 locks held by one client; 1,000 waiters on one lock.  A fresh process each.

    Every repeat runs each implementation once: the hold in the repeat's order (turning by
    one each repeat, A B C, B C A, ...) and the waiters in the reverse of it, so that no
    implementation always runs last.  Figures are medians over repeats; ratios, medians of
    per-repeat ratios to kazoo's.
    """
    hold: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
    chain: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
    orders = turns(impls)
    for repeat in range(repeats):
        order = next(orders)
        for impl in order:
            path = f"{base}/scale-hold/{repeat}-{slug(impl)}"
            run_once(["scale-parents", "create", hosts, str(locks), path], 600)
            hold[impl].append(run_once(["scale-hold", impl, hosts, str(locks), path], 600))
            run_once(["scale-parents", "remove", hosts, str(locks), path], 600)
            progress(f"scale {repeat + 1}/{repeats}: {impl} held {locks} locks, "
                     f"acquire {hold[impl][-1]['acquire_s']:.1f}s")
        for impl in reversed(order):
            chain[impl].append(run_once(
                ["scale-waiters", impl, hosts, str(waiters), str(sessions),
                 f"{base}/scale-waiters/{repeat}-{slug(impl)}"], 600))
            progress(f"scale {repeat + 1}/{repeats}: {impl} {waiters} waiters, "
                     f"{chain[impl][-1]['watch_events']} watch events")
    return {
        "repeats": repeats,
        "hold": {impl: merge_runs(runs) for impl, runs in hold.items()},
        "waiters": {impl: merge_runs(runs) for impl, runs in chain.items()},
        "ratio": {
            "hold": {metric: ratio_summary(hold, metric) for metric in SCALE_HOLD_RATIOS},
            "waiters": {metric: ratio_summary(chain, metric) for metric in SCALE_WAITERS_RATIOS},
        },
        "runs": {"hold": hold, "waiters": chain},
    }
