"""The benchmark suite's arithmetic on synthetic sections (no server, no timing thresholds).

Percentiles, ratios of per-repeat figures (NaN and None left out), the contended rounds'
exclusion checks and hand-off rule, the throughput window, the shared occupancy counter, and
the order of the scale suite.
"""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

import benchmarks.worker
from benchmarks import suites
from benchmarks.run import exclusion_failures
from benchmarks.worker import Occupancy, Worker, new_occupancy_file

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------- percentile, ratios
def test_percentile_is_nearest_rank_and_nan_for_nothing():
    values = [7.0, 1.0, 3.0, 10.0, 2.0, 5.0, 4.0, 9.0, 6.0, 8.0]
    assert suites.percentile(values, 0.5) == 5.0
    assert suites.percentile(values, 0.99) == 10.0
    assert suites.percentile(values, 0.9) == 9.0
    assert suites.percentile(values, 0.0) == 1.0
    assert suites.percentile([4.0], 0.99) == 4.0
    assert math.isnan(suites.percentile([], 0.5))


def repeats_of(*values: Optional[float]) -> list[dict[str, Any]]:
    return [{"m": v} for v in values]


def test_ratio_summary_is_the_median_of_per_repeat_ratios():
    per_repeat = {"kazoo": repeats_of(10.0, 20.0, 40.0), "zklock": repeats_of(5.0, 30.0, 20.0)}
    summary = suites.ratio_summary(per_repeat, "m")
    assert summary == {"kazoo": 1.0, "zklock": 0.5}  # ratios 0.5, 1.5, 0.5
    assert suites.ratio_summary({"zklock": repeats_of(1.0)}, "m") == {"zklock": None}


def test_a_repeat_without_a_figure_nan_none_or_zero_gives_no_ratio():
    nan = float("nan")
    per_repeat = {
        "kazoo": repeats_of(10.0, nan, 10.0, 0.0, None, 10.0),
        "zklock": repeats_of(20.0, 5.0, nan, 1.0, 1.0, None),
    }
    summary = suites.ratio_summary(per_repeat, "m")
    assert summary["zklock"] == 2.0  # only the first repeat has both figures
    assert summary["kazoo"] == 1.0
    assert not any(isinstance(v, float) and math.isnan(v) for v in summary.values())
    only_nan = {"kazoo": repeats_of(nan), "zklock": repeats_of(1.0)}
    assert suites.ratio_summary(only_nan, "m") == {"kazoo": None, "zklock": None}


def test_median_of_leaves_out_what_was_not_measured():
    assert suites.median_of(repeats_of(1.0, float("nan"), None, 3.0, 2.0), "m") == 2.0
    assert suites.median_of(repeats_of(float("nan"), None), "m") is None


# ---------------------------------------------------------------------- contended analysis
def section(called: float, entered: float, leaving: float, process: int,
            token: Optional[int] = None) -> suites.Section:
    return (called, entered, leaving, token, process)


def test_only_a_next_holder_already_waiting_makes_a_hand_off():
    sections = [
        section(0.0, 1.0, 2.0, process=0),
        section(1.5, 3.0, 4.0, process=1),   # called before 0's release call: hand-off 1.0
        section(2.5, 5.5, 6.0, process=0),   # called before 1's release call: hand-off 1.5
        section(6.5, 7.0, 8.0, process=1),   # called after 0's release: the lock was free
        section(8.5, 9.0, 10.0, process=1),  # the same process again: no pair
    ]
    analysis = suites._analyse(sections)
    assert analysis["pairs"] == 3
    assert analysis["handoffs"] == [1.0, 1.5]
    assert analysis["overlaps"] == 0 and analysis["token_inversions"] == 0
    # The order the sections come in does not matter: they are sorted by entry.
    assert suites._analyse(list(reversed(sections))) == analysis


def test_hand_offs_are_timed_only_into_sections_entered_within_the_timed_window():
    # The ramp-up before the window and the drain after it (nobody queues again) are left
    # out of the hand-offs, as out of the throughput; the exclusion checks cover them all.
    sections = [
        section(0.0, 1.0, 2.0, process=0),
        section(1.5, 3.0, 4.0, process=1),   # entered before the window
        section(2.5, 5.5, 6.0, process=0),   # inside: hand-off 1.5
        section(5.8, 7.0, 8.0, process=1),   # entered at the window's end: the drain
    ]
    analysis = suites._analyse(sections, (4.0, 7.0))
    assert analysis["pairs"] == 1 and analysis["handoffs"] == [1.5]
    assert suites._analyse(sections)["handoffs"] == [1.0, 1.5, 1.0]


def test_adjacent_sections_that_overlap_and_tokens_out_of_order_are_counted():
    sections = [
        section(0.0, 1.0, 3.0, process=0, token=5),
        section(0.5, 2.0, 4.0, process=1, token=6),  # entered before 0 released: overlap
        section(3.0, 5.0, 6.0, process=0, token=4),  # token lower than the previous: inversion
        section(5.5, 7.0, 8.0, process=1, token=7),
    ]
    analysis = suites._analyse(sections)
    assert analysis["overlaps"] == 1
    assert analysis["token_inversions"] == 1
    # Implementations without tokens (None) are never inversions.
    untokened = [(*s[:3], None, *s[4:]) for s in sections]
    assert suites._analyse(untokened)["token_inversions"] == 0


def test_throughput_counts_sections_entered_inside_the_window():
    start, end, settle = 100.0, 101.0, 0.1
    entries = [99.9, 100.05, 100.1, 100.5, 100.99, 101.0, 101.2]  # 3 inside [100.1, 101)
    sections = [section(e - 0.01, e, e + 0.001, process=i % 2) for i, e in enumerate(entries)]
    assert suites.throughput(sections, start, end, settle) == pytest.approx(3 / 0.9)


def reply(sections: list[tuple[float, float, float, Optional[int]]], occupied: int = 0,
          cpu: float = 0.01) -> dict[str, Any]:
    return {"sections": [list(s) for s in sections], "cpu_s": cpu, "requests": None,
            "occupancy_overlaps": occupied, "occupancy_highest": 2 if occupied else 1}


def test_round_figures_of_a_round_without_hand_offs_give_no_percentile_and_no_nan():
    # One process alone: no pair of processes, no hand-off.
    replies = [reply([(0.0, 0.1, 0.2, None), (0.2, 0.3, 0.4, None)]), reply([])]
    figures = suites.round_figures(replies, start=0.0, duration=1.0, settle=0.1)
    assert figures["handoffs"] == 0 and figures["handoff_pairs"] == 0
    assert figures["handoff_p50_us"] is None and figures["handoff_p99_us"] is None
    assert figures["handoff_share"] is None
    assert figures["throughput_per_s"] == pytest.approx(2 / 0.9)
    assert figures["acquisitions"] == 2
    # Such a repeat takes no part in the ratios of the others.
    with_kazoo = {"kazoo": [figures, {"handoff_p50_us": 100.0}],
                  "zklock": [{"handoff_p50_us": 50.0}, {"handoff_p50_us": 80.0}]}
    assert suites.ratio_summary(with_kazoo, "handoff_p50_us")["zklock"] == pytest.approx(0.8)


def test_round_figures_count_hand_offs_and_the_occupancy_overlaps_of_every_worker():
    replies = [
        reply([(0.0, 1.0, 2.0, None), (2.5, 5.5, 6.0, None)], occupied=1),
        reply([(1.5, 3.0, 4.0, None), (6.5, 7.0, 8.0, None)], occupied=2),
    ]
    figures = suites.round_figures(replies, start=0.0, duration=10.0, settle=0.1,
                                   requests=[10, 6])
    assert figures["handoffs"] == 2 and figures["handoff_pairs"] == 3
    assert figures["handoff_share"] == pytest.approx(2 / 3)
    assert figures["handoff_p50_us"] == pytest.approx(1.0e6)
    assert figures["handoff_p99_us"] == pytest.approx(1.5e6)
    assert figures["occupancy_overlaps"] == 3
    assert figures["requests_per_acquisition"] == 4.0
    assert figures["cpu_per_acquisition_us"] == pytest.approx(0.02 / 4 * 1e6)
    assert suites.exclusion_figures(replies) == {
        "acquisitions": 4, "overlaps": 0, "token_inversions": 0, "occupancy_overlaps": 3}


# ---------------------------------------------------------------------- occupancy counter
@pytest.fixture
def occupancy_file(tmp_path: Path) -> str:
    return new_occupancy_file(str(tmp_path))


def test_an_entry_while_another_holder_is_inside_is_an_overlap(occupancy_file):
    first, second = Occupancy(occupancy_file), Occupancy(occupancy_file)
    try:
        first.enter()
        first.leave()
        second.enter()
        assert (first.overlaps, second.overlaps) == (0, 0)
        first.enter()  # second is still inside
        assert first.overlaps == 1 and first.highest == 2
        first.leave()
        second.leave()
        second.enter()  # the count is back to 0: no overlap
        second.leave()
        assert second.overlaps == 0 and second.highest == 1
        assert Path(occupancy_file).read_bytes() == b"\0"
    finally:
        first.close()
        second.close()


def test_the_counter_is_shared_across_processes(occupancy_file):
    # Another process enters and exits without leaving: it is still "inside" for the counter.
    subprocess.run(
        [sys.executable, "-c", "import sys; from benchmarks.worker import Occupancy; "
         "Occupancy(sys.argv[1]).enter()", occupancy_file],
        cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    mine = Occupancy(occupancy_file)
    try:
        mine.enter()
        mine.leave()
        assert mine.overlaps == 1
    finally:
        mine.close()


class _NoLock:
    """A lock object that excludes nobody, with the benchmark's interface."""

    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass

    def token(self) -> Optional[int]:
        return None


def contend_alone(occupancy_file: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    # The worker's clock steps 1 ms per reading: ten sections' worth of readings, whatever
    # the machine's load (a real 10 ms window could pass before the first section).
    ticks = itertools.count()
    monkeypatch.setattr(benchmarks.worker, "_clock", lambda: next(ticks) * 0.001)
    worker = Worker()
    worker.lock = _NoLock()  # type: ignore[assignment]
    worker.occupancy = Occupancy(occupancy_file)
    try:
        return worker.contend(start=0.0, end=0.03, hold=0.0)
    finally:
        worker.disconnect()


def test_contend_raises_the_counter_in_every_section_and_reports_what_it_found(
    occupancy_file, monkeypatch
):
    alone = contend_alone(occupancy_file, monkeypatch)
    assert alone["sections"] and alone["occupancy_overlaps"] == 0
    for called, entered, leaving, token in alone["sections"]:
        assert called <= entered <= leaving and token is None
    intruder = Occupancy(occupancy_file)  # another holder, inside all along
    try:
        intruder.enter()
        crowded = contend_alone(occupancy_file, monkeypatch)
    finally:
        intruder.close()
    assert crowded["occupancy_overlaps"] == len(crowded["sections"]) > 0
    assert crowded["occupancy_highest"] == 2


# ---------------------------------------------------------------------- verdict, scale order
def test_occupancy_overlaps_and_untimed_rounds_fail_the_run():
    results = {"contended": {
        "by_n": {"2": {"overlaps": {"kazoo": 0}, "occupancy_overlaps": {"kazoo": 3},
                       "token_inversions": {"kazoo": 0}}},
        "untimed": {"kazoo": {"overlaps": 0, "occupancy_overlaps": 0, "token_inversions": 0},
                    "zklock": {"overlaps": 1, "occupancy_overlaps": 2, "token_inversions": 0}},
    }}
    assert exclusion_failures(results) == [
        "N=2 kazoo: 3 occupancy overlaps",
        "untimed rounds zklock: 1 overlaps",
        "untimed rounds zklock: 2 occupancy overlaps",
    ]


def test_the_scale_suite_turns_its_order_each_repeat_and_runs_the_waiters_reversed(monkeypatch):
    calls: list[tuple[str, str]] = []
    acquire_s = {"zklock": 2.0, "zklock+lean": 1.0, "kazoo": 4.0}

    def run_once(args: list[str], timeout: float) -> dict[str, Any]:
        calls.append((args[0], args[1]))
        if args[0] == "scale-parents":
            return {"parents": 10}
        repeat = sum(kind == "scale-hold" and impl == "kazoo" for kind, impl in calls)
        # kazoo is slower in the second repeat: each ratio is taken within its repeat.
        slower = 2.0 if repeat == 2 and args[1] == "kazoo" else 1.0
        return {"acquire_s": acquire_s[args[1]] * slower, "watch_events": 5, "chain_s": 1.0}

    monkeypatch.setattr(suites, "run_once", run_once)
    impls = ["zklock", "zklock+lean", "kazoo"]
    result = suites.scale("h:1", "/b", impls, 10, 5, 2, 3, lambda message: None)
    # Each rotation, then backwards (suites.turns); the waiters' runs in reverse.
    assert [impl for kind, impl in calls if kind == "scale-hold"] == [
        "zklock", "zklock+lean", "kazoo", "kazoo", "zklock+lean", "zklock",
        "zklock+lean", "kazoo", "zklock"]
    assert [impl for kind, impl in calls if kind == "scale-waiters"] == [
        "kazoo", "zklock+lean", "zklock", "zklock", "zklock+lean", "kazoo",
        "zklock", "kazoo", "zklock+lean"]
    assert list(result["hold"]) == list(result["waiters"]) == impls
    assert result["repeats"] == 3 and [len(runs) for runs in result["runs"]["hold"].values()] == [3] * 3
    # Ratios 0.5, 0.25, 0.5 for zklock: the median of the per-repeat ones, not of the medians.
    assert result["ratio"]["hold"]["acquire_s"] == {"zklock": 0.5, "zklock+lean": 0.25, "kazoo": 1.0}
    assert result["hold"]["kazoo"]["acquire_s"] == 4.0
    assert result["ratio"]["waiters"]["chain_s"]["zklock"] == 1.0


def test_merged_scale_runs_keep_the_worst_count_and_the_median_time():
    runs = [
        {"waiters": 100, "queued": 100, "completed": 100, "chain_s": 1.0, "watch_events": 100,
         "recipe_wakeups": 100, "errors": [], "requests_by_type_per_handoff": {"Delete": 1.0}},
        {"waiters": 100, "queued": 100, "completed": 98, "chain_s": 3.0, "watch_events": 130,
         "recipe_wakeups": 100, "errors": ["Traceback 1"],
         "requests_by_type_per_handoff": {"Delete": 1.0, "GetChildren": 1.0}},
        {"waiters": 100, "queued": 99, "completed": 100, "chain_s": 2.0, "watch_events": 100,
         "recipe_wakeups": 101, "errors": ["Traceback 2"],
         "requests_by_type_per_handoff": {"Delete": 1.0, "GetChildren": 3.0}},
    ]
    assert suites.merge_runs(runs) == {
        "waiters": 100, "queued": 99, "completed": 98, "chain_s": 2.0, "watch_events": 130,
        "recipe_wakeups": 101, "errors": ["Traceback 1", "Traceback 2"],
        "requests_by_type_per_handoff": {"Delete": 1.0, "GetChildren": 1.0},
    }
    kazoo = [{"recipe_wakeups": None, "locks": 10, "acquire_s": 1.0, "sampled_nodes_ok": True},
             {"recipe_wakeups": None, "locks": 10, "acquire_s": 2.0, "sampled_nodes_ok": False}]
    assert suites.merge_runs(kazoo) == {
        "recipe_wakeups": None, "locks": 10, "acquire_s": 1.5, "sampled_nodes_ok": False}
