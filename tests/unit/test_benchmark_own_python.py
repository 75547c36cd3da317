"""``python -m benchmarks.own_python`` (zklock's own Python per cycle, on a stand-in client) runs.

It measures code, not locking, so it needs no server; no figure it prints is checked against a
threshold, only that it counts what it says it counts.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_it_prints_opcodes_calls_and_warm_cpu_per_cycle():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.own_python", "--cycles", "50"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    found = re.fullmatch(
        r"zklock's own Python per acquire\+release \(stand-in client\): "
        r"(\d+) opcodes, (\d+) calls, ([\d.]+) us of CPU warm\n",
        result.stdout,
    )
    assert found, result.stdout
    opcodes, calls = int(found[1]), int(found[2])
    assert calls > 10 and opcodes > 10 * calls / 2  # a lock cycle is many calls, each several steps


def test_the_count_is_the_same_from_run_to_run():
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.own_python import StandInClient, count_steps
    finally:
        sys.path.remove(str(ROOT))
    import zklock

    lock = zklock.Lock(StandInClient(), "/benchmarks/own-python")
    lock.acquire()
    lock.release()  # first-use work (the session watcher) out of the way
    assert count_steps(lock, 20) == count_steps(lock, 20)
    assert not lock.locked()
    # The session watchdog a lease starts outlives the last lease only briefly.
    deadline = time.monotonic() + 5
    while any(t.name.startswith("zklock-watchdog") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the watchdog thread stayed"
        time.sleep(0.05)


def test_bad_cycles_are_refused():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.own_python", "--cycles", "0"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert result.returncode == 2 and "--cycles must be at least 1" in result.stderr
