"""The ``zklock`` command against a real ZooKeeper, run as subprocesses (``python -m zklock.cli``).

Covers ``exec`` (exclusion, status pass-through, tokens, signals, lease loss, conflicts, bad
arguments, unreachable servers), ``status`` (text and JSON) and ``server`` (each backend starts,
serves a lock and leaves nothing behind).  Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest

import zklock
from zklock.cli._signals import SAME_DELIVERY
from zklock.testing import TcpProxy
from zklock.testing.plugin import skip_outside_ci

CLI = [sys.executable, "-m", "zklock.cli"]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Each child appends one JSON line (monotonic enter/exit, its token) and exits with a given code.
CONTENDER = r"""
import json, os, sys, time
log, code, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
enter = time.monotonic()
time.sleep(hold)
line = {"enter": enter, "exit": time.monotonic(), "token": int(os.environ["ZKLOCK_TOKEN"]), "code": code}
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, (json.dumps(line) + "\n").encode())
os.close(fd)
sys.exit(code)
"""

# Runs until stopped; notes its start and a SIGTERM in a file; "ignore" makes it ignore SIGTERM.
LONG_RUNNING = r"""
import os, signal, sys, time
marker, mode = sys.argv[1], sys.argv[2]

def note(text):
    with open(marker, "a") as f:
        f.write(text + "\n")
def on_term(signum, frame):
    note(f"signal {signum}")
    sys.exit(7)
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "ignore" else on_term)
note(f"started {os.getpid()} {os.environ['ZKLOCK_TOKEN']}")
while True:
    time.sleep(0.02)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ZKLOCK_HOSTS", "ZKLOCK_AUTH")}
    env["PYTHONFAULTHANDLER"] = "1"  # a SIGABRT makes a stuck zklock print its threads (finish)
    env.update(extra)
    return env


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """``proc.communicate(timeout)``; a zklock still running then fails the test with its stacks.

    Every spawned zklock runs with ``PYTHONFAULTHANDLER=1``: SIGABRT makes it print where each
    of its threads is before it dies, so a hang says where it hung.
    """
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _out, err = proc.communicate(timeout=10)
        pytest.fail(f"zklock still running after {timeout:g} s; its threads on SIGABRT:\n{err}")


def zklock_run(*args: str, timeout: float = 30, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=_env(**extra_env)
    )


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``zklock`` subprocesses; any still running at teardown are killed."""
    procs: list[subprocess.Popen[str]] = []

    def start(
        *args: str,
        stderr: int | IO[str] | None = subprocess.PIPE,
        cli: Sequence[str] = CLI,
        new_session: bool = False,
        stdin: int | None = None,
        **extra_env: str,
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [*cli, *args], stdin=stdin, stdout=subprocess.PIPE, stderr=stderr, text=True,
            env=_env(**extra_env), start_new_session=new_session,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.communicate(timeout=10)


@pytest.fixture(autouse=True, scope="module")
def _sigint_as_in_a_terminal() -> Iterator[None]:
    """Spawned zklock processes start with SIGINT and SIGHUP acted on, however pytest was started.

    A job that a non-interactive shell starts in the background (``.ci/run &``) inherits SIGINT
    ignored, and one started under ``nohup`` SIGHUP, and passes that on to every child; zklock,
    as documented, leaves a signal that was ignored at start ignored, and would sit out the
    signals these tests send.  A signal that is caught here is reset to its default in an
    exec'd child, so catching it gives the children the signals of a terminal's job.
    (``test_a_sigint_ignored_at_start_stays_ignored`` checks the other case on purpose.)
    """
    ignored = [signum for signum in (signal.SIGINT, signal.SIGHUP)
               if signal.getsignal(signum) == signal.SIG_IGN]
    for signum in ignored:
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else _noted)
    yield
    for signum in ignored:
        signal.signal(signum, signal.SIG_IGN)


def _noted(signum: int, frame: object) -> None:
    """A SIGHUP reaching pytest itself (caught only so that children start with the default)."""


@pytest.fixture
def hosts(zookeeper) -> str:
    return str(zookeeper.connect_string)


def contenders(zk_client, path: str) -> list[str]:
    return zk_client.get_children(path) if zk_client.exists(path) else []


# ---------------------------------------------------------------------------------- exec
def test_exec_runs_the_command_with_the_lock_and_passes_its_status(hosts, zk_path, zk_client):
    path = f"{zk_path}/job"
    result = zklock_run(
        "exec", "--hosts", hosts, path, "--",
        "sh", "-c", 'echo "$ZKLOCK_TOKEN $ZKLOCK_PATH $ZKLOCK_NODE"; exit 3',
    )
    assert result.returncode == 3, explain(result)
    token, lock_path, node = result.stdout.split()
    assert int(token) > 0 and lock_path == path and node.startswith(f"{path}/")
    assert result.stderr == ""  # uncontended: nothing to say
    assert contenders(zk_client, path) == []  # released


@pytest.mark.parametrize("count", [2, 10])
def test_contending_execs_never_overlap_tokens_rise_statuses_pass(hosts, zk_path, tmp_path, spawn, count):
    path, log = f"{zk_path}/contended", tmp_path / "sections.jsonl"
    procs = [
        spawn("exec", "--hosts", hosts, "--identifier", f"worker-{i}", path, "--",
              sys.executable, "-c", CONTENDER, str(log), str(i), "0.05")
        for i in range(count)
    ]
    for i, proc in enumerate(procs):
        _out, err = finish(proc, 60)
        assert proc.returncode == i, f"worker {i}: exit {proc.returncode}\n{err}"
    sections = sorted((json.loads(line) for line in log.read_text().splitlines()), key=lambda s: s["enter"])
    assert sorted(s["code"] for s in sections) == list(range(count))
    for before, after in zip(sections, sections[1:]):
        assert before["exit"] <= after["enter"], f"overlap: {before} / {after}"
        assert before["token"] < after["token"], f"tokens not rising: {before} / {after}"


def test_child_killed_by_signal_gives_128_plus_n(hosts, zk_path):
    result = zklock_run("exec", "--hosts", hosts, f"{zk_path}/l", "--", "sh", "-c", "kill -TERM $$")
    assert result.returncode == 128 + signal.SIGTERM, explain(result)


def test_sigterm_is_passed_to_the_child_and_its_status_returned(hosts, zk_path, zk_client, tmp_path, spawn):
    path, marker = f"{zk_path}/l", tmp_path / "marker"
    proc = spawn("exec", "--hosts", hosts, path, "--",
                 sys.executable, "-c", LONG_RUNNING, str(marker), "exit")
    _started_pid(marker)
    proc.send_signal(signal.SIGTERM)
    _out, err = finish(proc, 15)
    assert proc.returncode == 7, err  # the child's own status, from its SIGTERM handler
    assert f"signal {int(signal.SIGTERM)}" in marker.read_text()
    assert contenders(zk_client, path) == []


def test_signal_while_waiting_leaves_the_queue(hosts, zk_path, zk_client, spawn):
    path = f"{zk_path}/l"
    holder = zklock.Lock(zk_client, path, identifier="holder")
    assert holder.acquire()
    try:
        waiter = spawn("exec", "--hosts", hosts, path, "--", "true")
        wait_for(lambda: len(contenders(zk_client, path)) == 2, 15, "the waiter to queue")
        started = time.monotonic()
        waiter.send_signal(signal.SIGINT)
        _out, err = finish(waiter, 15)
        assert waiter.returncode == 128 + signal.SIGINT, err
        assert time.monotonic() - started < 3
        assert len(contenders(zk_client, path)) == 1  # the waiter's node is gone
    finally:
        holder.release()


# zklock started with SIGINT ignored, as `zklock exec ... &` in a script starts it.
CLI_IGNORING_SIGINT = [
    sys.executable, "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', 'zklock.cli', *sys.argv[1:]])",
]


def test_a_sigint_ignored_at_start_stays_ignored(hosts, zk_path, zk_client, spawn):
    path = f"{zk_path}/l"
    holder = zklock.Lock(zk_client, path, identifier="holder")
    assert holder.acquire()
    try:
        waiter = spawn("exec", "--hosts", hosts, path, "--", "true", cli=CLI_IGNORING_SIGINT)
        wait_for(lambda: len(contenders(zk_client, path)) == 2, 15, "the waiter to queue")
        waiter.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert waiter.poll() is None, "zklock acted on a SIGINT it was started ignoring"
        assert len(contenders(zk_client, path)) == 2  # still queued
    finally:
        holder.release()
    _out, err = finish(waiter, 15)
    assert waiter.returncode == 0, err  # it got the lock and ran the command
    assert contenders(zk_client, path) == []


def test_lease_lost_by_server_side_expiry_stops_the_child(hosts, zk_path, tmp_path, spawn):
    """The exec process is frozen (SIGSTOP) past its session timeout: the server expires the
    session; on waking, exec stops the child with SIGTERM and exits with the lost status."""
    path, marker = f"{zk_path}/l", tmp_path / "marker"
    proc = spawn("exec", "--hosts", hosts, "--session-timeout", "1", "--grace", "5", path, "--",
                 sys.executable, "-c", LONG_RUNNING, str(marker), "exit")
    _started_pid(marker)
    os.kill(proc.pid, signal.SIGSTOP)
    time.sleep(2.5)  # the server expires the session after 1 s of silence
    woke = time.monotonic()
    os.kill(proc.pid, signal.SIGCONT)
    _out, err = finish(proc, 15)
    assert proc.returncode == 75, err
    assert time.monotonic() - woke < 4  # SIGTERM at once, well within the grace period
    assert f"signal {int(signal.SIGTERM)}" in marker.read_text()
    assert "lost" in err and "SIGTERM" in err
    # The server really ended the session: the lock is free for the next one at once.
    after = zklock_run("exec", "--hosts", hosts, "--no-wait", path, "--", "true")
    assert after.returncode == 0, explain(after)


def test_zklock_killed_outright_takes_the_command_with_it(hosts, zk_path, zk_client, tmp_path, spawn):
    """zklock SIGKILLed cannot stop the command when its lock goes, a session timeout later:
    the kernel kills the command at once instead (Linux), so it never runs unlocked."""
    path, marker = f"{zk_path}/l", tmp_path / "marker"
    proc = spawn("exec", "--hosts", hosts, "--session-timeout", "2", path, "--",
                 sys.executable, "-c", LONG_RUNNING, str(marker), "ignore")
    command = _started_pid(marker)
    try:
        proc.kill()
        proc.wait(10)
        wait_for(lambda: not _alive(command), 5, "the command to die with zklock")
    finally:
        _kill_if_alive(command)
    # The lock itself goes when the server expires the silent session.
    wait_for(lambda: contenders(zk_client, path) == [], 20, "the session to expire")


def test_lease_lost_in_a_partition_kills_a_child_that_ignores_sigterm(zookeeper, zk_path, tmp_path, spawn):
    """The connection is black-holed: exec declares the lease lost by its own clock, sends
    SIGTERM, and SIGKILL after --grace to a child that ignores SIGTERM."""
    path, marker = f"{zk_path}/l", tmp_path / "marker"
    if len(zookeeper.addresses) != 1:
        skip_outside_ci("the TCP proxy fronts a single server")
    with TcpProxy(zookeeper.connect_string) as proxy:
        proc = spawn("exec", "--hosts", proxy.connect_string, "--session-timeout", "1", "--grace", "1",
                     path, "--", sys.executable, "-c", LONG_RUNNING, str(marker), "ignore")
        child_pid = _started_pid(marker)
        proxy.blackhole()
        cut = time.monotonic()
        _out, err = finish(proc, 20)
        elapsed = time.monotonic() - cut
        proxy.heal()
    assert proc.returncode == 75, err
    assert "SIGKILL" in err, err
    assert 1.0 <= elapsed < 8, elapsed
    with pytest.raises(ProcessLookupError):
        os.kill(child_pid, 0)


def _lose_the_lease_while_running(
    zookeeper, spawn, path: str, marker: Path, command: Sequence[str], **options: object
) -> tuple[subprocess.Popen[str], str, int]:
    """``zklock exec PATH -- COMMAND`` through a TCP proxy (session 1 s, --grace 1), cut off
    once a process of COMMAND's has written its pid to ``marker``, until zklock exits.

    Returns zklock's process, its stderr and that pid (killed here if the wait fails).
    """
    if len(zookeeper.addresses) != 1:
        skip_outside_ci("the TCP proxy fronts a single server")
    with TcpProxy(zookeeper.connect_string) as proxy:
        proc = spawn("exec", "--hosts", proxy.connect_string, "--session-timeout", "1", "--grace", "1",
                     path, "--", *command, **options)
        pid = _started_pid(marker)
        proxy.blackhole()
        try:
            _out, err = finish(proc, 20)
        except BaseException:
            _kill_if_alive(pid)
            raise
        proxy.heal()
    return proc, err, pid


def test_a_lost_lease_stops_the_processes_the_command_started_too(zookeeper, zk_path, tmp_path, spawn):
    """A shell script as COMMAND: its own child, which ignores SIGTERM, must not work on
    without the lock once the shell is gone; it gets SIGKILL after --grace too."""
    marker = tmp_path / "marker"
    proc, err, grandchild = _lose_the_lease_while_running(
        zookeeper, spawn, f"{zk_path}/l", marker,
        ["sh", "-c", '"$0" -c "$1" "$2" ignore; echo after', sys.executable, LONG_RUNNING, str(marker)],
    )
    assert proc.returncode == 75, err
    assert "SIGKILL" in err, err
    wait_for(lambda: not _alive(grandchild), 5, "the command's own child to be gone")


def test_a_lost_lease_stops_the_command_even_with_stderr_closed(zookeeper, zk_path, tmp_path, spawn):
    """Started with ``2>&-`` (as from some cron set-ups): nothing can be written, and the
    command must be stopped all the same."""
    marker = tmp_path / "marker"
    without_stderr = ["sh", "-c", 'exec "$@" 2>&-', "sh", *CLI]
    proc, _err, child_pid = _lose_the_lease_while_running(
        zookeeper, spawn, f"{zk_path}/l", marker,
        [sys.executable, "-c", LONG_RUNNING, str(marker), "ignore"],
        stderr=None, cli=without_stderr,
    )
    assert proc.returncode == 75
    wait_for(lambda: not _alive(child_pid), 5, "the command to be gone")


def test_a_short_connection_drop_leaves_the_child_running(zookeeper, zk_path, tmp_path, spawn):
    """Connection lost and back within the session: the lock was only in doubt, the child
    keeps running, and zklock still exits with the child's status."""
    path, marker = f"{zk_path}/l", tmp_path / "marker"
    if len(zookeeper.addresses) != 1:
        skip_outside_ci("the TCP proxy fronts a single server")
    errors = tmp_path / "stderr"
    with TcpProxy(zookeeper.connect_string) as proxy, errors.open("w") as stderr:
        proc = spawn("exec", "--hosts", proxy.connect_string, "--session-timeout", "4",
                     path, "--", sys.executable, "-c", LONG_RUNNING, str(marker), "exit",
                     stderr=stderr)
        _started_pid(marker)
        assert proxy.drop() >= 1
        # kazoo reconnects at once, with the same session; zklock checks the node, then says so.
        wait_for(lambda: "still held" in errors.read_text(), 15, "the lease to be held again")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        finish(proc, 15)
    err = errors.read_text()
    assert proc.returncode == 7, err  # the child's own status: the lock was never lost
    assert "in doubt" in err and "still held" in err, err
    assert "lost (" not in err


# ------------------------------------------------------------- exec: all the command started
# Counts the signals it gets in a file, each delivery apart: Python runs a handler once for
# two copies that come close together, but its C-level handler writes one byte per copy to the
# wakeup fd.  Exits 7 once the file named by argv[2] exists.
COUNTING = r"""
import os, select, signal, sys
marker, stop = sys.argv[1], sys.argv[2]
deliveries, wakeup = os.pipe()
os.set_blocking(wakeup, False)
signal.set_wakeup_fd(wakeup, warn_on_full_buffer=False)
for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(signum, lambda signum, frame: None)

def note(text):
    with open(marker, "a") as f:
        f.write(text + "\n")
note(f"started {os.getpid()}")
while not os.path.exists(stop):
    if select.select([deliveries], [], [], 0.05)[0]:
        for signum in os.read(deliveries, 64):
            note(f"signal {signum}")
sys.exit(7)
"""
ROUNDS = 10  # a second copy can merge with the first: each round is one more chance to see it


def _count_rounds(marker: Path, signum: int, send: Callable[[], None]) -> None:
    """``send`` the signal ROUNDS times, each once the previous one has been counted."""
    for done in range(1, ROUNDS + 1):
        send()
        wait_for(lambda done=done: _received(marker, signum) >= done, 10, f"signal {signum} #{done}")
        time.sleep(0.2)  # a second copy of this one would come within this


def _started_pid(marker: Path) -> int:
    wait_for(lambda: marker.exists() and "started" in marker.read_text(), 15, "the process to start")
    return int(marker.read_text().split("started ", 1)[1].split()[0])


def _received(marker: Path, signum: int) -> int:
    return marker.read_text().splitlines().count(f"signal {int(signum)}")


def _kill_if_alive(pid: int) -> None:
    """Clean-up for a process the old code would leave behind: never outlive the test."""
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def test_sigterm_to_zklock_reaches_the_children_of_a_script_before_the_lock_goes(
    hosts, zk_path, zk_client, tmp_path, spawn
):
    """A supervisor signals zklock alone: the script's running child must get the signal too,
    not be orphaned and run on after zklock released the lock."""
    path, marker = f"{zk_path}/l", tmp_path / "marker"
    proc = spawn("exec", "--hosts", hosts, path, "--", "sh", "-c", '"$0" -c "$1" "$2" exit; echo after',
                 sys.executable, LONG_RUNNING, str(marker))
    child = _started_pid(marker)
    try:
        proc.send_signal(signal.SIGTERM)
        out, err = finish(proc, 15)
        child_alive = _alive(child)  # at the moment zklock is gone and the lock with it
    finally:
        _kill_if_alive(child)
    assert not child_alive, "the script's child ran on after zklock released the lock"
    assert proc.returncode == 128 + signal.SIGTERM, err  # the shell's own death by SIGTERM
    assert f"signal {int(signal.SIGTERM)}" in marker.read_text()
    assert "after" not in out
    assert contenders(zk_client, path) == []


def test_the_lock_is_held_until_processes_left_running_exit_and_signals_reach_them(
    hosts, zk_path, zk_client, tmp_path, spawn
):
    """As flock(1), whose lock goes with the descriptor a background child inherits: a command
    that exits leaving a process behind keeps the lock until that process exits; a SIGTERM
    meanwhile reaches it, and zklock exits with the command's own status."""
    path, marker = f"{zk_path}/l", tmp_path / "marker"
    proc = spawn("exec", "--hosts", hosts, path, "--", "sh", "-c", '"$0" -c "$1" "$2" exit & exit 3',
                 sys.executable, LONG_RUNNING, str(marker))
    left = _started_pid(marker)
    try:
        time.sleep(0.5)  # time enough for a zklock that did not wait to have released and gone
        assert proc.poll() is None, "zklock exited while the command's background process ran"
        assert len(contenders(zk_client, path)) == 1  # still held
        proc.send_signal(signal.SIGTERM)
        _out, err = finish(proc, 15)
        left_alive = _alive(left)
    finally:
        _kill_if_alive(left)
    assert not left_alive
    assert proc.returncode == 3, err  # the command's status, not the leftover's
    assert f"the command exited with status 3; 1 process it started still runs (pid {left})" in err, err
    assert f"signal {int(signal.SIGTERM)}" in marker.read_text()
    assert contenders(zk_client, path) == []


def test_orphans_of_the_command_are_zklocks_and_are_reaped(hosts, zk_path, tmp_path, spawn):
    """On Linux zklock is a child subreaper: a process the command double-forks becomes
    zklock's child (so it can be waited for and stopped), and is reaped once it exits, while
    the command still runs: no zombie piles up."""
    path, marker = f"{zk_path}/l", tmp_path / "marker"
    proc = spawn("exec", "--hosts", hosts, path, "--", "sh", "-c",
                 '( exec sleep 1 & ); exec "$0" -c "$1" "$2" exit',
                 sys.executable, LONG_RUNNING, str(marker))
    command = _started_pid(marker)

    def others() -> list[int]:  # zklock's children but the command, zombies included
        return [pid for pid in _children(proc.pid) if pid != command]

    try:
        wait_for(others, 10, "the double-forked sleep to become zklock's child")
        wait_for(lambda: not others(), 15, "the orphan to be reaped")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _out, err = finish(proc, 15)
    finally:
        _kill_if_alive(command)  # a zklock killed at teardown would leave it running
    assert proc.returncode == 7, err


def test_children_zklock_had_before_the_command_are_not_the_commands(hosts, zk_path, tmp_path, spawn):
    """A container's entry script may start a sidecar, then ``exec zklock exec``: the sidecar
    is zklock's child but not the command's. zklock must not wait for it (it held the lock
    until the sidecar exited), signal it or take its exit status."""
    sidecar_file = tmp_path / "sidecar"
    entry = 'sleep 120 >/dev/null 2>&1 & echo $! > "$0"; exec "$@"'  # not on the pipes
    proc = spawn("exec", "--hosts", hosts, f"{zk_path}/l", "--", "sh", "-c", "exit 3",
                 cli=["sh", "-c", entry, str(sidecar_file), *CLI])
    wait_for(lambda: sidecar_file.exists() and sidecar_file.read_text().strip(), 15, "the sidecar")
    sidecar = int(sidecar_file.read_text())
    try:
        _out, err = finish(proc, 20)
        assert proc.returncode == 3, err
        assert _alive(sidecar)
    finally:
        _kill_if_alive(sidecar)


def test_the_commands_status_is_kept_when_zklock_starts_with_sigchld_ignored(hosts, zk_path, spawn):
    """A parent may leave SIGCHLD ignored; the kernel would then reap the command itself and
    its status would be lost (zklock ended in an internal error, 70)."""
    ignoring = [sys.executable, "-c",
                "import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); "
                "os.execv(sys.executable, [sys.executable, '-m', 'zklock.cli', *sys.argv[1:]])"]
    proc = spawn("exec", "--hosts", hosts, f"{zk_path}/l", "--", "sh", "-c", "exit 3", cli=ignoring)
    _out, err = finish(proc, 20)
    assert proc.returncode == 3, err


def test_a_lost_lease_stops_an_orphan_the_command_double_forked(zookeeper, zk_path, tmp_path, spawn):
    """A daemon-like child (re-parented away from the command) that ignores SIGTERM must not
    work on without the lock either: SIGKILL after --grace."""
    marker = tmp_path / "marker"
    proc, err, orphan = _lose_the_lease_while_running(
        zookeeper, spawn, f"{zk_path}/l", marker,
        ["sh", "-c", '( "$0" -c "$1" "$2" ignore & ); exec sleep 600',
         sys.executable, LONG_RUNNING, str(marker)],
    )
    try:
        orphan_alive = _alive(orphan)  # zklock has exited: everything must be gone already
    finally:
        _kill_if_alive(orphan)
    assert not orphan_alive, "the double-forked child ran on after the lock was lost"
    assert proc.returncode == 75, err
    assert "SIGKILL" in err, err


# Ignores SIGTERM and, from the first one on, keeps moving to a new pid in a session of its
# own (fork, the parent exits): a process that one scan-then-kill would miss.  Bounded in time.
HOPPER = r"""
import os, signal, sys, time
marker = sys.argv[1]

def note(text):
    fd = os.open(marker, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (text + "\n").encode())
    os.close(fd)
hopping = False
def on_term(signum, frame):
    global hopping
    hopping = True
signal.signal(signal.SIGTERM, on_term)
# Not zklock's stdout and stderr: a survivor holding them would hold up the test's reads.
devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(devnull, 1)
os.dup2(devnull, 2)
note(f"started {os.getpid()} {os.environ['ZKLOCK_TOKEN']}")
while not hopping:
    time.sleep(0.02)
give_up = time.monotonic() + 30
while time.monotonic() < give_up:
    if os.fork():
        os._exit(0)
    os.setsid()
    note(f"hop {os.getpid()}")
"""


def _processes_running(text: str) -> list[int]:
    """Pids of the live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline and _alive(int(entry.name)):
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize("with_sidecar", [False, True], ids=["alone", "beside-a-sidecar"])
def test_a_lost_lease_stops_a_process_that_keeps_moving_to_new_pids(
    with_sidecar, zookeeper, zk_path, tmp_path, spawn
):
    """A command that answers SIGTERM by forking itself into a new session again and again: a
    process forked between a scan and the SIGKILL is missed by it, so zklock sends SIGKILL on
    every turn until none is left, and exits only then.  Also when zklock had a child of its
    own before the command (a container's sidecar), which changes how zklock waits."""
    marker, sidecar_file = tmp_path / "marker", tmp_path / "sidecar"
    options = {}
    if with_sidecar:
        entry = 'sleep 120 >/dev/null 2>&1 & echo $! > "$0"; exec "$@"'
        options["cli"] = ["sh", "-c", entry, str(sidecar_file), *CLI]
    try:
        proc, err, _pid = _lose_the_lease_while_running(
            zookeeper, spawn, f"{zk_path}/l", marker, [sys.executable, "-c", HOPPER, str(marker)],
            **options,
        )
        left = _processes_running(str(marker))
        if with_sidecar:
            assert _alive(int(sidecar_file.read_text())), "zklock stopped its sidecar too"
    finally:
        for pid in _processes_running(str(marker)):
            _kill_if_alive(pid)
        if sidecar_file.exists():
            _kill_if_alive(int(sidecar_file.read_text()))
    hops = marker.read_text().count("hop ")
    assert hops > 1, "the command never moved: the test tests nothing"
    assert left == [], f"processes of the command ran on after zklock exited ({hops} hops)"
    assert proc.returncode == 75, err
    assert "SIGKILL" in err, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_zklocks_whole_group_reaches_the_command_once(
    signum, hosts, zk_path, tmp_path, spawn
):
    """Outside a terminal's foreground (here: a session of its own, no terminal) the command
    runs in a group of its own: ``kill -- -PGID`` of zklock's group reaches it once, through
    zklock, not once directly and once passed on."""
    path, marker, stop = f"{zk_path}/l", tmp_path / "marker", tmp_path / "stop"
    proc = spawn("exec", "--hosts", hosts, path, "--", sys.executable, "-c", COUNTING, str(marker),
                 str(stop), new_session=True)
    command = _started_pid(marker)
    assert os.getpgid(command) == command != os.getpgid(proc.pid)  # as documented
    _count_rounds(marker, signum, lambda: os.killpg(proc.pid, signum))  # zklock leads its group
    stop.touch()
    _out, err = finish(proc, 15)
    assert proc.returncode == 7, err
    assert _received(marker, signum) == ROUNDS, marker.read_text()


def test_two_copies_of_one_delivery_reach_the_command_once(hosts, zk_path, tmp_path, spawn):
    """timeout(1) signals its child, then its own group; a supervisor may signal zklock's
    pid and its group: zklock gets the signal twice within moments and passes it on once."""
    path, marker, stop = f"{zk_path}/l", tmp_path / "marker", tmp_path / "stop"
    proc = spawn("exec", "--hosts", hosts, path, "--", sys.executable, "-c", COUNTING, str(marker),
                 str(stop), new_session=True)
    _started_pid(marker)
    counted = rounds = 0
    for _ in range(10):  # three rounds whose copies came close enough together
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(0.02)  # zklock has handled the first by now: the kernel does not merge them
        os.killpg(proc.pid, signal.SIGTERM)
        apart = time.monotonic() - sent
        wait_for(lambda seen=counted: _received(marker, signal.SIGTERM) > seen, 10, "the signal")
        time.sleep(0.3)  # a second copy passed on would come within this
        before, counted = counted, _received(marker, signal.SIGTERM)
        # A busy machine may stretch the gap past SAME_DELIVERY: two deliveries, rightly.
        if apart < SAME_DELIVERY / 2:
            assert counted == before + 1, marker.read_text()
            rounds += 1
            if rounds == 3:
                break
    assert rounds == 3, f"only {rounds} rounds sent their copies within {SAME_DELIVERY / 2} s"
    stop.touch()
    _out, err = finish(proc, 15)
    assert proc.returncode == 7, err


# Runs zklock as a terminal session does: a new session whose controlling terminal is the pty
# named by argv[1]; argv[2] "tty" puts fds 0-2 on it, "redirected" leaves them as they are.
WITH_A_TERMINAL = r"""
import os, sys
os.setsid()
terminal = os.open(sys.argv[1], os.O_RDWR)  # the first terminal a session leader opens: its own
if sys.argv[2] == "tty":
    for fd in (0, 1, 2):
        os.dup2(terminal, fd)
os.close(terminal)
os.execv(sys.argv[3], sys.argv[3:])
"""


@pytest.mark.parametrize("fds", ["tty", "redirected"])
def test_ctrl_c_at_the_terminal_reaches_the_command_once(fds, hosts, zk_path, tmp_path, spawn):
    """In its terminal's foreground, zklock and the command share a process group: the
    terminal's Ctrl-C reaches both, and zklock does not pass it on a second time, even with
    stdin, stdout and stderr all redirected away from the terminal."""
    path, marker, stop = f"{zk_path}/l", tmp_path / "marker", tmp_path / "stop"
    master, slave = pty.openpty()
    try:
        cli = [sys.executable, "-c", WITH_A_TERMINAL, os.ttyname(slave), fds, *CLI]
        proc = spawn("exec", "--hosts", hosts, path, "--", sys.executable, "-c", COUNTING, str(marker),
                     str(stop), cli=cli, stdin=subprocess.DEVNULL)
        os.close(slave)
        slave = -1
        _started_pid(marker)
        # Ctrl-C: the line discipline sends SIGINT to the terminal's foreground group.
        _count_rounds(marker, signal.SIGINT, lambda: os.write(master, b"\x03"))
        stop.touch()
        _out, err = finish(proc, 15)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert proc.returncode == 7, err
    assert _received(marker, signal.SIGINT) == ROUNDS, marker.read_text()


# A stand-in for an interactive shell: leads the session, runs its job (argv[3:]) in a group
# of its own in the terminal's foreground, and passes a hang-up on to that group, as bash does.
WITH_A_JOB_SHELL = r"""
import os, signal, sys
os.setsid()
terminal = os.open(sys.argv[1], os.O_RDWR)  # the first terminal a session leader opens: its own
ready_r, ready_w = os.pipe()
job = os.fork()
if job == 0:
    os.setpgid(0, 0)
    os.close(terminal)
    os.read(ready_r, 1)  # until the shell has put the job in the foreground
    os.execv(sys.argv[2], sys.argv[2:])
os.setpgid(job, job)
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
os.tcsetpgrp(terminal, job)
signal.signal(signal.SIGHUP, lambda signum, frame: os.killpg(job, signal.SIGHUP))
os.write(ready_w, b"x")
_, status = os.waitpid(job, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize("leader", ["zklock", "shell"])
def test_a_terminal_hang_up_reaches_the_command_once(leader, hosts, zk_path, tmp_path, spawn):
    """The terminal goes away (a window closed, ssh dropped) while zklock runs in its
    foreground.  The kernel takes the terminal away and signals the session's leader alone:
    zklock, when it leads (``ssh -t host zklock exec ...``), must pass the SIGHUP on; under a
    shell, which passes it on to the whole job, zklock must not pass it on a second time."""
    path, marker, stop = f"{zk_path}/l", tmp_path / "marker", tmp_path / "stop"
    master, slave = pty.openpty()
    try:
        if leader == "zklock":
            cli = [sys.executable, "-c", WITH_A_TERMINAL, os.ttyname(slave), "redirected", *CLI]
        else:
            cli = [sys.executable, "-c", WITH_A_JOB_SHELL, os.ttyname(slave), *CLI]
        proc = spawn("exec", "--hosts", hosts, path, "--", sys.executable, "-c", COUNTING, str(marker),
                     str(stop), cli=cli, stdin=subprocess.DEVNULL)
        os.close(slave)
        slave = -1
        _started_pid(marker)
        os.close(master)  # the hang-up
        master = -1
        wait_for(lambda: _received(marker, signal.SIGHUP) >= 1, 10, "the hang-up to reach the command")
        time.sleep(0.5)  # a second copy, passed on by zklock, would come within this
        stop.touch()
        _out, err = finish(proc, 15)
    finally:
        if slave >= 0:
            os.close(slave)
        if master >= 0:
            os.close(master)
    assert _received(marker, signal.SIGHUP) == 1, marker.read_text()
    assert proc.returncode == 7, err


def test_no_wait_and_timeout_against_a_held_lock(hosts, zk_path, zk_client):
    path = f"{zk_path}/l"
    holder = zklock.Lock(zk_client, path, identifier="the-holder")
    assert holder.acquire()
    try:
        started = time.monotonic()
        result = zklock_run("exec", "--hosts", hosts, "--no-wait", path, "--", "true")
        assert result.returncode == 1, explain(result)
        assert "the-holder" in result.stderr and "--no-wait" in result.stderr
        assert time.monotonic() - started < 5

        started = time.monotonic()
        result = zklock_run("exec", "--hosts", hosts, "--timeout", "0.5", "-E", "42", path, "--", "true")
        elapsed = time.monotonic() - started
        assert result.returncode == 42, explain(result)
        assert "gave up waiting" in result.stderr
        assert 0.5 <= elapsed < 5

        result = zklock_run("exec", "--hosts", hosts, "-n", "-q", path, "--", "true")
        assert result.returncode == 1 and result.stderr == "", explain(result)
        assert len(contenders(zk_client, path)) == 1  # the failed tries left no node
    finally:
        holder.release()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["exec", "/l"], "no COMMAND given"),
        (["exec"], "required: PATH"),
        (["exec", "/l", "--timeout", "3", "true"], "options go before PATH"),
        (["exec", "--timeout", "soon", "/l", "true"], "not a number of seconds"),
        (["exec", "--timeout", "-1", "/l", "true"], "must not be negative"),
        (["exec", "-E", "300", "/l", "true"], "must be 0-255"),
        (["exec", "--no-wait", "--timeout", "1", "/l", "true"], "not allowed with"),
        (["exec", "relative/path", "true"], "must be absolute"),
        (["exec", "/zookeeper/x", "true"], "belong to ZooKeeper"),
        (["exec", "--auth", "nocolon", "/l", "true"], "SCHEME:CREDENTIAL"),
        (["exec", "--grace", "1e10", "/l", "true"], "more seconds than a wait can take"),
        (["exec", "--connect-timeout", "1e10", "/l", "true"], "more seconds than a wait can take"),
        # The handshake carries whole milliseconds in 32 bits: kazoo would fail in its thread.
        (["exec", "--session-timeout", "3000000", "/l", "true"], "must be from 0.001 to"),
        (["status", "--session-timeout", "0.0001", "/l"], "must be from 0.001 to"),
        (["exec", "--hosts", "", "/l", "true"], "--hosts is empty"),
        (["exec", "--identifier", "", "/l", "true"], "--identifier is empty"),
        (["exec", "--hosts", "127.0.0.1:1/zookeeper", "/l", "true"], "bad chroot"),
        (["exec", "--hosts", "127.0.0.1:1/a//b", "/l", "true"], "bad chroot"),
        (["status", "--hosts", "127.0.0.1:1/a/", "/l"], "bad chroot"),
        (["status"], "required: PATH"),
        (["server", "--ensemble", "0"], "--ensemble"),
        (["frobnicate"], "invalid choice"),
        ([], "a command is needed"),
    ],
)
def test_bad_arguments_give_usage_status_and_a_clear_message(args, message):
    if args[:1] == ["exec"]:  # never reaches a server: the arguments are checked first
        args = ["exec", "--hosts", "127.0.0.1:1", *args[1:]]
    result = zklock_run(*args)
    assert result.returncode == 64, explain(result)
    assert message in result.stderr, explain(result)
    assert "Traceback" not in result.stderr


def test_a_script_without_a_shebang_line_runs_with_sh_as_flock_runs_it(hosts, zk_path, tmp_path):
    # execvp(3), and so flock(1), runs a file the kernel cannot run with /bin/sh.
    script = tmp_path / "no-shebang"
    script.write_text('echo "ran with $# arguments: $1"\nexit 3\n')
    script.chmod(0o755)
    result = zklock_run("exec", "--hosts", hosts, f"{zk_path}/l", "--", str(script), "one")
    assert result.returncode == 3, explain(result)
    assert result.stdout == "ran with 1 arguments: one\n", explain(result)
    on_path = zklock_run("exec", "--hosts", hosts, f"{zk_path}/l", "--", "no-shebang", "two",
                         PATH=f"{tmp_path}:{os.environ['PATH']}")
    assert on_path.returncode == 3 and "arguments: two" in on_path.stdout, explain(on_path)


def test_a_lock_path_under_an_ephemeral_node_is_a_usage_error(hosts, zk_path, zk_client):
    ephemeral = f"{zk_path}/ephemeral"
    zk_client.create(ephemeral, ephemeral=True, makepath=True)
    result = zklock_run("exec", "--hosts", hosts, "-n", f"{ephemeral}/l", "--", "true")
    assert result.returncode == 64, explain(result)
    assert "ephemeral node" in result.stderr, explain(result)
    zk_client.delete(ephemeral)


def test_command_not_found_127_and_not_executable_126(tmp_path):
    # Checked before connecting: the unreachable hosts are never tried.
    result = zklock_run("exec", "--hosts", "127.0.0.1:1", "/l", "--", "no-such-command-zklock")
    assert result.returncode == 127, explain(result)
    assert "command not found" in result.stderr
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    result = zklock_run("exec", "--hosts", "127.0.0.1:1", "/l", "--", str(script))
    assert result.returncode == 126, explain(result)


def test_unreachable_hosts_exit_69_in_bounded_time():
    for args in (["exec", "/l", "--", "true"], ["status", "/l"]):
        started = time.monotonic()
        result = zklock_run(args[0], "--hosts", "127.0.0.1:1", "--connect-timeout", "1", *args[1:])
        assert result.returncode == 69, explain(result)
        assert "could not connect to ZooKeeper at 127.0.0.1:1 within 1 s" in result.stderr
        assert time.monotonic() - started < 6


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """A local listener that accepts connections (the kernel does) and never answers: a hung
    server, or a port that is not ZooKeeper's."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(15)
        yield listener


@pytest.mark.parametrize("subcommand", [["exec", "/l", "--", "true"], ["status", "/l"]])
def test_connect_timeout_bounds_a_server_that_never_answers(subcommand, silent_server):
    """The handshake read of kazoo's connection thread lasts the session timeout (20 s here):
    zklock must not wait for it, neither to connect nor to stop."""
    port = silent_server.getsockname()[1]
    started = time.monotonic()
    result = zklock_run(subcommand[0], "--hosts", f"127.0.0.1:{port}", "--session-timeout", "20",
                        "--connect-timeout", "2", *subcommand[1:], timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 69, explain(result)
    assert f"could not connect to ZooKeeper at 127.0.0.1:{port} within 2 s" in result.stderr
    assert elapsed < 8, elapsed


@pytest.fixture
def mute_after_handshake() -> Iterator[int]:
    """A local server that answers a client's handshake (a session) and then nothing at all:
    a server that hangs once connected.  Yields its port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    connections: list[socket.socket] = []
    done = threading.Event()

    def answer_handshakes() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:  # timed out: look at done again
                continue
            connections.append(connection)
            connection.settimeout(5)
            try:
                (length,) = struct.unpack("!i", _read_exactly(connection, 4))
                request = _read_exactly(connection, length)
                # ConnectRequest: protocol version, last zxid seen, timeout, session id, ...
                _version, _zxid, timeout, _session = struct.unpack("!iqiq", request[:24])
                # ConnectResponse: version, timeout, session id, password (16 bytes), read-only
                reply = struct.pack("!iiqi", 0, timeout, 0x5EED, 16) + bytes(16) + b"\0"
                connection.sendall(struct.pack("!i", len(reply)) + reply)
            except OSError:
                pass

    server = threading.Thread(target=answer_handshakes, name="mute-after-handshake")
    server.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        server.join(5)
        for connection in connections:
            connection.close()
        listener.close()


def _read_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


@pytest.mark.parametrize("subcommand", [["exec", "/l", "--", "true"], ["status", "/l"]])
def test_connect_timeout_bounds_a_server_that_answers_the_handshake_and_nothing_else(
    subcommand, mute_after_handshake
):
    # Connected, then no answer to the first request: zklock gives up after --connect-timeout
    # and does not wait that long again to close the session on its way out.
    started = time.monotonic()
    result = zklock_run(subcommand[0], "--hosts", f"127.0.0.1:{mute_after_handshake}",
                        "--session-timeout", "30", "--connect-timeout", "4", *subcommand[1:],
                        timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 69, explain(result)
    assert elapsed < 7, elapsed  # 4 s, then at most 1 s to stop; it took 8 before


def test_a_signal_while_connecting_to_a_silent_server_ends_zklock_at_once(silent_server, spawn):
    port = silent_server.getsockname()[1]
    proc = spawn("exec", "--hosts", f"127.0.0.1:{port}", "--session-timeout", "30",
                 "--connect-timeout", "30", "/l", "--", "true")
    connection, _ = silent_server.accept()  # zklock now waits in the handshake
    with connection:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = finish(proc, 60)
        elapsed = time.monotonic() - started
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert elapsed < 8, elapsed


def test_a_usage_error_with_stderr_closed_is_still_64():
    for args in (["exec", "/l"], ["exec", "--identifier", "", "/l", "true"], ["frobnicate"]):
        result = subprocess.run(["sh", "-c", 'exec "$@" 2>&-', "sh", *CLI, *args],
                                capture_output=True, text=True, timeout=30, env=_env())
        assert result.returncode == 64, (args, explain(result))


def test_status_with_stdout_closed_says_so_and_exits_74(hosts, zk_path):
    result = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *CLI, "status", "--hosts", hosts,
                             f"{zk_path}/l"], capture_output=True, text=True, timeout=30, env=_env())
    assert result.returncode == 74, explain(result)
    assert "cannot write the status: stdout is closed" in result.stderr, explain(result)
    assert "Traceback" not in result.stderr


def test_a_missing_chroot_is_refused_with_a_clear_message(hosts, zk_path, zk_client):
    chroot = f"{zk_path}/missing"
    for args in (["status", "/l"], ["exec", "/l", "--", "true"], ["exec", "/a/b", "--", "true"]):
        result = zklock_run(args[0], "--hosts", f"{hosts}{chroot}", *args[1:])
        assert result.returncode == 64, explain(result)
        assert f"the chroot {chroot} does not exist on ZooKeeper" in result.stderr, explain(result)
        assert "UserWarning" not in result.stderr and "Traceback" not in result.stderr
    assert not zk_client.exists(chroot)  # nothing was made under a mistyped chroot
    zk_client.ensure_path(chroot)
    result = zklock_run("exec", "--hosts", f"{hosts}{chroot}", "/l", "--", "sh", "-c", 'echo "$ZKLOCK_PATH"')
    assert result.returncode == 0 and result.stdout == "/l\n", explain(result)
    assert zk_client.exists(f"{chroot}/l")


def test_auth_digest_works_and_an_unknown_scheme_is_refused(hosts, zk_path, zk_client):
    # An open test root, as an operator would make it: with credentials, the lock path gets
    # zklock's owner-only ACL, and the anonymous clean-up must still be able to delete it.
    zk_client.ensure_path(zk_path)
    path = f"{zk_path}/l"
    result = zklock_run("exec", "--hosts", hosts, "--auth", "digest:alice:secret", path, "--", "true")
    assert result.returncode == 0, explain(result)
    result = zklock_run("exec", "--hosts", hosts, path, "--", "true", ZKLOCK_AUTH="digest:alice:secret")
    assert result.returncode == 0, explain(result)
    result = zklock_run("exec", "--hosts", hosts, "--auth", "nosuchscheme:x", path, "--", "true")
    assert result.returncode == 77, explain(result)
    # Without the credentials the lock path refuses newcomers: exit 77 (permission), not 1.
    result = zklock_run("exec", "--hosts", hosts, "--auth", "digest:mallory:guess", path, "--", "true")
    assert result.returncode == 77, explain(result)
    assert "may not join the lock's queue" in result.stderr, explain(result)


def test_exec_naming_curator_names_the_node_as_curators_mutex(hosts, zk_path):
    path = f"{zk_path}/job"
    result = zklock_run(
        "exec", "--hosts", hosts, "--naming", "curator", path, "--", "sh", "-c", 'echo "$ZKLOCK_NODE"'
    )
    assert result.returncode == 0, explain(result)
    name = result.stdout.strip().rsplit("/", 1)[1]
    uuid36 = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    assert re.fullmatch(rf"_c_{uuid36}-lock-\d{{10}}", name), name
    result = zklock_run("exec", "--hosts", hosts, "--naming", "zookeeper", path, "--", "true")
    assert result.returncode == 64, explain(result)


def test_help_documents_the_exit_statuses():
    result = zklock_run("exec", "--help")
    assert result.returncode == 0
    for text in ("exit status", "1 (or -E CODE)", "64", "69", "75", "126", "127", "128+N", "ZKLOCK_TOKEN"):
        assert text in result.stdout, text


# -------------------------------------------------------------------------------- status
def test_status_and_wait_display_with_a_holder_and_two_waiters(hosts, zk_path, zk_client, spawn):
    path = f"{zk_path}/l"
    holder = zklock.Lock(zk_client, path, identifier="holder-1")
    assert holder.acquire()
    waiters = []
    try:
        first_lines = []
        for i in (1, 2):
            waiters.append(spawn("exec", "--hosts", hosts, "--identifier", f"waiter-{i}", path, "--", "true"))
            wait_for(lambda i=i: len(contenders(zk_client, path)) == 1 + i, 15, f"waiter {i} to queue")
        for waiter in waiters:
            # The display's first poll comes a moment after the wait starts: read it before the
            # holder releases, or a slow machine shows the next holder instead.
            assert waiter.stderr is not None
            ready, _, _ = select.select([waiter.stderr], [], [], 15)
            assert ready, "no wait display from a waiter"
            first_lines.append(waiter.stderr.readline())

        result = zklock_run("status", "--hosts", hosts, "--json", path)
        assert result.returncode == 0, explain(result)
        doc = json.loads(result.stdout)
        assert doc["version"] == 1 and doc["path"] == path
        assert doc["holder"]["identifier"] == "holder-1" and doc["holder"]["position"] == 0
        lease = holder.lease
        assert lease is not None
        assert doc["holder"]["token"] == lease.token and doc["holder"]["node"] == lease.node
        assert doc["holder"]["session_id"] == f"0x{zk_client.client_id[0]:x}"
        assert [w["identifier"] for w in doc["waiters"]] == ["waiter-1", "waiter-2"]
        assert [w["position"] for w in doc["waiters"]] == [1, 2]
        entries = [doc["holder"], *doc["waiters"]]
        assert [e["token"] for e in entries] == sorted(e["token"] for e in entries)
        for entry in entries:
            assert set(entry) == {
                "position", "identifier", "node", "token", "session_id", "created_at", "age_seconds"
            }
            assert re.fullmatch(r"0x[0-9a-f]+", entry["session_id"])
            assert entry["node"].startswith(f"{path}/") and 0 <= entry["age_seconds"] < 60

        result = zklock_run("status", "--hosts", hosts, path)
        assert result.returncode == 0, explain(result)
        lines = result.stdout.splitlines()
        assert lines[0] == f"{path}: held by 'holder-1', 2 waiting"
        assert lines[1].split() == ["#", "ROLE", "IDENTIFIER", "TOKEN", "SESSION", "AGE", "NODE"]
        assert lines[2].split()[:4] == ["0", "holder", "holder-1", str(lease.token)]
        assert lines[3].split()[:3] == ["1", "waiting", "waiter-1"]
        assert lines[4].split()[:3] == ["2", "waiting", "waiter-2"]
    finally:
        holder.release()
    for waiter, first_line in zip(waiters, first_lines):
        _out, rest = finish(waiter, 30)
        err = first_line + rest
        assert waiter.returncode == 0, err
        # stderr is not a terminal: plain lines, the holder named, then the acquisition.
        assert "waiting for" in err and "held by 'holder-1'" in err and "acquired" in err, err
    result = zklock_run("status", "--hosts", hosts, path)
    assert result.stdout == f"{path}: free (no holder, nobody waiting)\n"


def test_wait_display_on_a_terminal_is_one_line_updated_in_place(hosts, zk_path, zk_client, spawn):
    path = f"{zk_path}/l"
    holder = zklock.Lock(zk_client, path, identifier="tty-holder")
    assert holder.acquire()
    master, slave = pty.openpty()
    try:
        waiter = spawn("exec", "--hosts", hosts, path, "--", "true", stderr=slave)
        os.close(slave)
        seen = b""
        deadline = time.monotonic() + 15
        while seen.count(b"\r\x1b[2Kzklock: waiting for") < 2 and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                seen += os.read(master, 4096)
        assert seen.count(b"\r\x1b[2Kzklock: waiting for") >= 2, seen
        assert b"held by 'tty-holder'" in seen and b"\n" not in seen  # updated in place
        assert b": 1 ahead, waited " in seen  # the news first, within 80 columns
        holder.release()
        waiter.wait(timeout=15)
        assert waiter.returncode == 0
    finally:
        if holder.locked():
            holder.release()
        os.close(master)


def test_status_json_of_a_free_lock(hosts, zk_path):
    result = zklock_run("status", "--hosts", hosts, "--json", f"{zk_path}/none")
    assert result.returncode == 0, explain(result)
    expected = {"version": 1, "path": f"{zk_path}/none", "holder": None, "waiters": []}
    assert json.loads(result.stdout) == expected


# -------------------------------------------------------------------------------- examples
def test_example_exec_script(hosts, zk_path):
    result = subprocess.run(
        ["sh", str(EXAMPLES / "exec.sh"), f"{zk_path}/example"],
        capture_output=True, text=True, timeout=60,
        env=_env(ZKLOCK_HOSTS=hosts, ZKLOCK=" ".join(CLI)),
    )
    assert result.returncode == 0, explain(result)
    assert result.stdout.splitlines()[-1] == "OK"
    assert "held by 'long-job'" in result.stdout
    assert "the background job had: finished" in result.stdout


def test_example_exec_script_without_hosts_runs_on_a_throwaway_server_and_stops_it():
    """Without ``ZKLOCK_HOSTS`` the example starts ``zklock server`` itself (a container where
    Docker has the image, as here) and stops it at the end: nothing of it is left running."""
    from zklock.cli.server import ContainerBackend

    reason = ContainerBackend.unavailable(None, True)
    if reason is not None:
        skip_outside_ci(f"docker backend unavailable: {reason}")
    result = subprocess.run(
        ["sh", str(EXAMPLES / "exec.sh")], capture_output=True, text=True, timeout=150,
        env=_env(ZKLOCK=" ".join(CLI), ZKLOCK_ZOOKEEPER_PULL="never"),
    )
    assert result.returncode == 0, explain(result)
    started = re.fullmatch(r"0\. started a throwaway ZooKeeper at 127\.0\.0\.1:(\d+)",
                           result.stdout.splitlines()[0])
    assert started, explain(result)
    assert result.stdout.splitlines()[-1] == "OK"
    assert _containers_on([int(started.group(1))]) == [], "the throwaway server was left running"


# -------------------------------------------------------------------------------- server
def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _containers_on(ports: list[int]) -> list[str]:
    import docker

    client = docker.from_env()
    try:
        found = []
        for container in client.containers.list(all=True, filters={"label": "io.zklock.testing"}):
            bindings = container.ports.get("2181/tcp") or []
            if any(int(b["HostPort"]) in ports for b in bindings):
                found.append(container.id)
        return found
    finally:
        client.close()


def _container_exists(container_id: str) -> bool:
    import docker

    client = docker.from_env()
    try:
        return bool(client.containers.list(all=True, filters={"id": container_id}))
    finally:
        client.close()


def _read_first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "zklock server printed nothing in time"
    return proc.stdout.readline().strip()


@pytest.mark.parametrize(("backend", "size"), [("java", 1), ("java", 3), ("docker", 1), ("docker", 3)])
def test_server_serves_a_lock_and_stops_cleanly_on_sigint(backend, size, spawn):
    from zklock.cli.server import ContainerBackend, JavaBackend

    reason = JavaBackend.unavailable() if backend == "java" else ContainerBackend.unavailable(None, True)
    if reason is not None:
        skip_outside_ci(f"{backend} backend unavailable: {reason}")
    server = spawn("server", "--backend", backend, "--ensemble", str(size), "--port", "0",
                   ZKLOCK_ZOOKEEPER_PULL="never")
    connect_string = _read_first_line(server, 90)
    assert re.fullmatch(r"127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+)*", connect_string), connect_string
    ports = [int(part.rpartition(":")[2]) for part in connect_string.split(",")]
    assert len(ports) == size
    if backend == "java":
        owned = _children(server.pid)
        assert len(owned) == size
    else:
        owned_containers = _containers_on(ports)
        assert len(owned_containers) == size

    result = zklock_run("exec", "--hosts", connect_string, "/dev-lock", "--",
                        "sh", "-c", 'echo "$ZKLOCK_TOKEN"')
    assert result.returncode == 0, explain(result)
    assert int(result.stdout) > 0

    server.send_signal(signal.SIGINT)
    _out, err = finish(server, 60)
    assert server.returncode == 0, err
    if backend == "java":
        assert not [pid for pid in owned if _alive(pid)]
    else:
        assert not [c for c in owned_containers if _container_exists(c)]


def test_server_with_stdout_closed_serves_and_stops_cleanly(spawn):
    """``zklock server >&-``: the connect string cannot be printed on stdout, but it is on
    stderr too, and the server is still of use; it must neither crash nor leave a container."""
    from zklock.cli.server import ContainerBackend

    reason = ContainerBackend.unavailable(None, True)
    if reason is not None:
        skip_outside_ci(f"docker backend unavailable: {reason}")
    without_stdout = ["sh", "-c", 'exec "$@" >&-', "sh", *CLI]
    server = spawn("server", "--backend", "docker", "--port", "0", cli=without_stdout,
                   ZKLOCK_ZOOKEEPER_PULL="never")
    assert server.stderr is not None
    line = ""
    deadline = time.monotonic() + 90
    while "serving on" not in line and time.monotonic() < deadline:
        if select.select([server.stderr], [], [], 1)[0]:
            line = server.stderr.readline()
            if not line:
                break  # it exited
    assert "serving on" in line, line
    connect_string = line.split("serving on ", 1)[1].split(";", 1)[0]
    owned = _containers_on([int(part.rpartition(":")[2]) for part in connect_string.split(",")])
    assert owned
    server.send_signal(signal.SIGINT)
    _out, err = finish(server, 60)
    assert server.returncode == 0, err
    assert "Traceback" not in err
    assert not [c for c in owned if _container_exists(c)]
