"""``python -m benchmarks.handoff`` (a hand-off, stage by stage) runs against a real ZooKeeper.

No timing is checked: the figures are for a person looking for where a hand-off's time goes.
What is checked is that each stage it prints was stamped, and that it cleans up.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_handoff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.handoff", *args],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )


def test_three_processes_hand_the_lock_on_and_every_stage_is_stamped(zookeeper, zk_client):
    assert not zk_client.exists("/zklock-bench")
    result = run_handoff("--hosts", zookeeper.connect_string, "--processes", "3", "--seconds", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = re.fullmatch(r"3 processes, (\d+) acquisitions, (\d+) woken hand-offs; medians:",
                          lines[0])
    assert header, result.stdout
    acquisitions, hand_offs = int(header[1]), int(header[2])
    assert 0 < hand_offs < acquisitions
    # With three contenders the next holder is not always first once its predecessor goes,
    # so each of the six stages, the listing's two included, has a median.
    for number, line in enumerate(lines[1:7], 1):
        assert re.fullmatch(rf"  {number}\. .+ +\d+ us", line), line
    assert re.fullmatch(r"  hand-off \(release call -> acquire returns\) \d+ us", lines[7])
    assert len(lines) == 8
    assert not zk_client.exists("/zklock-bench")


def test_bad_arguments_are_refused():
    no_hosts = run_handoff()
    assert no_hosts.returncode == 2 and "--hosts" in no_hosts.stderr
    alone = run_handoff("--hosts", "127.0.0.1:1", "--processes", "1")
    assert alone.returncode == 2 and "--processes must be at least 2" in alone.stderr
