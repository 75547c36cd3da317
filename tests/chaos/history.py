"""What one chaos run recorded: the fault, the workers' logs, the store's log and the leftovers.

The runner builds a :class:`History` from the files of a run; the checker's unit tests build
them by hand. Nothing here judges anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .eventlog import read_jsonl
from .resources import FencedStore, UnsafeCounter

#: The fault kinds, one per run.
KILL_LEADER = "kill-leader"
KILL_FOLLOWER = "kill-follower"
PAUSE_SERVER = "pause-server"
EXPIRE_SESSION = "expire-session"
GC_PAUSE = "gc-pause"
FAULT_KINDS = (KILL_LEADER, KILL_FOLLOWER, PAUSE_SERVER, EXPIRE_SESSION, GC_PAUSE)


@dataclass(frozen=True)
class Fault:
    """One injected fault: what, on whom, and when (monotonic seconds)."""

    kind: str
    injected_at: float
    healed_at: float
    target: str = ""  # "zk2 (leader)", "worker-3", ... for the report
    # Workers the fault must have reached: their client saw the connection or the session go
    # (empty: any worker will do, or none can be named, as for a follower serving nobody).
    victims: tuple[int, ...] = ()


@dataclass
class History:
    """Everything a run left behind, in the form the checker reads."""

    fault: Fault
    started_at: float  # every worker was connected: liveness is measured from here
    stopped_at: float  # the stop file appeared: liveness is measured up to here
    events: list[dict[str, Any]]  # all workers' log lines, in time order
    store: list[dict[str, Any]]  # the fenced store's decisions, in the order it made them
    counter: int  # the unsafe counter's final value
    leftovers: list[str] = field(default_factory=list)  # lock-path children after the run
    exit_codes: dict[int, Optional[int]] = field(default_factory=dict)  # worker -> code


def load_history(
    *,
    fault: Fault,
    started_at: float,
    stopped_at: float,
    log_dir: Path,
    counter: UnsafeCounter,
    store: FencedStore,
    leftovers: list[str],
    exit_codes: dict[int, Optional[int]],
) -> History:
    """Read a finished run's files."""
    events: list[dict[str, Any]] = []
    for path in sorted(log_dir.glob("worker-*.jsonl")):
        events.extend(read_jsonl(path))
    events.sort(key=lambda event: event["at"])
    return History(
        fault=fault,
        started_at=started_at,
        stopped_at=stopped_at,
        events=events,
        store=read_jsonl(store.log_path),
        counter=counter.read(),
        leftovers=leftovers,
        exit_codes=exit_codes,
    )
