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
* **liveness**: a worker that completed no critical section for longer than the session
  timeout plus the recovery allowance (time it spent frozen by the nemesis not counted);
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
    longest_stall: float = 0.0  # longest time a worker completed nothing (frozen time excluded)
    stalled_worker: Optional[int] = None
    errors: dict[str, int] = field(default_factory=dict)  # "where:Error" -> count
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        unavailable = "none" if self.unavailability is None else f"{self.unavailability:.2f}s"
        errors = ", ".join(f"{name} x{count}" for name, count in sorted(self.errors.items())) or "none"
        return (
            f"CHAOS {self.kind} ({self.target}): sections {self.completed} "
            f"(abandoned {self.abandoned}), overlaps {self.overlaps}, lost updates "
            f"{self.lost_updates}, fenced writes accepted {self.accepted_writes} / refused stale "
            f"{self.refused_stale_writes}, unavailable after fault {unavailable}, longest stall "
            f"{self.longest_stall:.2f}s (worker {self.stalled_worker}); errors: {errors}"
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


def check(history: History, *, session_timeout: float, recovery_allowance: float) -> Report:
    """Judge one run; the report lists every violation (an empty list is a pass)."""
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

    _check_liveness(history, frozen, session_timeout + recovery_allowance, report)
    report.unavailability = _unavailability(sections, fault.injected_at)

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
