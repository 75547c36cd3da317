"""``python -m benchmarks.handoff`` (a hand-off, stage by stage) runs against a real ZooKeeper.

No timing is checked: the figures are for a person looking for where a hand-off's time goes.
What is checked is that each stage it prints was stamped, and that it cleans up.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from zklock.testing import monitor

ROOT = Path(__file__).resolve().parents[2]


def run_handoff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.handoff", *args],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )


def test_three_processes_of_each_lock_hand_it_on_and_every_stage_is_stamped(
    zookeeper, zk_client
):
    assert not zk_client.exists("/zklock-bench")
    result = run_handoff("--hosts", zookeeper.connect_string, "--impls", "zklock+lean,kazoo",
                         "--processes", "3", "--seconds", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "3 processes, 1 x 1 s each; medians in us:"
    assert lines[1].split() == ["zklock+lean", "kazoo"]
    rows = {}
    for line in lines[2:]:
        if line.startswith("  disk flushes per acquisition (mntr)"):
            flushes = line.split()[-2:]
            if flushes == ["-", "-"]:  # only for a server that does not count them in mntr
                host, _, port = zookeeper.connect_string.split(",")[0].rpartition(":")
                assert "zk_cnt_fsynctime" not in monitor(host, int(port)), line
            else:  # each acquisition's create and delete are logged
                assert all(0 < float(value) <= 2.5 for value in flushes), line
            continue
        match = re.fullmatch(r"  (.+?) +(\d+) +(\d+)", line)
        assert match, line
        rows[match[1]] = (int(match[2]), int(match[3]))
    # With three contenders the next holder is not always first once its predecessor goes,
    # so each of the six stages, the listing's two included, has a median for both locks.
    stages = [name for name in rows if re.match(r"\d\. ", name)]
    assert [name[:2] for name in stages] == ["1.", "2.", "3.", "4.", "5.", "6."]
    for impl in (0, 1):
        acquisitions, hand_offs = rows["acquisitions"][impl], rows["woken hand-offs"][impl]
        assert 0 < hand_offs < acquisitions
        assert rows["hand-off (release call -> acquire returns)"][impl] > 0
    assert any(line.startswith("  disk flushes per acquisition") for line in lines)
    assert set(rows) == {*stages, "server's stages (3 + 5)", "client's stages (1 + 2 + 4 + 6)",
                         "hand-off (release call -> acquire returns)",
                         "hand-off, 90th percentile", "hand-off, mean", "acquisitions",
                         "woken hand-offs"}
    assert not zk_client.exists("/zklock-bench")


def test_bad_arguments_are_refused():
    no_hosts = run_handoff()
    assert no_hosts.returncode == 2 and "--hosts" in no_hosts.stderr
    alone = run_handoff("--hosts", "127.0.0.1:1", "--processes", "1")
    assert alone.returncode == 2 and "--processes must be at least 2" in alone.stderr
    unknown = run_handoff("--hosts", "127.0.0.1:1", "--impls", "zklock+lean,tooz")
    assert unknown.returncode == 2 and "--impls takes distinct names of" in unknown.stderr
