"""A chaos worker process: acquire -> critical section -> release on one lock, until told to stop.

    PYTHONPATH=tests python -m chaos.worker CONFIG.json INDEX

Each worker has its own KazooClient (its own session) on all three servers. It logs, on the
monotonic clock, every session it gets (id and password, so the nemesis can find its server
or expire it), every critical section it enters and leaves, every write it makes and every
error it meets. Errors (lost or doubtful leases, connection loss, expired sessions, timeouts)
are logged and the loop goes on: surviving them is the point of the run.

The critical section, with the lease checked on entry and again just before acting::

    enter -> check -> read counter -> fenced write "begin" -> sleep (hold) -> check
          -> [gc-pause flag: SIGSTOP ourselves] -> write counter + 1 -> fenced write "commit"

A worker that finds the ``gc-pause`` flag file in the control directory (only one can claim
it: the unlink is atomic) stops itself right after its last check, so it wakes, once the
nemesis sends SIGCONT, believing it still holds the lock, and writes with its stale token.
It stops at SIGTERM or when the ``stop`` file appears: it finishes the critical section,
releases, and closes its client, so it leaves no node and no process behind.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState

import zklock
from zklock.testing import handler_from_env

from .eventlog import EventLog
from .resources import FencedStore, UnsafeCounter

STOP_FILE = "stop"
GC_PAUSE_FLAG = "gc-pause"
ACQUIRE_TIMEOUT = 1.0  # short, so a worker notices the stop file while it waits
ERROR_BACKOFF = 0.1


class Worker:
    """One contender: its client, its lock, its log, and the two resources."""

    def __init__(self, config: dict[str, Any], index: int) -> None:
        self.index = index
        self.hold = float(config["hold"])
        self.control = Path(config["control_dir"])
        self.counter = UnsafeCounter(Path(config["counter"]))
        self.store = FencedStore(Path(config["store"]))
        self.log = EventLog(Path(config["log_dir"]) / f"worker-{index}.jsonl", index)
        self.stopping = threading.Event()
        # Worker i tries server i (mod the ensemble's size) first: the workers start spread
        # over every server, so each server's fault (a follower killed) has someone to hit.
        hosts = config["hosts"].split(",")
        first = index % len(hosts)
        self.client = KazooClient(
            hosts=",".join(hosts[first:] + hosts[:first]),
            randomize_hosts=False,
            timeout=float(config["session_timeout"]),
            # kazoo's default backoff grows to an hour between attempts; a worker cut off
            # for a few seconds must come back within a second of the ensemble healing.
            connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 2, "max_delay": 1.0},
            handler=handler_from_env(),
        )
        self.client.add_listener(self._on_state)
        self.lock = zklock.Lock(self.client, config["lock_path"], identifier=f"worker-{index}")

    # ------------------------------------------------------------------------ lifecycle
    def run(self) -> int:
        self.log.record("start", pid=os.getpid())
        self.client.start(timeout=30)
        self._log_session()
        self.log.record("ready")
        try:
            while not self._told_to_stop():
                self._one_round()
        finally:
            self.log.record("stopping")
            self.client.stop()
            self.client.close()
            self.log.record("stopped")
            self.log.close()
        return 0

    def _told_to_stop(self) -> bool:
        return self.stopping.is_set() or (self.control / STOP_FILE).exists()

    def _one_round(self) -> None:
        try:
            if not self.lock.acquire(timeout=ACQUIRE_TIMEOUT):
                return
        except zklock.ZkLockError as error:
            self._error("acquire", error)
            time.sleep(ERROR_BACKOFF)
            return
        try:
            self._critical_section()
        finally:
            try:
                self.lock.release()
            except zklock.ZkLockError as error:  # LockLost after a lost lease, ConnectionLost ...
                self._error("release", error)

    # ------------------------------------------------------------------- the critical section
    def _critical_section(self) -> None:
        lease = self.lock.lease
        assert lease is not None
        token = lease.token
        self.log.record("enter", token=token, session=lease.session_id)
        try:
            lease.check()
            value = self.counter.read()
            self.store.write(token, self.index, "begin")
            time.sleep(self.hold)  # the window in which an overlap loses an update
            lease.check()  # the last look before acting: no lock can do better than this
            self._maybe_freeze(token)
            self.counter.write(value + 1)
            accepted = self.store.write(token, self.index, "commit")
            self.log.record("write", token=token, read=value, accepted=accepted)
        except zklock.LeaseError as error:  # LockInDoubt, LockLost: abandon, do not write
            self._error("section", error, token=token)
        finally:
            self.log.record("exit", token=token)

    def _maybe_freeze(self, token: int) -> None:
        """Stop this process here, after the last check, if the gc-pause flag is ours."""
        try:
            (self.control / GC_PAUSE_FLAG).unlink()  # atomic: one worker claims the flag
        except FileNotFoundError:
            return
        self.log.record("pause", token=token)
        os.kill(os.getpid(), signal.SIGSTOP)  # the nemesis sends SIGCONT after the session timeout
        self.log.record("resume", token=token)

    # ---------------------------------------------------------------------------- logging
    def _on_state(self, state: str) -> None:
        """kazoo's state listener (its own thread; must not block)."""
        self.log.record("state", state=str(state))
        if state == KazooState.CONNECTED:
            self._log_session()

    def _log_session(self) -> None:
        client_id = self.client.client_id
        if client_id is not None:
            session, password = client_id
            self.log.record("session", session=session, password=password.hex())

    def _error(self, where: str, error: BaseException, **fields: Any) -> None:
        self.log.record("error", where=where, error=type(error).__name__, message=str(error), **fields)


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    worker = Worker(config, int(argv[2]))
    # SIGTERM asks for the same orderly stop as the stop file, after the current round.
    signal.signal(signal.SIGTERM, lambda signum, frame: worker.stopping.set())
    return worker.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
