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
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

import zklock
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
        *args: str, stderr: int | None = subprocess.PIPE, cli: Sequence[str] = CLI, **extra_env: str
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [*cli, *args], stdout=subprocess.PIPE, stderr=stderr, text=True, env=_env(**extra_env)
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
    """Spawned zklock processes start with SIGINT acted on, however pytest itself was started.

    A job that a non-interactive shell starts in the background (``.ci/run &``) inherits SIGINT
    ignored, and passes that on to every child; zklock, as documented, leaves a signal that was
    ignored at start ignored, and would sit out the SIGINTs these tests send.  A signal that is
    caught here is reset to its default in an exec'd child, so catching it gives the children
    the SIGINT of a terminal's job.  (``test_a_sigint_ignored_at_start_stays_ignored`` checks
    the other case on purpose.)
    """
    old = signal.getsignal(signal.SIGINT)
    if old == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if old == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


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
    wait_for(lambda: marker.exists() and "started" in marker.read_text(), 15, "the child to start")
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
    wait_for(lambda: marker.exists() and "started" in marker.read_text(), 15, "the child to start")
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


def test_lease_lost_in_a_partition_kills_a_child_that_ignores_sigterm(zookeeper, zk_path, tmp_path, spawn):
    """The connection is black-holed: exec declares the lease lost by its own clock, sends
    SIGTERM, and SIGKILL after --grace to a child that ignores SIGTERM."""
    path, marker = f"{zk_path}/l", tmp_path / "marker"
    if len(zookeeper.addresses) != 1:
        skip_outside_ci("the TCP proxy fronts a single server")
    with TcpProxy(zookeeper.connect_string) as proxy:
        proc = spawn("exec", "--hosts", proxy.connect_string, "--session-timeout", "1", "--grace", "1",
                     path, "--", sys.executable, "-c", LONG_RUNNING, str(marker), "ignore")
        wait_for(lambda: marker.exists() and "started" in marker.read_text(), 15, "the child to start")
        child_pid = int(marker.read_text().split()[1])
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


def test_a_lost_lease_stops_the_processes_the_command_started_too(zookeeper, zk_path, tmp_path, spawn):
    """A shell script as COMMAND: its own child, which ignores SIGTERM, must not work on
    without the lock once the shell is gone; it gets SIGKILL after --grace too."""
    path, marker = f"{zk_path}/l", tmp_path / "marker"
    if len(zookeeper.addresses) != 1:
        skip_outside_ci("the TCP proxy fronts a single server")
    with TcpProxy(zookeeper.connect_string) as proxy:
        proc = spawn("exec", "--hosts", proxy.connect_string, "--session-timeout", "1", "--grace", "1",
                     path, "--", "sh", "-c", '"$0" -c "$1" "$2" ignore; echo after',
                     sys.executable, LONG_RUNNING, str(marker))
        wait_for(lambda: marker.exists() and "started" in marker.read_text(), 15, "the child to start")
        grandchild = int(marker.read_text().split()[1])
        proxy.blackhole()
        _out, err = finish(proc, 20)
        proxy.heal()
    assert proc.returncode == 75, err
    assert "SIGKILL" in err, err
    wait_for(lambda: not _alive(grandchild), 5, "the command's own child to be gone")


def test_a_lost_lease_stops_the_command_even_with_stderr_closed(zookeeper, zk_path, tmp_path, spawn):
    """Started with ``2>&-`` (as from some cron set-ups): nothing can be written, and the
    command must be stopped all the same."""
    path, marker = f"{zk_path}/l", tmp_path / "marker"
    if len(zookeeper.addresses) != 1:
        skip_outside_ci("the TCP proxy fronts a single server")
    without_stderr = ["sh", "-c", 'exec "$@" 2>&-', "sh", *CLI]
    with TcpProxy(zookeeper.connect_string) as proxy:
        proc = spawn("exec", "--hosts", proxy.connect_string, "--session-timeout", "1", "--grace", "1",
                     path, "--", sys.executable, "-c", LONG_RUNNING, str(marker), "ignore",
                     stderr=None, cli=without_stderr)
        wait_for(lambda: marker.exists() and "started" in marker.read_text(), 15, "the child to start")
        child_pid = int(marker.read_text().split()[1])
        proxy.blackhole()
        finish(proc, 20)
        proxy.heal()
    assert proc.returncode == 75
    wait_for(lambda: not _alive(child_pid), 5, "the command to be gone")


def test_a_short_connection_drop_leaves_the_child_running(zookeeper, zk_path, tmp_path, spawn):
    """Connection lost and back within the session: the lock was only in doubt, the child
    keeps running, and zklock still exits with the child's status."""
    path, marker = f"{zk_path}/l", tmp_path / "marker"
    if len(zookeeper.addresses) != 1:
        skip_outside_ci("the TCP proxy fronts a single server")
    with TcpProxy(zookeeper.connect_string) as proxy:
        proc = spawn("exec", "--hosts", proxy.connect_string, "--session-timeout", "4",
                     path, "--", sys.executable, "-c", LONG_RUNNING, str(marker), "exit")
        wait_for(lambda: marker.exists() and "started" in marker.read_text(), 15, "the child to start")
        assert proxy.drop() >= 1
        time.sleep(1.5)  # kazoo reconnects at once, with the same session
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _out, err = finish(proc, 15)
    assert proc.returncode == 7, err  # the child's own status: the lock was never lost
    assert "in doubt" in err and "still held" in err, err
    assert "lost (" not in err


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
        (["exec", "--hosts", "", "/l", "true"], "--hosts is empty"),
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
