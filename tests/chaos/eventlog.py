"""Append-only JSON-lines logs, written by the workers and the fenced store, read by the checker.

Every line is one complete JSON object, written with one ``write`` and flushed at once, so a
worker frozen or killed mid-run leaves whole lines behind, and a reader never needs the writer
to have closed the file.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any


class EventLog:
    """One worker's log: ``record(event, **fields)`` appends ``{"event", "worker", "at", ...}``.

    ``at`` is ``time.monotonic()``: on Linux CLOCK_MONOTONIC is one clock for the whole
    machine, so times written by different processes compare. Thread-safe: kazoo's thread
    writes session changes while the worker's main thread writes its critical sections.
    """

    def __init__(self, path: Path, worker: int) -> None:
        self.path = path
        self.worker = worker
        self._lock = threading.Lock()
        self._file = path.open("a", encoding="utf-8")

    def record(self, event: str, **fields: Any) -> float:
        """Append one event stamped now; return its time."""
        at = time.monotonic()
        line = json.dumps({"event": event, "worker": self.worker, "at": at, **fields})
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
        return at

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete line of ``path`` as a dict (a missing file is an empty log).

    A last line without its newline was cut short by a killed writer and is left out.
    """
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n")[:-1] if line]
