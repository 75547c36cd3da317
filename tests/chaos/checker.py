"""The checker: reads a run's history, counts what happened, and lists every violation.

A run fails on:

* **fenced safety**: an accepted fenced write with a lower token than one accepted before it
  (which is also what two holders' writes interleaving looks like), two accepted writes whose
  decisions overlap in time, one token accepted from two workers, or a refusal of a token that
  was not stale (a store that refuses everything would otherwise pass);
* **unfenced safety**: two workers' critical sections overlapping in time when neither
  worker was paused by the nemesis during its section, the counter short of the number of
  writes (a lost update) with no such paused overlap to explain it, or a fenced write
  refused from a worker that was never paused (only a stale holder is refused);
* **recovery**: once the fault is healed, the lock not handed over again (no acquire
  returned) within the recovery allowance, or a worker still alive that did not complete a
  critical section acquired after the healing within that allowance; a lock never acquired
  at all after the fault; or a run that stopped sooner after the healing than the allowance
  (it could not be judged);
* **stalls**: a worker that completed no critical section for longer than the session
  timeout plus the stall allowance (time it spent frozen by the nemesis not counted);
* **leftovers**: children of the lock path once every worker has exited;
* **a worker that did not exit cleanly** (non-zero status, or it had to be killed);
* **a fault that did not bite**: a worker the fault was aimed at whose client never saw its
  connection or session go after the fault (after a leader kill, any worker: followers drop
  their clients while they elect); in a ``gc-pause`` run, no worker paused, or no stale write
  of the paused worker refused by the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

from .history import GC_PAUSE, KILL_LEADER, History

#: kazoo states a client reports when it loses its connection (SUSPENDED) or session (LOST).
_DISCONNECTED = ("SUSPENDED", "LOST")


@dataclass(frozen=True)
class Section:
    """One critical section of one worker: from acquire returning to just before release."""

    worker: int
    token: int
    enter: float
    exit: float
    wrote: bool  # it reached the counter write (it was not abandoned on a failed check)


@dataclass
class Report:
    """The figures of one run and the violations found in it."""

    kind: str
    target: str
    completed: int = 0  # critical sections that wrote
    abandoned: int = 0  # critical sections left on a failed lease check
    overlaps: int = 0  # pairs of overlapping critical sections of different workers
    lost_updates: int = 0
    accepted_writes: int = 0
    refused_stale_writes: int = 0
    unavailability: Optional[float] = None  # fault -> next acquisition by anyone
    fault_lasted: float = 0.0  # injection -> healing
    recovery: Optional[float] = None  # healing -> next acquisition by anyone
    # healing -> the last alive worker's first completed section acquired after it (None: some
    # worker completed none)
    slowest_recovery: Optional[float] = None
    slowest_recovered: Optional[int] = None  # that worker (or one that never recovered)
    longest_stall: float = 0.0  # longest time a worker completed nothing (frozen time excluded)
    stalled_worker: Optional[int] = None
    errors: dict[str, int] = field(default_factory=dict)  # "where:Error" -> count
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        unavailable = "none" if self.unavailability is None else f"{self.unavailability:.2f}s"
        recovery = "never" if self.recovery is None else f"{self.recovery:.2f}s"
        slowest = "never" if self.slowest_recovery is None else f"{self.slowest_recovery:.2f}s"
        errors = ", ".join(f"{name} x{count}" for name, count in sorted(self.errors.items())) or "none"
        return (
            f"CHAOS {self.kind} ({self.target}): sections {self.completed} "
            f"(abandoned {self.abandoned}), overlaps {self.overlaps}, lost updates "
            f"{self.lost_updates}, fenced writes accepted {self.accepted_writes} / refused stale "
            f"{self.refused_stale_writes}, fault healed after {self.fault_lasted:.2f}s, "
            f"unavailable after fault {unavailable}, handed over "
            f"{recovery} after healing, every worker through a section {slowest} after healing "
            f"(worker {self.slowest_recovered}), longest stall {self.longest_stall:.2f}s "
            f"(worker {self.stalled_worker}); errors: {errors}"
        )


def sections_of(events: Iterable[dict[str, Any]]) -> list[Section]:
    """Pair each worker's ``enter`` with its next ``exit`` (an unclosed one ends at +inf)."""
    open_: dict[int, dict[str, Any]] = {}
    wrote: dict[int, bool] = {}
    sections: list[Section] = []
    for event in events:
        worker, kind = event["worker"], event["event"]
        if kind == "enter":
            open_[worker] = event
            wrote[worker] = False
        elif kind == "write" and worker in open_:
            wrote[worker] = True
        elif kind == "exit" and worker in open_:
            entered = open_.pop(worker)
            sections.append(Section(worker, entered["token"], entered["at"], event["at"], wrote[worker]))
    for worker, entered in open_.items():  # killed inside: it may still have been writing
        sections.append(Section(worker, entered["token"], entered["at"], float("inf"), wrote[worker]))
    return sorted(sections, key=lambda section: section.enter)


def paused_windows(events: Iterable[dict[str, Any]], until: float) -> dict[int, list[tuple[float, float]]]:
    """Each worker's frozen intervals, from its ``pause`` to its ``resume`` (or ``until``)."""
    windows: dict[int, list[tuple[float, float]]] = defaultdict(list)
    paused: dict[int, float] = {}
    for event in events:
        if event["event"] == "pause":
            paused[event["worker"]] = event["at"]
        elif event["event"] == "resume" and event["worker"] in paused:
            windows[event["worker"]].append((paused.pop(event["worker"]), event["at"]))
    for worker, since in paused.items():
        windows[worker].append((since, until))
    return dict(windows)


def _paused_in(section: Section, frozen: dict[int, list[tuple[float, float]]]) -> bool:
    """True if the nemesis froze ``section``'s worker while it was inside the section."""
    return any(start < section.exit and end > section.enter for start, end in frozen.get(section.worker, ()))


def count_overlaps(sections: list[Section]) -> list[tuple[Section, Section]]:
    """Pairs of critical sections of different workers that overlap in time."""
    pairs = []
    for i, first in enumerate(sections):  # sorted by enter
        for second in sections[i + 1 :]:
            if second.enter >= first.exit:
                break
            if second.worker != first.worker:
                pairs.append((first, second))
    return pairs


def check(
    history: History, *, session_timeout: float, stall_allowance: float, recovery_allowance: float
) -> Report:
    """Judge one run; the report lists every violation (an empty list is a pass).

    ``recovery_allowance`` bounds, from the fault's healing, the next acquisition and every
    alive worker's first completed section acquired after it; ``session_timeout +
    stall_allowance`` bounds any worker's time without progress over the whole run.
    """
    fault = history.fault
    report = Report(kind=fault.kind, target=fault.target)
    events = history.events
    sections = sections_of(events)
    frozen = paused_windows(events, history.stopped_at)
    writes = [event for event in events if event["event"] == "write"]

    report.completed = sum(section.wrote for section in sections)
    report.abandoned = sum(not section.wrote and section.exit != float("inf") for section in sections)
    for event in events:
        if event["event"] == "error":
            key = f"{event['where']}:{event['error']}"
            report.errors[key] = report.errors.get(key, 0) + 1

    _check_fenced(history.store, report)
    overlaps = count_overlaps(sections)
    report.overlaps = len(overlaps)
    report.lost_updates = len(writes) - history.counter
    # Only a worker frozen inside its own section may wake up stale and overlap the next
    # holder: every other overlap, and what it would explain, is the lock's fault.
    unexplained = [
        pair for pair in overlaps if not any(_paused_in(section, frozen) for section in pair)
    ]
    for first, second in unexplained[:5]:
        report.violations.append(
            f"critical sections overlap without a paused worker: worker {first.worker} "
            f"(token {first.token}) [{first.enter:.3f}, {first.exit:.3f}] and worker "
            f"{second.worker} (token {second.token}) [{second.enter:.3f}, {second.exit:.3f}]"
        )
    if report.lost_updates and len(unexplained) == len(overlaps):
        report.violations.append(
            f"counter {history.counter} after {len(writes)} writes: {report.lost_updates} "
            f"lost updates without a paused worker"
        )
    refused_unpaused = [
        record for record in history.store if not record["accepted"] and record["worker"] not in frozen
    ]
    if refused_unpaused:
        report.violations.append(
            f"{len(refused_unpaused)} stale writes refused without a paused worker: "
            f"two holders believed they held the lock"
        )

    _check_liveness(history, frozen, session_timeout + stall_allowance, report)
    report.unavailability = _unavailability(sections, fault.injected_at)
    _check_recovery(history, sections, recovery_allowance, report)

    if history.leftovers:
        report.violations.append(f"lock nodes left after the run: {sorted(history.leftovers)}")
    for worker, code in sorted(history.exit_codes.items()):
        if code != 0:
            report.violations.append(f"worker {worker} did not exit cleanly (status {code})")

    if fault.kind == GC_PAUSE:
        _check_gc_pause_bit(history, frozen, report)
    else:
        _check_fault_reached(history, report)
    return report


def _check_fenced(store: list[dict[str, Any]], report: Report) -> None:
    highest: Optional[dict[str, Any]] = None
    previous: Optional[dict[str, Any]] = None
    owner: dict[int, int] = {}
    for record in store:
        if not record["accepted"]:
            report.refused_stale_writes += 1
            if highest is None or record["token"] >= highest["token"]:
                report.violations.append(
                    f"fenced store refused token {record['token']} of worker {record['worker']}, "
                    f"which was not lower than any accepted before"
                )
            continue
        report.accepted_writes += 1
        token, worker = record["token"], record["worker"]
        if highest is not None and token < highest["token"]:
            report.violations.append(
                f"fenced write of token {token} (worker {worker}) accepted after token "
                f"{highest['token']} (worker {highest['worker']})"
            )
        if previous is not None and record["start"] < previous["end"]:
            report.violations.append(
                f"fenced writes overlap: token {previous['token']} and token {token}"
            )
        if owner.setdefault(token, worker) != worker:
            report.violations.append(f"token {token} written by workers {owner[token]} and {worker}")
        if highest is None or token >= highest["token"]:
            highest = record
        previous = record


def _check_liveness(
    history: History, frozen: dict[int, list[tuple[float, float]]], bound: float, report: Report
) -> None:
    workers = sorted(history.exit_codes) or sorted({event["worker"] for event in history.events})
    progress: dict[int, list[float]] = {worker: [] for worker in workers}
    for event in history.events:
        if event["event"] == "write" and history.started_at <= event["at"] <= history.stopped_at:
            progress.setdefault(event["worker"], []).append(event["at"])
    for worker, times in sorted(progress.items()):
        marks = [history.started_at, *times, history.stopped_at]
        for before, after in zip(marks, marks[1:]):
            stall = after - before - _overlap(before, after, frozen.get(worker, []))
            if stall > report.longest_stall:
                report.longest_stall, report.stalled_worker = stall, worker
            if stall > bound:
                report.violations.append(
                    f"worker {worker} completed no critical section for {stall:.2f}s "
                    f"(from {before:.3f} to {after:.3f}; bound {bound:.2f}s)"
                )


def _check_recovery(history: History, sections: list[Section], allowance: float, report: Report) -> None:
    """After the healing: the lock handed over again, and every alive worker through a section.

    Both within ``allowance`` of ``fault.healed_at``, which the runner's cool-down must cover
    (a shorter run is a violation: it could not show recovery). Only sections *entered* at or
    after the healing count, i.e. acquisitions made after it: the section a ``gc-pause``
    worker wakes up in, or any other begun before the healing, proves nothing about recovery.

    "Alive" is every worker of the run except one that logged ``stopping`` before the stop
    file (it quit on its own: the exit-status rule reports it). Every such worker must
    complete a section, not merely the lock move on: with five workers queueing fairly, each
    one's turn comes within a few hand-overs once its client is back, so a worker left out
    for the whole allowance is stuck (a session never re-established, a node of its own that
    nobody deletes, a watch never fired), which is what a fault is meant to shake out.
    """
    healed, stopped = history.fault.healed_at, history.stopped_at
    report.fault_lasted = healed - history.fault.injected_at
    deadline = healed + allowance
    if stopped < deadline:
        report.violations.append(
            f"recovery not judged: the run stopped {stopped - healed:.2f}s after the fault was "
            f"healed, less than the recovery allowance {allowance:.2f}s (lengthen the cool-down)"
        )
    fresh = [section for section in sections if section.enter >= healed]  # acquired after healing
    if fresh:
        report.recovery = fresh[0].enter - healed
        if fresh[0].enter > deadline:
            report.violations.append(
                f"the lock was handed over again only {report.recovery:.2f}s after the fault was "
                f"healed (recovery allowance {allowance:.2f}s)"
            )
    elif report.unavailability is None:
        report.violations.append(
            f"the lock was never acquired after the fault (injected at "
            f"{history.fault.injected_at:.3f}, run stopped at {stopped:.3f})"
        )
    else:
        report.violations.append(
            f"the lock was not handed over after the fault was healed (at {healed:.3f}; run "
            f"stopped {stopped - healed:.2f}s later)"
        )

    workers = sorted(history.exit_codes) or sorted({event["worker"] for event in history.events})
    quit_early = {
        event["worker"]
        for event in history.events
        if event["event"] == "stopping" and event["at"] < stopped
    }
    first_done: dict[int, float] = {}
    for section in fresh:  # sorted by enter; one worker's sections follow one another
        if section.wrote and section.exit != float("inf"):
            first_done.setdefault(section.worker, section.exit)
    slowest: Optional[float] = 0.0
    for worker in workers:
        if worker in quit_early:
            continue
        if worker not in first_done:
            report.violations.append(
                f"worker {worker} completed no critical section acquired after the fault was "
                f"healed (at {healed:.3f}; run stopped {stopped - healed:.2f}s later)"
            )
            slowest, report.slowest_recovered = None, worker
            continue
        took = first_done[worker] - healed
        if took > allowance:
            report.violations.append(
                f"worker {worker} completed its first critical section acquired after the "
                f"healing only {took:.2f}s after it (recovery allowance {allowance:.2f}s)"
            )
        if slowest is not None and took >= slowest:
            slowest, report.slowest_recovered = took, worker
    report.slowest_recovery = slowest if report.slowest_recovered is not None else None


def _overlap(start: float, end: float, windows: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(end, hi) - max(start, lo)) for lo, hi in windows)


def _unavailability(sections: list[Section], injected_at: float) -> Optional[float]:
    after = [section.enter for section in sections if section.enter >= injected_at]
    return min(after) - injected_at if after else None


def _check_fault_reached(history: History, report: Report) -> None:
    fault = history.fault
    reached = {
        event["worker"]
        for event in history.events
        if event["event"] == "state"
        and event["state"] in _DISCONNECTED
        # A worker's own client.stop() at the end reports LOST too: only the run itself counts.
        and fault.injected_at <= event["at"] < history.stopped_at
    }
    if fault.kind == KILL_LEADER and not reached:
        report.violations.append(f"{fault.kind}: no worker's client noticed the fault")
    missed = sorted(set(fault.victims) - reached)
    if missed:
        report.violations.append(
            f"{fault.kind}: workers {missed} never lost their connection or session after the fault"
        )


def _check_gc_pause_bit(
    history: History, frozen: dict[int, list[tuple[float, float]]], report: Report
) -> None:
    if not frozen:
        report.violations.append("gc-pause run: no worker paused inside its critical section")
        return
    paused_tokens = {
        event["token"] for event in history.events if event["event"] == "pause"
    }
    refused = [
        record
        for record in history.store
        if not record["accepted"] and record["worker"] in frozen and record["token"] in paused_tokens
    ]
    if not refused:
        report.violations.append(
            "gc-pause run: the paused worker's stale write was not refused (fencing did not act)"
        )
