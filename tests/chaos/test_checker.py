"""The chaos checker on synthetic histories: each rule must fire when, and only when, it should.

No ZooKeeper: these build the logs a run would leave, so a checker that cannot fail is caught
here rather than trusted in the chaos runs. The histories have the shape of a real run: the
suite's own settings and allowances, all workers ready at 0, the fault after the warm-up,
healed after as long as that fault took in a real run, and the stop file one cool-down later.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest

from .checker import check, count_overlaps, paused_windows, sections_of
from .history import (
    EXPIRE_SESSION,
    GC_PAUSE,
    KILL_FOLLOWER,
    KILL_LEADER,
    PAUSE_SERVER,
    Fault,
    History,
)
from .test_chaos import RECOVERY_ALLOWANCE, SETTINGS, STALL_ALLOWANCE

T = SETTINGS.session_timeout
STALL_BOUND = T + STALL_ALLOWANCE
#: How long each fault lasted, from its injection to its healing, in a run of the real suite.
LASTED = {KILL_LEADER: 3.5, KILL_FOLLOWER: 3.5, PAUSE_SERVER: 7.1, EXPIRE_SESSION: 0.01, GC_PAUSE: 6.0}


def fault(kind: str, target: str = "", victims: tuple[int, ...] = ()) -> Fault:
    """``kind`` struck after the warm-up (workers ready at 0), healed as in a real run."""
    return Fault(kind, SETTINGS.warm_up, SETTINGS.warm_up + LASTED[kind], target, victims)


def end_of(struck: Fault) -> float:
    """When the stop file appears: one cool-down after the healing."""
    return struck.healed_at + SETTINGS.cool_down


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

    def history(self, struck: Fault, *, stopped_at: Optional[float] = None,
                leftovers: Optional[list[str]] = None,
                exit_codes: Optional[dict[int, Optional[int]]] = None) -> History:
        workers = sorted({e["worker"] for e in self.events})
        return History(
            fault=struck,
            started_at=0.0,
            stopped_at=end_of(struck) if stopped_at is None else stopped_at,
            events=sorted(self.events, key=lambda e: e["at"]),
            store=list(self.store),
            counter=self.counter,
            leftovers=leftovers or [],
            exit_codes=exit_codes if exit_codes is not None else dict.fromkeys(workers, 0),
        )


def round_robin(recorder: Recorder, until: float, workers: int = 3, start_token: int = 100,
                step: float = 0.5, skip: tuple[float, float] = (0.0, 0.0), first_worker: int = 0) -> int:
    """Workers take turns every ``step`` seconds (not during ``skip``); returns the next token.

    Sections enter at 0.1, 0.6, 1.1, ... and last 0.2 s, so [x.35, x.55] and [x.85, x.05] are
    free for a section of a test's own.
    """
    token, at, turn = start_token, 0.1, 0
    while at + 0.2 < until:
        if not skip[0] <= at < skip[1]:
            recorder.section(first_worker + turn % workers, token, at, at + 0.2)
            token += 1
            turn += 1
        at += step
    return token


def leader_kill() -> Fault:
    return fault(KILL_LEADER, "zk1 (leader)")


def judge(history: History):
    return check(history, session_timeout=T, stall_allowance=STALL_ALLOWANCE,
                 recovery_allowance=RECOVERY_ALLOWANCE)


def reached_all(recorder: Recorder, at: float = SETTINGS.warm_up, workers: int = 3) -> None:
    for worker in range(workers):
        recorder.event("state", worker, at + 0.01, state="SUSPENDED")


def test_the_real_runs_leave_room_for_the_recovery_rule() -> None:
    # The rule judges the cool-down: shorter than the allowance, it could never fire.
    assert RECOVERY_ALLOWANCE <= SETTINGS.cool_down


# ------------------------------------------------------------------------------ clean runs
def test_a_clean_run_passes_with_its_figures() -> None:
    r = Recorder()
    f = leader_kill()  # injected at 3.0, healed at 6.5, stop file at 11.5
    round_robin(r, end_of(f), skip=(3.0, 4.0))  # the election: nobody acquires for a second
    reached_all(r)
    report = judge(r.history(f))
    assert report.ok, report.violations
    assert report.completed == 21 and report.overlaps == 0 and report.lost_updates == 0
    assert report.accepted_writes == 21 and report.refused_stale_writes == 0
    assert report.unavailability == pytest.approx(1.1)  # the section that entered at 4.1
    assert report.recovery == pytest.approx(0.1)  # the section that entered at 6.6
    assert report.slowest_recovered == 1 and report.slowest_recovery == pytest.approx(1.3)  # 7.6-7.8
    assert report.longest_stall == pytest.approx(2.5, abs=0.01)  # each worker across the election
    assert "kill-leader" in report.summary() and "handed over 0.10s after healing" in report.summary()


# ---------------------------------------------------------------------------- fenced rules
def test_a_lower_token_accepted_after_a_higher_one_fails() -> None:
    r = Recorder()
    round_robin(r, end_of(leader_kill()))
    reached_all(r)
    after = r.store[9]["end"]
    r.store.insert(10, {**r.store[9], "token": 1, "start": after, "end": after + 0.001})
    assert any("accepted after token" in v for v in judge(r.history(leader_kill())).violations)


def test_interleaved_writes_of_two_tokens_fail() -> None:
    r = Recorder()
    r.fenced(0, 100, 1.0)
    r.fenced(1, 101, 1.1)
    r.store.append({**r.store[0], "start": 1.2, "end": 1.201})  # token 100 again, accepted
    report = judge(r.history(leader_kill(), exit_codes={}))
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
    round_robin(r, end_of(leader_kill()))
    r.section(1, 999, 3.15, 3.25, counted=False, fence=False)  # inside worker 0's [3.1, 3.3]: a lost update
    reached_all(r)
    return r


def test_an_overlap_without_a_paused_worker_fails() -> None:
    report = judge(overlapping_run().history(leader_kill()))
    assert report.overlaps == 1 and report.lost_updates == 1
    assert any("overlap without a paused worker" in v for v in report.violations)
    assert any("lost updates" in v for v in report.violations)


def test_an_overlap_with_a_paused_worker_is_counted_not_failed() -> None:
    r = overlapping_run()
    r.event("pause", 1, 3.16, token=999)
    r.event("resume", 1, 3.2, token=999)
    report = judge(r.history(leader_kill()))
    assert report.overlaps == 1 and report.lost_updates == 1
    assert report.ok, report.violations


def test_a_refused_write_without_a_paused_worker_fails() -> None:
    r = Recorder()
    round_robin(r, end_of(leader_kill()))
    reached_all(r)
    r.fenced(2, 101, 10.0)  # stale: far higher tokens were accepted by then
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


# ----------------------------------------------------------------------------- recovery
def test_a_lock_stuck_after_the_fault_fails_though_no_stall_reaches_the_bound() -> None:
    # The review's case: the lock hands over until the fault and never again. No worker's
    # stall reaches T + STALL_ALLOWANCE in a run this short; the recovery rule must fail it.
    r = Recorder()
    f = leader_kill()
    round_robin(r, f.injected_at)
    reached_all(r)
    report = judge(r.history(f))
    assert report.unavailability is None and report.recovery is None and report.slowest_recovery is None
    assert report.longest_stall < STALL_BOUND
    assert not any("for" in v and "bound" in v for v in report.violations)
    assert "the lock was never acquired after the fault (injected at 3.000, run stopped at 11.500)" in (
        report.violations
    )
    assert sum("completed no critical section acquired after the fault was healed" in v
               for v in report.violations) == 3
    assert "handed over never after healing" in report.summary()


def test_a_lock_that_moved_during_the_fault_but_not_after_its_healing_fails() -> None:
    r = Recorder()
    f = leader_kill()
    round_robin(r, f.healed_at, skip=(3.0, 4.0))  # elected, handed over, then stuck at 6.5
    reached_all(r)
    report = judge(r.history(f))
    assert report.unavailability == pytest.approx(1.1) and report.recovery is None
    assert "the lock was not handed over after the fault was healed (at 6.500; run stopped 5.00s later)" in (
        report.violations
    )


def test_a_hand_over_later_than_the_allowance_after_healing_fails() -> None:
    r = Recorder()
    f = leader_kill()
    round_robin(r, end_of(f), skip=(3.0, f.healed_at + RECOVERY_ALLOWANCE + 0.2))  # again at 11.1
    reached_all(r)
    report = judge(r.history(f))
    assert report.recovery == pytest.approx(4.6)
    assert any("handed over again only 4.60s after the fault was healed" in v for v in report.violations)


def test_a_worker_left_out_after_the_healing_fails() -> None:
    r = Recorder()
    f = leader_kill()
    token = round_robin(r, f.healed_at)  # all three until the healing ...
    round_robin(r, end_of(f), workers=2, start_token=token, skip=(0.0, f.healed_at))  # ... then 0 and 1 only
    reached_all(r)
    report = judge(r.history(f))
    assert report.recovery == pytest.approx(0.1)
    assert report.longest_stall < STALL_BOUND
    assert report.violations == [
        "worker 2 completed no critical section acquired after the fault was healed "
        "(at 6.500; run stopped 5.00s later)"
    ]
    assert report.slowest_recovery is None and report.slowest_recovered == 2


def test_a_worker_back_later_than_the_allowance_fails_and_one_just_within_passes() -> None:
    f = leader_kill()
    for exit_at, ok in ((f.healed_at + RECOVERY_ALLOWANCE - 0.05, True),
                        (f.healed_at + RECOVERY_ALLOWANCE + 0.45, False)):
        r = Recorder()
        token = round_robin(r, f.healed_at)
        round_robin(r, end_of(f), workers=2, start_token=token, skip=(0.0, f.healed_at))
        r.section(2, 999, exit_at - 0.1, exit_at, fence=False)  # in a gap of the others' turns
        reached_all(r)
        report = judge(r.history(f))
        assert report.ok is ok, report.violations
        assert report.slowest_recovered == 2
        assert report.slowest_recovery == pytest.approx(exit_at - f.healed_at)
    assert report.violations == [
        "worker 2 completed its first critical section acquired after the healing only 4.45s "
        "after it (recovery allowance 4.00s)"
    ]


def test_a_section_begun_before_the_healing_is_no_recovery() -> None:
    # The gc-pause worker wakes at the healing inside its old section and writes: that is no
    # acquisition after the healing. Without a fresh section it has not recovered.
    report = judge(gc_run(refused=True, recovered=False))
    assert report.violations == [
        "worker 0 completed no critical section acquired after the fault was healed "
        "(at 9.000; run stopped 5.00s later)"
    ]


def test_a_worker_that_quit_before_the_stop_is_judged_by_its_exit_not_its_recovery() -> None:
    r = Recorder()
    f = leader_kill()
    token = round_robin(r, 5.0)
    r.event("stopping", 2, 5.05)  # crashed: its loop raised
    round_robin(r, end_of(f), workers=2, start_token=token, skip=(0.0, 5.0))
    reached_all(r)
    report = judge(r.history(f, exit_codes={0: 0, 1: 0, 2: 1}))
    assert report.violations == ["worker 2 did not exit cleanly (status 1)"]


def test_a_run_stopped_within_the_allowance_cannot_show_recovery_and_fails() -> None:
    r = Recorder()
    f = leader_kill()
    stop = f.healed_at + RECOVERY_ALLOWANCE - 1.0
    round_robin(r, stop)
    reached_all(r)
    report = judge(r.history(f, stopped_at=stop))
    assert report.violations == [
        "recovery not judged: the run stopped 3.00s after the fault was healed, less than the "
        "recovery allowance 4.00s (lengthen the cool-down)"
    ]


# ------------------------------------------------------------------------------- stalls
def pause_server() -> Fault:
    return fault(PAUSE_SERVER, "zk2 (follower, serving workers [2])")  # the longest run: 15.1 s


def test_a_worker_stalled_past_the_bound_fails() -> None:
    # Only the longest run (pause-server, 15.1 s) leaves room for a 13 s stall; this one ends
    # within the recovery allowance, so the stall rule alone fires.
    r = Recorder()
    f = pause_server()
    round_robin(r, end_of(f), workers=2)
    r.section(2, 900, 0.35, 0.45, fence=False)
    r.section(2, 901, 13.85, 13.95, fence=False)  # 13.5 s without progress > 13 s
    reached_all(r)
    report = judge(r.history(f))
    assert report.stalled_worker == 2 and report.longest_stall == pytest.approx(13.5)
    assert report.violations == [
        f"worker 2 completed no critical section for 13.50s (from 0.449 to 13.949; bound {STALL_BOUND:.2f}s)"
    ]


def test_time_frozen_by_the_nemesis_does_not_count_as_a_stall() -> None:
    r = Recorder()
    f = pause_server()
    round_robin(r, end_of(f), workers=2)
    r.section(2, 900, 0.35, 0.45, fence=False)
    r.event("pause", 2, 0.5, token=900)
    r.event("resume", 2, 8.0, token=900)
    r.section(2, 901, 13.85, 13.95, fence=False)
    reached_all(r)
    report = judge(r.history(f))
    assert report.ok, report.violations
    assert report.longest_stall == pytest.approx(6.0)


def test_a_worker_that_never_progressed_fails() -> None:
    r = Recorder()
    f = pause_server()
    round_robin(r, end_of(f), workers=2)
    r.event("ready", 2, 0.0)
    reached_all(r)
    report = judge(r.history(f, exit_codes={0: 0, 1: 0, 2: 0}))
    assert any("worker 2 completed no critical section for 15.10s" in v for v in report.violations)
    assert any("worker 2 completed no critical section acquired after" in v for v in report.violations)


# ------------------------------------------------------------------- leftovers and exits
def test_lock_nodes_left_after_the_run_fail() -> None:
    r = Recorder()
    round_robin(r, end_of(leader_kill()))
    reached_all(r)
    report = judge(r.history(leader_kill(), leftovers=["_c_x-lock-0000000007"]))
    assert any("lock nodes left" in v for v in report.violations)


def test_a_worker_that_did_not_exit_cleanly_fails() -> None:
    r = Recorder()
    round_robin(r, end_of(leader_kill()))
    reached_all(r)
    report = judge(r.history(leader_kill(), exit_codes={0: 0, 1: None, 2: 1}))
    assert [v for v in report.violations if "did not exit" in v] == [
        "worker 1 did not exit cleanly (status None)", "worker 2 did not exit cleanly (status 1)"
    ]


# ---------------------------------------------------------------------- the fault must bite
def test_a_fault_that_reached_none_of_its_victims_fails() -> None:
    r = Recorder()
    f = fault(EXPIRE_SESSION, "worker-1", (1,))  # injected at 3.0, healed at 3.01
    round_robin(r, end_of(f))
    r.event("state", 1, 2.0, state="SUSPENDED")  # before the fault: does not count
    report = judge(r.history(f))
    assert any("workers [1] never lost" in v for v in report.violations)
    r.event("state", 1, end_of(f) + 0.5, state="LOST")  # its own client.stop(), after the stop file
    assert not judge(r.history(f)).ok
    r.event("state", 1, 3.02, state="LOST")
    assert judge(r.history(f)).ok


def test_a_leader_kill_nobody_noticed_fails_but_a_follower_serving_nobody_may_pass() -> None:
    r = Recorder()
    round_robin(r, end_of(leader_kill()))
    assert any("no worker's client noticed" in v for v in judge(r.history(leader_kill())).violations)
    assert judge(r.history(fault(KILL_FOLLOWER, "zk2 (follower of workers [])"))).ok


def gc_run(*, refused: bool, recovered: bool = True) -> History:
    """Worker 0 freezes in its section (token 100) while 1 and 2 go on; then it writes.

    As in the real run: frozen at 3.0 just after its last check, the lock moves on when its
    session expires (~T later), it is continued at 9.0 and writes with its stale token; then,
    if ``recovered``, it acquires again like the others.
    """
    f = fault(GC_PAUSE, "worker-0", (0,))
    r = Recorder()
    round_robin(r, 2.85, workers=2, start_token=90, first_worker=1)  # tokens 90 .. 95, last at 2.6
    r.event("enter", 0, 2.9, token=100)
    r.fenced(0, 100, 2.91)
    r.event("pause", 0, f.injected_at, token=100)
    next_token = round_robin(r, end_of(f), workers=2, start_token=101, skip=(0.0, 7.05), first_worker=1)
    r.event("resume", 0, f.healed_at, token=100)
    r.fenced(0, 100 if refused else next_token + 1, f.healed_at + 0.05)
    r.event("write", 0, f.healed_at + 0.06, token=100, read=0, accepted=refused is False)
    r.event("exit", 0, f.healed_at + 0.07, token=100)
    if recovered:
        r.section(0, 999, f.healed_at + 0.35, f.healed_at + 0.45, fence=False)
    return r.history(f)


def test_gc_pause_passes_when_the_stale_write_is_refused() -> None:
    report = judge(gc_run(refused=True))
    assert report.ok, report.violations
    assert report.refused_stale_writes == 1 and report.overlaps >= 1
    assert report.unavailability == pytest.approx(7.1 - 3.0, abs=0.01)
    # worker 0 is back at 9.45, before worker 2's turn (9.6 to 9.8) comes round
    assert report.slowest_recovered == 2 and report.slowest_recovery == pytest.approx(0.8)


def test_gc_pause_fails_when_no_stale_write_was_refused() -> None:
    report = judge(gc_run(refused=False))
    assert any("stale write was not refused" in v for v in report.violations)


def test_gc_pause_fails_when_no_worker_paused() -> None:
    r = Recorder()
    f = fault(GC_PAUSE, "worker-0", (0,))
    round_robin(r, end_of(f))
    report = judge(r.history(f))
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
    report = judge(r.history(history.fault))
    assert any("overlap without a paused worker: worker 1 (token 500)" in v for v in report.violations)


def test_gc_pause_fails_a_refused_write_of_a_worker_never_paused() -> None:
    history = gc_run(refused=True)
    r = Recorder()
    r.events, r.store, r.counter = list(history.events), list(history.store), history.counter
    r.fenced(2, 101, 11.0, accepted=False)  # worker 2 was never frozen
    report = judge(r.history(history.fault))
    assert any("stale writes refused without a paused worker" in v for v in report.violations)
