"""zklock.cli._proctree on real local processes (no ZooKeeper): the command and what it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from zklock.cli._proctree import (
    Process,
    alive,
    child_pids,
    child_subreaper,
    finished,
    group_of,
    process_tree,
    signal_all,
)
from zklock.testing.plugin import skip_outside_ci


def wait_until_gone(processes: list[Process]) -> bool:
    deadline = time.monotonic() + 5
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(processes)


def test_the_tree_holds_a_scripts_own_children_and_all_are_stopped():
    shell = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    try:
        deadline = time.monotonic() + 5
        while len(tree := process_tree(shell.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert tree[0].pid == shell.pid and len(tree) == 3
        signal_all(tree, signal.SIGKILL)
        shell.wait(5)
        assert wait_until_gone(tree)  # the sleeps too, not only the shell
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait()


def test_a_pid_now_naming_another_process_is_not_signalled():
    other = subprocess.Popen(["sleep", "30"])
    try:
        (me,) = process_tree(other.pid)
        stale = Process(other.pid, me.started - 1)  # as if the pid had been reused since
        assert alive([stale]) == []
        signal_all([stale], signal.SIGKILL)
        assert other.poll() is None and alive([me]) == [me]
    finally:
        other.kill()
        other.wait()
    assert process_tree(other.pid) == []


def _orphan_parent(marker_dir) -> tuple[int, int]:
    """Start a shell that leaves a ``sleep`` behind and exits; (the sleep's pid, its parent)."""
    pid_file = marker_dir / "pid"
    shell = subprocess.Popen(["sh", "-c", f'sleep 30 & echo $! > "{pid_file}"'])
    shell.wait(5)
    orphan = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while (parent := _parent(orphan)) == shell.pid and time.monotonic() < deadline:
        time.sleep(0.02)  # re-parenting follows the shell's exit
    return orphan, parent


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rpartition(")")[2].split()[1])


def test_a_child_subreaper_keeps_orphans_and_is_undone_on_leaving(tmp_path):
    if not sys.platform.startswith("linux"):
        skip_outside_ci("child subreapers are Linux's")  # in CI a failure, never a skip
    with child_subreaper() as reaping:
        assert reaping
        orphan, parent = _orphan_parent(tmp_path)
        try:
            assert parent == os.getpid()  # re-parented to us, not to init
            assert group_of(Process(orphan, process_tree(orphan)[0].started)) == os.getpgrp()
        finally:
            os.kill(orphan, signal.SIGKILL)
            os.waitpid(orphan, 0)  # ours to reap
    orphan, parent = _orphan_parent(tmp_path)
    try:
        assert parent != os.getpid()  # the setting was restored
    finally:
        os.kill(orphan, signal.SIGKILL)


def test_child_pids_lists_running_and_finished_children_until_reaped():
    child = subprocess.Popen(["sleep", "30"])
    try:
        listed = child_pids()
        assert listed is not None and child.pid in listed
        assert not finished(child.pid)
        child.kill()
        deadline = time.monotonic() + 5
        while not finished(child.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert finished(child.pid)
        assert child.pid in (child_pids() or [])  # a zombie is still a child
    finally:
        child.kill()
        child.wait(5)
    assert child.pid not in (child_pids() or [])
