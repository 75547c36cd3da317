"""zklock.cli._proctree on real local processes (no ZooKeeper): the command and what it started."""

from __future__ import annotations

import signal
import subprocess
import time

from zklock.cli._proctree import Process, alive, process_tree, signal_all


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
