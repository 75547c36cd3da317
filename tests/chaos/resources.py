"""The shared resources the workers' critical sections touch: one unfenced, one fenced.

``UnsafeCounter`` is what a lock alone protects: a read-modify-write with nothing to stop two
writers, so an overlap of critical sections shows as a lost update. ``FencedStore`` is what
fencing protects: it keeps the highest token it has accepted and refuses a write carrying a
lower one, atomically with the write (both under one ``flock``), and appends every decision
with its token and times, so the checker can replay what the store let through.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any


class UnsafeCounter:
    """An integer in a file, read and written without any lock of its own."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def create(self) -> None:
        self.write(0)

    def read(self) -> int:
        return int(self.path.read_text(encoding="ascii"))

    def write(self, value: int) -> None:
        # Replace, not truncate-and-write: a reader never sees a half-written number, so the
        # only damage an overlap can do is the one we look for, a lost update.
        scratch = self.path.with_name(f"{self.path.name}.{os.getpid()}")
        scratch.write_text(str(value), encoding="ascii")
        os.replace(scratch, self.path)


class FencedStore:
    """A store that refuses writes with a fencing token lower than the highest it accepted.

    Files: ``<path>.lock`` (the ``flock``), ``<path>.highest`` (the highest accepted token) and
    ``<path>.jsonl`` (one line per write: token, worker, part, accepted, the highest token
    before it, and the monotonic times the decision started and ended, inside the lock).
    A write with the same token as the highest is accepted: it comes from the current holder.
    """

    def __init__(self, path: Path) -> None:
        self.lock_path = path.with_suffix(".lock")
        self.highest_path = path.with_suffix(".highest")
        self.log_path = path.with_suffix(".jsonl")

    def create(self) -> None:
        self.lock_path.touch()
        self.highest_path.write_text("0", encoding="ascii")
        self.log_path.touch()

    def write(self, token: int, worker: int, part: str) -> bool:
        """Offer a write; return whether the store accepted it."""
        with self.lock_path.open("r") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                start = time.monotonic()
                highest = int(self.highest_path.read_text(encoding="ascii"))
                accepted = token >= highest
                if accepted:
                    self.highest_path.write_text(str(token), encoding="ascii")
                record: dict[str, Any] = {
                    "token": token,
                    "worker": worker,
                    "part": part,
                    "accepted": accepted,
                    "highest": highest,
                    "start": start,
                    "end": time.monotonic(),
                }
                with self.log_path.open("a", encoding="utf-8") as log:
                    log.write(json.dumps(record) + "\n")
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        return accepted
