"""The nemesis: injects one fault into a running chaos run, heals it, and says when it struck.

Every method blocks until the fault is healed (the node restarted or resumed, the worker
continued), so the run always ends on a healthy ensemble. Which server or worker to hit is
found by public means only: the lock's queue (children of the lock path and their
``ephemeralOwner``), the sessions each server lists in ``cons``, and the session ids and
passwords the workers log.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from zklock.testing import ZooKeeperEnsemble, expire_session_id, wait_until

from .eventlog import read_jsonl
from .history import (
    EXPIRE_SESSION,
    GC_PAUSE,
    KILL_FOLLOWER,
    KILL_LEADER,
    PAUSE_SERVER,
    Fault,
)
from .worker import GC_PAUSE_FLAG


@dataclass
class Target:
    """What the nemesis may hit: the ensemble, the lock and the workers."""

    ensemble: ZooKeeperEnsemble
    admin: KazooClient  # the test's own client, to read the lock's queue
    lock_path: str
    log_dir: Path
    control_dir: Path
    pids: dict[int, int]  # worker -> process id
    session_timeout: float
    store_log: Path  # the fenced store's decisions


class Nemesis:
    """One fault per run; ``inject(kind)`` returns the :class:`Fault` once it is healed."""

    #: How long a killed node stays down: long enough for clients to move to the survivors.
    DOWN_FOR = 3.0
    #: How long past the session timeout a frozen worker or server stays frozen.
    FREEZE_MARGIN = 2.0

    def __init__(self, target: Target) -> None:
        self.target = target

    def inject(self, kind: str) -> Fault:
        method = {
            KILL_LEADER: self.kill_leader,
            KILL_FOLLOWER: self.kill_follower,
            PAUSE_SERVER: self.pause_server,
            EXPIRE_SESSION: self.expire_session,
            GC_PAUSE: self.gc_pause,
        }[kind]
        return method()

    # ----------------------------------------------------------------------- server faults
    def kill_leader(self) -> Fault:
        """SIGKILL the leader; restart it after :attr:`DOWN_FOR`."""
        ensemble = self.target.ensemble
        node = ensemble.leader()
        at = time.monotonic()
        ensemble.kill(node)  # returns once the survivors have elected a new leader
        time.sleep(max(0.0, at + self.DOWN_FOR - time.monotonic()))
        ensemble.start(node)
        return Fault(KILL_LEADER, at, time.monotonic(), f"zk{node} (leader)")

    def kill_follower(self) -> Fault:
        """SIGKILL the follower most workers are connected to; restart it after :attr:`DOWN_FOR`."""
        ensemble = self.target.ensemble
        followers = ensemble.followers()
        served = self._workers_by_node()
        node = max(followers, key=lambda i: (len(served.get(i, [])), -i))
        at = time.monotonic()
        ensemble.kill(node)
        time.sleep(max(0.0, at + self.DOWN_FOR - time.monotonic()))
        ensemble.start(node)
        victims = tuple(sorted(served.get(node, [])))
        return Fault(
            KILL_FOLLOWER, at, time.monotonic(), f"zk{node} (follower of workers {list(victims)})", victims
        )

    def pause_server(self) -> Fault:
        """Freeze the server the lock's holder is connected to, past the session timeout."""
        ensemble = self.target.ensemble
        found: dict[str, int] = {}

        def holder_server() -> bool:
            owner = self._queue_owners()[:1]
            node = ensemble.node_of_session(owner[0]) if owner else None
            if node is not None:
                found["node"] = node
            return node is not None

        if not wait_until(holder_server, 10.0):
            raise AssertionError("nemesis: found no server serving the lock holder's session")
        node = found["node"]
        mode = ensemble.mode(node)
        victims = tuple(sorted(self._workers_by_node().get(node, [])))
        at = time.monotonic()
        ensemble.pause(node)
        time.sleep(max(0.0, at + self.target.session_timeout + self.FREEZE_MARGIN - time.monotonic()))
        ensemble.unpause(node)
        return Fault(
            PAUSE_SERVER, at, time.monotonic(), f"zk{node} ({mode}, serving workers {list(victims)})", victims
        )

    # ----------------------------------------------------------------------- worker faults
    def expire_session(self) -> Fault:
        """Expire, on the server, the session of the worker queued last for the lock.

        Only a worker with two or more nodes ahead of it is chosen, so that it is at least two
        critical sections away from holding the lock when its session goes.

        The last in the queue, not the holder: a holder whose session is ended behind its back
        may already be past its last check (that is the gc-pause run's case); a waiter's node
        vanishing must instead re-link the queue, and the waiter must queue again.
        """
        chosen: list[tuple[int, int, str]] = []  # (worker, session, password hex)

        def pick() -> bool:
            sessions = self._logged_sessions()
            for owner in reversed(self._queue_owners()[2:]):  # two hand-offs or more from holding
                if owner in sessions:
                    worker, password = sessions[owner]
                    chosen.append((worker, owner, password))
                    return True
            return False

        if not wait_until(pick, 10.0):
            raise AssertionError("nemesis: found no queued worker whose session it knows")
        worker, session, password = chosen[-1]
        at = time.monotonic()
        expire_session_id(self.target.ensemble.connect_string, session, bytes.fromhex(password))
        return Fault(EXPIRE_SESSION, at, time.monotonic(), f"worker-{worker} (queued last)", (worker,))

    def gc_pause(self) -> Fault:
        """Have a holder stop itself after its last check; SIGCONT it past the session timeout.

        It stays frozen for the session timeout plus :attr:`FREEZE_MARGIN`, and then, if need
        be (a loaded machine), until the store has accepted a newer holder's write: only then
        is the write it makes on waking certainly stale, so the run can demand its refusal.
        """
        flag = self.target.control_dir / GC_PAUSE_FLAG
        flag.touch()
        stopped: dict[str, int] = {}

        def someone_stopped() -> bool:
            for worker, pid in self.target.pids.items():
                if _process_state(pid) == "T":
                    stopped["worker"], stopped["pid"] = worker, pid
                    return True
            return False

        if not wait_until(someone_stopped, 15.0):
            raise AssertionError("nemesis: no worker claimed the gc-pause flag and stopped")
        at = time.monotonic()
        worker = stopped["worker"]
        try:
            time.sleep(self.target.session_timeout + self.FREEZE_MARGIN)
            wait_until(lambda: self._store_moved_past(worker), 20.0)
        finally:
            os.kill(stopped["pid"], signal.SIGCONT)
        return Fault(GC_PAUSE, at, time.monotonic(), f"worker-{worker}", (worker,))

    # -------------------------------------------------------------------------- look-ups
    def _queue_owners(self) -> list[int]:
        """The sessions owning the lock's nodes, in queue order (holder first)."""
        admin, path = self.target.admin, self.target.lock_path
        try:
            children = admin.get_children(path)
        except NoNodeError:
            return []
        owners = []
        for child in sorted(children, key=_sequence):
            stat = admin.exists(f"{path}/{child}")
            if stat is not None:
                owners.append(stat.ephemeralOwner)
        return owners

    def _store_moved_past(self, worker: int) -> bool:
        """Whether the store accepted a higher token than the one ``worker`` froze with."""
        log = read_jsonl(self.target.log_dir / f"worker-{worker}.jsonl")
        frozen = [event["token"] for event in log if event["event"] == "pause"]
        store = read_jsonl(self.target.store_log)
        return bool(frozen) and any(record["accepted"] and record["token"] > frozen[-1] for record in store)

    def _logged_sessions(self) -> dict[int, tuple[int, str]]:
        """Session id -> (worker, password hex), from the workers' ``session`` events."""
        sessions = {}
        for log in self.target.log_dir.glob("worker-*.jsonl"):
            for event in read_jsonl(log):
                if event["event"] == "session":
                    sessions[event["session"]] = (event["worker"], event["password"])
        return sessions

    def _workers_by_node(self) -> dict[int, list[int]]:
        """Ensemble node -> workers whose latest session that node serves now."""
        latest: dict[int, int] = {}
        for session, (worker, _password) in self._logged_sessions().items():
            latest[worker] = session  # logs are read in file order: later sessions win
        served: dict[int, list[int]] = {}
        for worker, session in latest.items():
            node = self.target.ensemble.node_of_session(session)
            if node is not None:
                served.setdefault(node, []).append(worker)
        return served


def _sequence(child: str) -> int:
    """The sequence number a lock node's name ends with (10 digits, possibly negative)."""
    return int(child[-10:])  # "%010d" of a signed counter: "-000000001" is -1


def _process_state(pid: int) -> Optional[str]:
    """The one-letter state in ``/proc/<pid>/stat`` (``T`` = stopped), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]
