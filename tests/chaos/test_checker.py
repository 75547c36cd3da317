"""The chaos checker on synthetic histories: each rule must fire when, and only when, it should.

No ZooKeeper: these build the logs a run would leave, so a checker that cannot fail is caught
here rather than trusted in the chaos runs.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest

from .checker import check, count_overlaps, paused_windows, sections_of
from .history import EXPIRE_SESSION, GC_PAUSE, KILL_FOLLOWER, KILL_LEADER, Fault, History

T = 4.0  # session timeout
ALLOWANCE = 5.0  # bound on a stall: T + ALLOWANCE = 9 s


class Recorder:
    """Builds one run's worker events and fenced-store records by hand."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.store: list[dict[str, Any]] = []
        self.counter = 0

    def event(self, kind: str, worker: int, at: float, **fields: Any) -> None:
        self.events.append({"event": kind, "worker": worker, "at": at, **fields})

    def fenced(self, worker: int, token: int, at: float, *, accepted: Optional[bool] = None) -> None:
        highest = max((r["token"] for r in self.store if r["accepted"]), default=0)
        ok = token >= highest if accepted is None else accepted
        self.store.append({"token": token, "worker": worker, "part": "commit", "accepted": ok,
                           "highest": highest, "start": at, "end": at + 0.001})

    def section(self, worker: int, token: int, enter: float, exit: float, *, counted: bool = True,
                fence: bool = True) -> None:
        """A complete critical section that wrote the counter (and the fenced store)."""
        self.event("enter", worker, enter, token=token)
        if fence:
            self.fenced(worker, token, enter + 0.001)
        self.event("write", worker, exit - 0.001, token=token, read=self.counter, accepted=True)
        if counted:
            self.counter += 1
        self.event("exit", worker, exit, token=token)

    def history(self, fault: Fault, *, stopped_at: float = 20.0, leftovers: Optional[list[str]] = None,
                exit_codes: Optional[dict[int, Optional[int]]] = None) -> History:
        workers = sorted({e["worker"] for e in self.events})
        return History(
            fault=fault,
            started_at=0.0,
            stopped_at=stopped_at,
            events=sorted(self.events, key=lambda e: e["at"]),
            store=list(self.store),
            counter=self.counter,
            leftovers=leftovers or [],
            exit_codes=exit_codes if exit_codes is not None else dict.fromkeys(workers, 0),
        )


def round_robin(recorder: Recorder, workers: int = 3, until: float = 20.0, start_token: int = 100,
                step: float = 0.5, skip: tuple[float, float] = (0.0, 0.0), first_worker: int = 0) -> int:
    """Workers take turns every ``step`` seconds (not during ``skip``); returns the next token."""
    token, at, turn = start_token, 0.1, 0
    while at + 0.2 < until:
        if not skip[0] <= at < skip[1]:
            recorder.section(first_worker + turn % workers, token, at, at + 0.2)
            token += 1
            turn += 1
        at += step
    return token


def leader_kill(at: float = 5.0) -> Fault:
    return Fault(KILL_LEADER, at, at + 3.0, "zk1 (leader)")


def judge(history: History):
    return check(history, session_timeout=T, recovery_allowance=ALLOWANCE)


def reached_all(recorder: Recorder, at: float, workers: int = 3) -> None:
    for worker in range(workers):
        recorder.event("state", worker, at + 0.01, state="SUSPENDED")


# ------------------------------------------------------------------------------ clean runs
def test_a_clean_run_passes_with_its_figures() -> None:
    r = Recorder()
    round_robin(r)
    reached_all(r, 5.0)
    report = judge(r.history(leader_kill()))
    assert report.ok, report.violations
    assert report.completed == 40 and report.overlaps == 0 and report.lost_updates == 0
    assert report.accepted_writes == 40 and report.refused_stale_writes == 0
    assert report.unavailability == pytest.approx(0.1)  # the section that entered at 5.1
    assert report.longest_stall == pytest.approx(1.5, abs=0.01)  # each worker's turn every 1.5 s
    assert "kill-leader" in report.summary()


# ---------------------------------------------------------------------------- fenced rules
def test_a_lower_token_accepted_after_a_higher_one_fails() -> None:
    r = Recorder()
    round_robin(r)
    reached_all(r, 5.0)
    after = r.store[9]["end"]
    r.store.insert(10, {**r.store[9], "token": 1, "start": after, "end": after + 0.001})
    assert any("accepted after token" in v for v in judge(r.history(leader_kill())).violations)


def test_interleaved_writes_of_two_tokens_fail() -> None:
    r = Recorder()
    r.fenced(0, 100, 1.0)
    r.fenced(1, 101, 1.1)
    r.store.append({**r.store[0], "start": 1.2, "end": 1.201})  # token 100 again, accepted
    report = judge(r.history(leader_kill(), stopped_at=2.0, exit_codes={}))
    assert any("token 100 (worker 0) accepted after token 101" in v for v in report.violations)


def test_fenced_writes_overlapping_in_time_fail() -> None:
    r = Recorder()
    r.fenced(0, 100, 1.0)
    r.store.append({**r.store[0], "worker": 1, "token": 101, "start": 1.0005, "end": 1.002})
    report = judge(r.history(leader_kill(), exit_codes={}))
    assert any("fenced writes overlap" in v for v in report.violations)


def test_one_token_from_two_workers_fails() -> None:
    r = Recorder()
    r.fenced(0, 100, 1.0)
    r.fenced(1, 100, 1.1)
    report = judge(r.history(leader_kill(), exit_codes={}))
    assert any("written by workers 0 and 1" in v for v in report.violations)


def test_a_store_refusing_a_current_token_fails() -> None:
    r = Recorder()
    r.fenced(0, 100, 1.0)
    r.fenced(1, 101, 1.1, accepted=False)
    report = judge(r.history(leader_kill(), exit_codes={}))
    assert any("not lower than any accepted" in v for v in report.violations)


# -------------------------------------------------------------------------- unfenced rules
def overlapping_run() -> Recorder:
    r = Recorder()
    round_robin(r, until=10.0)
    r.section(1, 999, 3.15, 3.25, counted=False, fence=False)  # inside worker 0's [3.1, 3.3]: a lost update
    reached_all(r, 5.0)
    return r


def test_an_overlap_without_a_paused_worker_fails() -> None:
    report = judge(overlapping_run().history(leader_kill(), stopped_at=10.0))
    assert report.overlaps == 1 and report.lost_updates == 1
    assert any("overlap without a paused worker" in v for v in report.violations)
    assert any("lost updates" in v for v in report.violations)


def test_an_overlap_with_a_paused_worker_is_counted_not_failed() -> None:
    r = overlapping_run()
    r.event("pause", 1, 3.16, token=999)
    r.event("resume", 1, 3.2, token=999)
    report = judge(r.history(leader_kill(), stopped_at=10.0))
    assert report.overlaps == 1 and report.lost_updates == 1
    assert report.ok, report.violations


def test_a_refused_write_without_a_paused_worker_fails() -> None:
    r = Recorder()
    round_robin(r)
    reached_all(r, 5.0)
    r.fenced(2, 101, 12.0)  # stale: far higher tokens were accepted by then
    report = judge(r.history(leader_kill()))
    assert report.refused_stale_writes == 1
    assert any("stale writes refused without a paused worker" in v for v in report.violations)


def test_sections_and_overlaps_are_paired_per_worker() -> None:
    r = Recorder()
    r.section(0, 1, 1.0, 2.0)
    r.section(1, 2, 2.0, 3.0)  # touching is not overlapping
    r.event("enter", 2, 2.5, token=3)  # never left: still inside at the end
    sections = sections_of(sorted(r.events, key=lambda e: e["at"]))
    assert [(s.worker, s.token) for s in sections] == [(0, 1), (1, 2), (2, 3)]
    assert sections[2].exit == float("inf")
    assert [(a.token, b.token) for a, b in count_overlaps(sections)] == [(2, 3)]


# ----------------------------------------------------------------------------- liveness
def test_a_worker_stalled_past_the_bound_fails() -> None:
    r = Recorder()
    round_robin(r, workers=2, start_token=100)
    r.section(2, 900, 0.35, 0.45, fence=False)
    r.section(2, 901, 10.35, 10.45, fence=False)  # 10 s without progress > T + ALLOWANCE = 9 s
    r.section(2, 902, 19.35, 19.45, fence=False)
    reached_all(r, 5.0)
    report = judge(r.history(leader_kill()))
    assert report.stalled_worker == 2 and report.longest_stall == pytest.approx(10.0)
    assert any("worker 2 completed no critical section" in v for v in report.violations)


def test_time_frozen_by_the_nemesis_does_not_count_as_a_stall() -> None:
    r = Recorder()
    round_robin(r, workers=2)
    r.section(2, 900, 0.35, 0.45, fence=False)
    r.event("pause", 2, 0.5, token=900)
    r.event("resume", 2, 8.0, token=900)
    r.section(2, 901, 10.35, 10.45, fence=False)
    r.section(2, 902, 19.35, 19.45, fence=False)
    reached_all(r, 5.0)
    report = judge(r.history(leader_kill()))
    assert not any("worker 2" in v for v in report.violations), report.violations


def test_a_worker_that_never_progressed_fails() -> None:
    r = Recorder()
    round_robin(r, workers=2)
    r.event("ready", 2, 0.0)
    reached_all(r, 5.0)
    report = judge(r.history(leader_kill(), exit_codes={0: 0, 1: 0, 2: 0}))
    assert any("worker 2 completed no critical section for 20.00s" in v for v in report.violations)


# ------------------------------------------------------------------- leftovers and exits
def test_lock_nodes_left_after_the_run_fail() -> None:
    r = Recorder()
    round_robin(r)
    reached_all(r, 5.0)
    report = judge(r.history(leader_kill(), leftovers=["_c_x-lock-0000000007"]))
    assert any("lock nodes left" in v for v in report.violations)


def test_a_worker_that_did_not_exit_cleanly_fails() -> None:
    r = Recorder()
    round_robin(r)
    reached_all(r, 5.0)
    report = judge(r.history(leader_kill(), exit_codes={0: 0, 1: None, 2: 1}))
    assert [v for v in report.violations if "did not exit" in v] == [
        "worker 1 did not exit cleanly (status None)", "worker 2 did not exit cleanly (status 1)"
    ]


# ---------------------------------------------------------------------- the fault must bite
def test_a_fault_that_reached_none_of_its_victims_fails() -> None:
    r = Recorder()
    round_robin(r)
    r.event("state", 1, 4.0, state="SUSPENDED")  # before the fault: does not count
    report = judge(r.history(Fault(EXPIRE_SESSION, 5.0, 5.01, "worker-1", (1,))))
    assert any("workers [1] never lost" in v for v in report.violations)
    r.event("state", 1, 20.5, state="LOST")  # its own client.stop(), after the stop file
    assert not judge(r.history(Fault(EXPIRE_SESSION, 5.0, 5.01, "worker-1", (1,)))).ok
    r.event("state", 1, 5.02, state="LOST")
    assert judge(r.history(Fault(EXPIRE_SESSION, 5.0, 5.01, "worker-1", (1,)))).ok


def test_a_leader_kill_nobody_noticed_fails_but_a_follower_serving_nobody_may_pass() -> None:
    r = Recorder()
    round_robin(r)
    assert any("no worker's client noticed" in v for v in judge(r.history(leader_kill())).violations)
    assert judge(r.history(Fault(KILL_FOLLOWER, 5.0, 8.0, "zk2 (follower of workers [])"))).ok


def gc_run(*, refused: bool) -> History:
    """Worker 0 freezes in its section (token 100) while 1 and 2 go on; then it writes."""
    r = Recorder()
    r.event("enter", 0, 1.0, token=100)
    r.fenced(0, 100, 1.01)
    r.event("pause", 0, 1.1, token=100)
    next_token = round_robin(r, workers=2, until=12.0, start_token=101, skip=(0.0, 5.5), first_worker=1)
    r.event("resume", 0, 8.0, token=100)
    r.fenced(0, 100 if refused else next_token + 1, 8.05)
    r.event("write", 0, 8.06, token=100, read=0, accepted=refused is False)
    r.event("exit", 0, 8.07, token=100)
    return r.history(Fault(GC_PAUSE, 1.1, 8.0, "worker-0", (0,)), stopped_at=12.0)


def test_gc_pause_passes_when_the_stale_write_is_refused() -> None:
    report = judge(gc_run(refused=True))
    assert report.ok, report.violations
    assert report.refused_stale_writes == 1 and report.overlaps >= 1
    assert report.unavailability == pytest.approx(5.6 - 1.1, abs=0.01)


def test_gc_pause_fails_when_no_stale_write_was_refused() -> None:
    report = judge(gc_run(refused=False))
    assert any("stale write was not refused" in v for v in report.violations)


def test_gc_pause_fails_when_no_worker_paused() -> None:
    r = Recorder()
    round_robin(r)
    report = judge(r.history(Fault(GC_PAUSE, 5.0, 12.0, "worker-0", (0,))))
    assert any("no worker paused" in v for v in report.violations)


def test_paused_windows_end_at_the_run_end_when_never_resumed() -> None:
    events = [{"event": "pause", "worker": 3, "at": 2.0}, {"event": "pause", "worker": 1, "at": 1.0},
              {"event": "resume", "worker": 1, "at": 1.5}]
    assert paused_windows(events, until=9.0) == {1: [(1.0, 1.5)], 3: [(2.0, 9.0)]}


def test_gc_pause_still_fails_an_overlap_of_two_workers_never_paused() -> None:
    # The paused worker's stale section may overlap others; two workers that were never
    # frozen overlapping is the lock's fault whatever else happened in the run.
    history = gc_run(refused=True)
    r = Recorder()
    r.events, r.store, r.counter = list(history.events), list(history.store), history.counter
    r.section(1, 500, 10.35, 10.45)
    r.section(2, 501, 10.38, 10.48, counted=False)  # inside worker 1's section: a lost update
    report = judge(r.history(history.fault, stopped_at=12.0))
    assert any("overlap without a paused worker: worker 1 (token 500)" in v for v in report.violations)


def test_gc_pause_fails_a_refused_write_of_a_worker_never_paused() -> None:
    history = gc_run(refused=True)
    r = Recorder()
    r.events, r.store, r.counter = list(history.events), list(history.store), history.counter
    r.fenced(2, 101, 11.0, accepted=False)  # worker 2 was never frozen
    report = judge(r.history(history.fault, stopped_at=12.0))
    assert any("stale writes refused without a paused worker" in v for v in report.violations)
