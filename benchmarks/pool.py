"""The coordinator's side of the worker processes (``benchmarks/worker.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class WorkerError(RuntimeError):
    """A worker answered a command with an error."""


class Worker:
    """One worker process; ``call`` sends a command and waits for its reply."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )

    def send(self, op: str, **arguments: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise WorkerError(f"worker {self.process.pid} exited ({self.process.poll()})")
        reply: dict[str, Any] = json.loads(line)
        if not reply.pop("ok"):
            raise WorkerError(reply["error"])
        return reply

    def call(self, op: str, **arguments: Any) -> dict[str, Any]:
        self.send(op, **arguments)
        return self.receive()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send("exit")
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


class Pool:
    """``size`` workers, started once and reused by every measurement."""

    def __init__(self, size: int) -> None:
        self.workers = [Worker() for _ in range(size)]

    def all(self, workers: Sequence[Worker], op: str, **arguments: Any) -> list[dict[str, Any]]:
        """Send the same command to ``workers`` at once; return their replies in order."""
        for worker in workers:
            worker.send(op, **arguments)
        return [worker.receive() for worker in workers]

    def close(self) -> None:
        for worker in self.workers:
            worker.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_once(args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run ``python -m benchmarks.worker ARGS`` in a fresh process; return its JSON line."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )
    if done.returncode != 0:
        raise WorkerError(done.stderr[-4000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
