"""Every example in examples/ runs against the test ZooKeeper, passes, and cleans up its znodes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from kazoo.client import KazooClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES_ROOT = "/zklock-examples"


def run_example(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("ZKLOCK_HOSTS", "ZKLOCK_ZOOKEEPER_HOSTS")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True, text=True, timeout=120, env=environ, cwd=EXAMPLES.parent,
    )


def example_nodes(client) -> set[str]:
    return set(client.get_children(EXAMPLES_ROOT)) if client.exists(EXAMPLES_ROOT) else set()


@pytest.fixture
def no_example_nodes_left(zk_client):
    before = example_nodes(zk_client)
    yield
    assert example_nodes(zk_client) <= before, "an example left znodes behind"


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def passing_output(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run an example, check that it exited 0, and return what it printed."""
    result = run_example(name, *args, env=env)
    assert result.returncode == 0, explain(result)
    return result.stdout


@pytest.mark.usefixtures("no_example_nodes_left")
def test_with_statement(zookeeper):
    out = passing_output("with_statement.py", zookeeper.connect_string)
    assert "alice holds /zklock-examples/with-" in out
    assert "bob acquire(blocking=False) -> False" in out
    assert "bob acquire(timeout=0.5) -> False" in out
    assert "bob hold(timeout=0.2) raised LockTimeout" in out
    assert "alice left the block: lease released, locked()=False" in out
    assert re.search(r"bob holds it, token \d+ > \d+: True", out)  # a later holder, a higher token
    assert "a second release() raises NotHeld" in out
    assert "contender nodes left under the lock: 0" in out
    assert out.rstrip().endswith("OK")



@pytest.mark.usefixtures("no_example_nodes_left")
def test_lean_handler(zookeeper):
    out = passing_output("lean_handler.py", zookeeper.connect_string, "--cycles", "20")
    assert "stock client handler: SequentialThreadingHandler" in out
    assert "lean client handler:  LeanHandler" in out
    assert "stock acquire(blocking=False) -> False" in out  # the lean client's lock excludes it
    assert "lean acquire(blocking=False) -> False" in out  # and the other way round
    assert re.search(r"stock holds it next \(token \d+\)", out)
    assert "inline watch callback fired: True" in out
    assert re.search(r"over 20 cycles: stock \d+ us, lean \d+ us", out)
    assert "contender nodes left under the lock: 0" in out
    assert out.rstrip().endswith("OK")


@pytest.mark.usefixtures("no_example_nodes_left")
def test_request_count(zookeeper):
    out = passing_output("request_count.py", zookeeper.connect_string)
    lines = {" ".join(line.split()) for line in out.splitlines()}  # alignment spaces aside
    for cycle in ("first", "second"):
        assert f"zklock Lock, {cycle} cycle: 3 requests ['Create2', 'GetChildren', 'Delete']" in lines
    assert "kazoo Lock, first cycle: 4 requests ['Exists', 'Create', 'GetChildren', 'Delete']" in lines
    assert (
        "kazoo Lock, second cycle: 4 requests ['GetChildren', 'Create', 'GetChildren', 'Delete']"
        in lines
    )
    assert "waiter holds after the release: True" in out
    assert "waiter's traffic during the hand-off: [('event', 'deleted')]" in out
    assert "contender nodes left under the lock: 0" in out
    assert out.rstrip().endswith("OK")


def test_lean_handler_refuses_bad_arguments():
    result = run_example("lean_handler.py", "127.0.0.1:1", "--cycles", "0")
    assert result.returncode == 2, explain(result)
    assert "--cycles must be at least 1" in result.stderr


@pytest.mark.usefixtures("no_example_nodes_left")
def test_decorator(zookeeper):
    out = passing_output("decorator.py", zookeeper.connect_string)
    assert "@lock: held inside the call: True; after it: False" in out
    assert "@zklock.locked: 4 calls from 4 threads, one at a time" in out
    assert "method: restock(5) -> 5, restock(3) -> 8" in out
    assert "method while a rival holds the lock: LockTimeout" in out
    assert "@lock.hold(timeout=3): ran with fencing token" in out
    assert "FAILED" not in out
    assert out.rstrip().endswith("OK")


@pytest.mark.usefixtures("no_example_nodes_left")
def test_contention_default_run(zookeeper):
    result = run_example("contention.py", zookeeper.connect_string)
    assert result.returncode == 0, explain(result)
    out = result.stdout
    assert "6 processes contend for" in out
    for check in (
        "PASS  every worker finished",
        "PASS  72 critical sections ran",
        "PASS  no two critical sections overlapped",
        "PASS  the counter is 72 (no lost update)",
        "PASS  each holder read the previous holder's write",
        "PASS  fencing tokens increase in holding order",
        "all checks passed",
    ):
        assert check in out, explain(result)
    # The timeline: one numbered row per section, then one chart row per worker.
    rows = [line.split() for line in out.splitlines()]
    numbered = [int(row[0]) for row in rows if row and row[0].isdigit() and "->" in row]
    assert numbered == list(range(1, 73))
    for worker in range(6):
        assert f"  worker-{worker:<3d}|" in out


@pytest.mark.usefixtures("no_example_nodes_left")
def test_contention_checks_catch_a_missing_lock(zookeeper):
    # The same workers with no lock: the checks must fail, or they prove nothing.
    result = run_example(
        "contention.py", zookeeper.connect_string, "--workers", "4", "--rounds", "3", "--hold", "0.05",
        "--without-lock",
    )
    assert result.returncode == 1, explain(result)
    assert "FAIL  no two critical sections overlapped" in result.stdout
    assert "check(s) FAILED" in result.stdout


@pytest.mark.usefixtures("no_example_nodes_left")
def test_fencing(zookeeper):
    out = passing_output("fencing.py", zookeeper.connect_string)
    assert "bob: write accepted" in out
    assert "refused by the store: write of '150 (alice, stale)'" in out
    assert "alice's lease now says lost" in out
    assert "leaving alice's `with` block raised LockLost" in out
    assert "alice holds the lock again" in out
    assert out.rstrip().endswith("OK")


@pytest.mark.usefixtures("no_example_nodes_left")
def test_retry_policy(zookeeper):
    out = passing_output("retry_policy.py", zookeeper.connect_string)
    assert re.search(r"healthy: held at once, token \d+; retries: 0\n", out)
    assert out.count("[zklock.retry] ") >= 3  # two before giving up, at least one to ride it out
    assert re.search(r"blackholed: acquire raised ConnectionLost after 3 tries in [\d.]+ s", out)
    assert re.search(r"patient: held once the proxy healed \(after 1 s\); retries: [1-9]", out)
    assert "contender nodes left under the lock: 0" in out
    assert out.rstrip().endswith("OK")


@pytest.mark.usefixtures("no_example_nodes_left")
def test_asyncio_tasks(zookeeper):
    out = passing_output("asyncio_tasks.py", zookeeper.connect_string)
    assert "5 tasks held the lock one after another, tokens increasing: True" in out
    assert "the event loop ran on meanwhile: True" in out
    assert "queue while the holder holds: ['holder', 'cancelled']" in out
    assert "after cancelling the waiting task: ['holder']" in out
    assert "a task with timeout=0.2 while the holder holds: LockTimeout" in out
    assert "contender nodes left under the lock: 0" in out
    assert out.rstrip().endswith("OK")


@pytest.mark.usefixtures("no_example_nodes_left")
def test_cancel(zookeeper):
    out = passing_output("cancel.py", zookeeper.connect_string)
    assert "queue: ['alice', 'bob'] (bob's worker waits)" in out
    assert re.search(r"bob's acquire raised AcquireCancelled [\d.]+ s after cancel\(\)", out)
    assert "queue: ['alice']; alice's lease still valid: True" in out
    assert "bob acquire(timeout=0.3) after the cancel -> False" in out
    assert re.search(r"alice released; bob acquire\(timeout=5\) -> True, token \d+", out)
    assert "contender nodes left under the lock: 0" in out
    assert out.rstrip().endswith("OK")


@pytest.mark.usefixtures("no_example_nodes_left")
def test_lease_listener(zookeeper):
    out = passing_output("lease_listener.py", zookeeper.connect_string)
    assert re.search(r"  listener: lease \d+ -> suspended\n", out)
    assert "reconnected with the same session: may write: True" in out
    assert "lease lost: may write: False" in out
    assert "leaving the block raised LockLost" in out
    # A second drop may come before the loss: the server closes the expired session's connection.
    assert re.search(r"first lease went: held -> suspended -> held( -> suspended)? -> lost\n", out)
    assert "second lease went: held -> released" in out
    assert "contender nodes left under the lock: 0" in out
    assert out.rstrip().endswith("OK")


@pytest.mark.usefixtures("no_example_nodes_left")
def test_hold_raise_on_lost(zookeeper):
    out = passing_output("hold_raise_on_lost.py", zookeeper.connect_string)
    assert "batch 1: leaving the block raised LockLost" in out
    assert "batch 2: left the block without an exception; lease lost" in out
    assert "batches to redo: [2]" in out
    assert "batch 3: lease released" in out
    assert "contender nodes left under the lock: 0" in out
    assert out.rstrip().endswith("OK")


@pytest.mark.usefixtures("no_example_nodes_left")
def test_hosts_from_the_environment(zookeeper):
    result = run_example("with_statement.py", env={"ZKLOCK_HOSTS": zookeeper.connect_string})
    assert result.returncode == 0, explain(result)
    assert "throwaway" not in result.stderr  # it used the given server, not a container
    assert result.stdout.rstrip().endswith("OK")


def test_contention_refuses_bad_arguments():
    result = run_example("contention.py", "127.0.0.1:1", "--workers", "0")
    assert result.returncode == 2
    assert "must be positive" in result.stderr


@pytest.mark.usefixtures("no_example_nodes_left")
def test_acl(zookeeper):
    out = passing_output("acl.py", zookeeper.connect_string)
    assert re.search(r"lock path ACL: digest:reports:\S+ ALL, world:anyone READ", out)
    assert "worker-b (same credentials) acquire(timeout=0.3) -> False" in out
    assert "worker-b's view of the queue: ['reports-worker-a']" in out
    assert "the intruder reads the queue: ['reports-worker-a']" in out
    assert "the intruder's acquire raised NoAuthorization: " in out
    assert "the intruder's delete of the holder's node raised NoAuthorization" in out
    assert "worker-a's lease is still valid: True" in out
    assert re.search(r"after the release worker-b holds it, token \d+", out)
    assert out.rstrip().endswith("OK")


@pytest.mark.usefixtures("no_example_nodes_left")
def test_fork_safety(zookeeper):
    out = passing_output("fork_safety.py", zookeeper.connect_string)
    assert "child: lease.valid -> False" in out
    assert "child: lease.check() raised UsedAfterFork" in out
    assert "child: lock.release() raised UsedAfterFork" in out
    assert "child: its own lock, acquire(timeout=0.3) -> False" in out  # the parent still holds it
    assert "parent: child exited with 0" in out
    assert "parent: still holds the lock: True" in out
    assert out.rstrip().endswith("OK")


@pytest.mark.usefixtures("no_example_nodes_left")
def test_curator_naming(zookeeper):
    out = passing_output("curator_naming.py", zookeeper.connect_string)
    assert re.search(r"  node  _c_[0-9a-f-]{36}-lock-\d{10}\n", out), out
    assert "bob (zklock, default naming) acquire(timeout=0.5) -> False" in out
    assert "[('alice', '0000000000'), ('10.0.0.7', '0000000001')]" in out
    assert "kazoo Lock(extra_lock_patterns=['-lock-']) acquire(timeout=0.5) -> LockTimeout" in out
    assert "acquired while alice holds: WRONG" in out  # kazoo 2.11 does not read Curator's names
    before_release = out.split("alice released")[0]
    assert re.search(r"key '[0-9a-f]{16}' +[0-9a-f]{32}__lock__\d{10}\n$", before_release), out  # last
    assert "bob acquire(timeout=0.5) -> False (the Curator process holds now)" in out
    assert "the Curator process released; bob holds it" in out
    assert "contender nodes left under the lock: 0" in out
    assert out.rstrip().endswith("OK")


def test_tls(zookeeper_tls, tls_env):
    result = run_example("tls.py", env=tls_env)
    assert result.returncode == 0, explain(result)
    out = result.stdout
    assert "throwaway" not in result.stderr  # it used the given server
    assert re.search(r"alice holds /zklock-examples/tls-\w+/report over TLS, token \d+", out)
    assert "bob (LeanHandler, TLS) acquire(blocking=False) -> False" in out
    assert re.search(r"bob holds it, token \d+ > \d+: True", out)
    assert "a client without the CA: start() raised KazooTimeoutError" in out
    assert "CERTIFICATE_VERIFY_FAILED" in out
    assert "a lock on it raises ClientNotConnected" in out
    assert out.rstrip().endswith("OK")
    admin = KazooClient(hosts=zookeeper_tls.plain_connect_string)
    admin.start(timeout=15)
    try:
        assert example_nodes(admin) == set(), "the example left znodes behind"
    finally:
        admin.stop()
        admin.close()
