"""One chaos run: start the workers, let the nemesis strike, stop everything, gather the history.

The runner owns every process it starts: whatever happens (a failed check, a nemesis error,
an interrupt), each worker is continued if frozen, asked to stop, terminated, killed if it
must be, and reaped before :meth:`ChaosRun.run` returns or raises.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoNodeError

from zklock.testing import ZooKeeperEnsemble, wait_until

from .eventlog import read_jsonl
from .history import History, load_history
from .nemesis import Nemesis, Target
from .resources import FencedStore, UnsafeCounter
from .worker import STOP_FILE

TESTS_DIR = Path(__file__).resolve().parent.parent  # on the workers' PYTHONPATH: "chaos" is a package


@dataclass(frozen=True)
class RunSettings:
    """The shape of a run (seconds)."""

    workers: int = 5
    session_timeout: float = 4.0
    hold: float = 0.05  # sleep inside each critical section, between read and write
    warm_up: float = 3.0  # contention before the fault
    cool_down: float = 5.0  # contention after the fault is healed: recovery is judged in it
    ready_timeout: float = 60.0  # all workers connected
    exit_timeout: float = 20.0  # all workers gone after the stop file


class ChaosRun:
    """A run of ``settings.workers`` worker processes on ``ensemble`` with one fault kind."""

    def __init__(self, ensemble: ZooKeeperEnsemble, workdir: Path, kind: str, settings: RunSettings) -> None:
        self.ensemble = ensemble
        self.kind = kind
        self.settings = settings
        self.root = f"/zklock-chaos/{kind}-{uuid.uuid4().hex[:8]}"
        self.lock_path = f"{self.root}/lock"
        self.log_dir = workdir / "logs"
        self.control_dir = workdir / "control"
        self.counter = UnsafeCounter(workdir / "counter")
        self.store = FencedStore(workdir / "store")
        self.config_path = workdir / "config.json"
        self.workdir = workdir
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def run(self) -> History:
        """Do the run and return its history (the caller checks it)."""
        for directory in (self.log_dir, self.control_dir):
            directory.mkdir(parents=True)
        self.counter.create()
        self.store.create()
        self._write_config()
        admin = KazooClient(hosts=self.ensemble.connect_string, timeout=10.0)
        admin.start(timeout=30)
        try:
            admin.ensure_path(self.root)
            try:
                self._start_workers()
                self._wait_ready()
                started_at = time.monotonic()
                time.sleep(self.settings.warm_up)
                nemesis = Nemesis(
                    Target(
                        self.ensemble,
                        admin,
                        self.lock_path,
                        self.log_dir,
                        self.control_dir,
                        {i: p.pid for i, p in self.processes.items()},
                        self.settings.session_timeout,
                        self.store.log_path,
                    )
                )
                fault = nemesis.inject(self.kind)
                time.sleep(self.settings.cool_down)
                (self.control_dir / STOP_FILE).touch()
                stopped_at = time.monotonic()
                exit_codes = self._wait_exited()
            finally:
                self._reap()
            admin.sync(self.lock_path)  # read what the whole ensemble agreed on, not a lagging copy
            try:
                leftovers = admin.get_children(self.lock_path)
            except NoNodeError:
                leftovers = []
            return load_history(
                fault=fault,
                started_at=started_at,
                stopped_at=stopped_at,
                log_dir=self.log_dir,
                counter=self.counter,
                store=self.store,
                leftovers=leftovers,
                exit_codes=exit_codes,
            )
        finally:
            # A failed run may leave the ensemble unable to answer; the module's ensemble is
            # thrown away anyway, so a root left behind must not hide the real failure.
            with contextlib.suppress(KazooException):
                admin.delete(self.root, recursive=True)
            admin.stop()
            admin.close()

    def worker_output(self, tail: int = 20) -> str:
        """The last lines each worker wrote to stderr (for a failure's message)."""
        parts = []
        for index in sorted(self.processes):
            path = self.workdir / f"worker-{index}.err"
            lines = path.read_text(errors="replace").splitlines()[-tail:] if path.exists() else []
            if lines:
                parts.append(f"--- worker-{index} stderr ---\n" + "\n".join(lines))
        return "\n".join(parts)

    # ---------------------------------------------------------------------------- workers
    def _write_config(self) -> None:
        config = {
            "hosts": self.ensemble.connect_string,
            "lock_path": self.lock_path,
            "session_timeout": self.settings.session_timeout,
            "hold": self.settings.hold,
            "counter": str(self.counter.path),
            "store": str(self.workdir / "store"),
            "log_dir": str(self.log_dir),
            "control_dir": str(self.control_dir),
        }
        self.config_path.write_text(json.dumps(config), encoding="utf-8")

    def _start_workers(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
        for index in range(self.settings.workers):
            with (self.workdir / f"worker-{index}.err").open("wb") as stderr:
                self.processes[index] = subprocess.Popen(
                    [sys.executable, "-m", "chaos.worker", str(self.config_path), str(index)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    env=env,
                )

    def _wait_ready(self) -> None:
        def all_ready() -> bool:
            self._check_alive()
            return all(
                any(event["event"] == "ready" for event in read_jsonl(self.log_dir / f"worker-{index}.jsonl"))
                for index in self.processes
            )

        if not wait_until(all_ready, self.settings.ready_timeout):
            raise AssertionError(f"workers not connected within {self.settings.ready_timeout}s\n"
                                 + self.worker_output())

    def _check_alive(self) -> None:
        for index, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(
                    f"worker-{index} exited early (status {process.returncode})\n" + self.worker_output()
                )

    def _wait_exited(self) -> dict[int, Optional[int]]:
        """Each worker's exit status once the stop file is there; None for one still running."""
        deadline = time.monotonic() + self.settings.exit_timeout
        codes: dict[int, Optional[int]] = {}
        for index, process in self.processes.items():
            try:
                codes[index] = process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                codes[index] = None
        return codes

    def _reap(self) -> None:
        """Continue, terminate, and at last kill every worker still running; reap them all."""
        for process in self.processes.values():
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
