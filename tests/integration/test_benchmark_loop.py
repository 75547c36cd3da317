"""``python -m benchmarks.loop`` (the loop for profilers) runs against a real ZooKeeper and cleans up.

No timing is checked: the figures it prints are for a person with a profiler.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_loop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.loop", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


@pytest.mark.parametrize("impl", ["zklock+lean", "kazoo", "raw"])
def test_the_loop_runs_one_implementation_and_removes_its_path(zookeeper, zk_client, impl):
    assert not zk_client.exists("/zklock-bench")
    result = run_loop(impl, "--hosts", zookeeper.connect_string, "--cycles", "20", "--warm-up", "5")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        rf"{re.escape(impl)}: 20 cycles, p50 \d+ us, CPU \d+ us per cycle\n", result.stdout
    ), result.stdout
    assert not zk_client.exists("/zklock-bench")


def test_the_loop_refuses_bad_arguments():
    unknown = run_loop("redis", "--hosts", "127.0.0.1:1")
    assert unknown.returncode == 2 and "invalid choice: 'redis'" in unknown.stderr
    no_hosts = run_loop("kazoo")
    assert no_hosts.returncode == 2 and "--hosts" in no_hosts.stderr
    zero = run_loop("kazoo", "--hosts", "127.0.0.1:1", "--cycles", "0")
    assert zero.returncode == 2 and "--cycles must be at least 1" in zero.stderr
