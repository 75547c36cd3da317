"""``python -m benchmarks.disk`` (the disk's flush latency, back to back and after a pause) runs.

It times the disk, not locking, so it needs no server; no figure it prints is checked against
a threshold, only that it measures what it says and leaves no file behind.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.disk", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )


@pytest.mark.parametrize("pause", [[], ["--spin"]], ids=["sleep", "spin"])
def test_it_prints_one_row_per_pause_and_removes_its_log(tmp_path, pause):
    result = _probe("--dir", str(tmp_path), "--gaps-us", "0,200", "--seconds", "0.1", *pause)

    assert result.returncode == 0, result.stderr
    assert ("(busy wait)" if pause else "(sleep)") in result.stdout
    rows = re.findall(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", result.stdout, re.MULTILINE)
    assert [row[0] for row in rows] == ["0", "200"], result.stdout
    for _gap, flushes, p50, p90 in rows:
        assert int(flushes) >= 1
        assert 0 <= int(p50) <= int(p90)
    assert list(tmp_path.iterdir()) == []


def test_each_append_is_flushed_once_and_the_log_is_sparse_as_zookeepers(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import disk
    finally:
        sys.path.remove(str(ROOT))
    sizes: list[int] = []
    real_fdatasync = disk.os.fdatasync

    def fdatasync(fd: int) -> None:
        sizes.append(disk.os.fstat(fd).st_size)
        real_fdatasync(fd)

    monkeypatch.setattr(disk.os, "fdatasync", fdatasync)
    flushes = disk.flush_latencies(str(tmp_path), gap_s=0.0, seconds=0.05, size=61)

    assert len(flushes) == len(sizes) >= 1
    assert all(seconds >= 0 for seconds in flushes)
    assert set(sizes) == {64 * 1024 * 1024}  # appends land inside the padded file
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_refused_without_touching_the_disk(tmp_path):
    for args in (["--gaps-us", "-5"], ["--gaps-us", "0.5"], ["--gaps-us", ","],
                 ["--seconds", "0"], ["--size", "0"]):
        result = _probe("--dir", str(tmp_path), *args)
        assert result.returncode == 2, (args, result.stdout)
        assert "must be" in result.stderr
    assert list(tmp_path.iterdir()) == []
