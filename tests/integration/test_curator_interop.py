"""zklock and a real Apache Curator InterProcessMutex on one lock path exclude each other.

The Java side is tests/integration/curator/CuratorContender.java, compiled here with the JDK's
javac against Debian's Curator jars (libcurator-recipes-java) and run as child processes:

* ``serve`` mode takes commands on stdin, one step at a time, for the both-ways checks;
* ``contend`` mode loops over critical sections next to Python workers
  (workers/contend_logged.py); both append enter/exit lines to one shared log file whose line
  order is the real-time order of the appends (the Java file explains why that is sound).

In CI (CI=true) a missing JDK or Curator fails these tests; elsewhere they skip, saying why.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from kazoo.exceptions import LockTimeout as KazooLockTimeout
from kazoo.recipe.lock import Lock as KazooLock

import zklock
from zklock.testing import wait_until
from zklock.testing.plugin import skip_outside_ci

HERE = Path(__file__).parent
SOURCE = HERE / "curator" / "CuratorContender.java"
WORKER = HERE / "workers" / "contend_logged.py"
JARS = Path("/usr/share/java")
# InterProcessMutex and what it needs at run time; slf4j-nop keeps Curator's logging quiet.
CURATOR_JARS = [
    "curator-recipes.jar", "curator-framework.jar", "curator-client.jar",
    "zookeeper.jar", "zookeeper-jute.jar", "guava.jar", "slf4j-api.jar", "slf4j-nop.jar",
]
CURATOR_NODE = re.compile(
    r"_c_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-lock-\d{10}"
)


@pytest.fixture(scope="module")
def curator_classpath(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Compile the Java contender once per run; the class path that runs it."""
    missing = [tool for tool in ("java", "javac") if shutil.which(tool) is None]
    missing += [str(JARS / jar) for jar in CURATOR_JARS if not (JARS / jar).is_file()]
    if missing:
        skip_outside_ci(
            "the Curator interop tests need a JDK and Debian's libcurator-recipes-java (apt-get "
            f"install openjdk-17-jdk-headless libcurator-recipes-java); missing: {', '.join(missing)}"
        )
    classes = tmp_path_factory.mktemp("curator-classes")
    jars = [str(JARS / jar) for jar in CURATOR_JARS]
    result = subprocess.run(
        ["javac", "-d", str(classes), "-cp", os.pathsep.join(jars), str(SOURCE)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"javac failed:\n{result.stdout}\n{result.stderr}"
    return os.pathsep.join([str(classes), *jars])


class JavaContender:
    """A ``CuratorContender ... serve`` child process, driven one command line at a time."""

    def __init__(self, classpath: str, hosts: str, path: str, stderr_file: Path) -> None:
        self._stderr_file = stderr_file
        self._stderr = stderr_file.open("wb")
        self._buffer = b""
        self.proc = subprocess.Popen(
            ["java", "-cp", classpath, "CuratorContender", hosts, path, "serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, bufsize=0,
        )
        try:
            self.expect("READY", timeout=30)
        except BaseException:
            self.proc.kill()  # no one else holds this object yet: reap the JVM here
            self.proc.wait()
            self._close_pipes()
            raise

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{command}\n".encode())

    def read_line(self, timeout: float) -> str | None:
        """The next line the Java side printed, or None if none came within ``timeout``."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError(f"the Java contender exited: {self.stderr()}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def expect(self, prefix: str, timeout: float = 30) -> list[str]:
        """Read the next line, assert it starts with ``prefix``, and return its words."""
        line = self.read_line(timeout)
        assert line is not None, f"no {prefix!r} from the Java contender in {timeout} s: {self.stderr()}"
        assert line.split()[0] == prefix, f"expected {prefix!r}, got {line!r}: {self.stderr()}"
        return line.split()

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self._stderr_file.read_text(errors="replace")[-2000:]

    def close(self) -> int:
        """Ask it to quit (it releases and closes its session); kill it if it does not."""
        try:
            if self.proc.poll() is None:
                try:
                    self.send("quit")
                    assert self.proc.stdin is not None
                    self.proc.stdin.close()
                except BrokenPipeError:
                    pass
                try:
                    return self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    raise
            return self.proc.returncode
        finally:
            self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass
        self._stderr.close()


@pytest.fixture
def curator(curator_classpath, zookeeper, zk_path, tmp_path):
    """Start a Java contender on ``{zk_path}/lock``; it quits (and is reaped) at teardown."""
    started: list[JavaContender] = []

    def start() -> JavaContender:
        contender = JavaContender(
            curator_classpath, zookeeper.connect_string, f"{zk_path}/lock",
            tmp_path / f"curator-{len(started)}.stderr",
        )
        started.append(contender)
        return contender

    try:
        yield start
    finally:
        codes = []
        for contender in started:  # close() reaps the process even when it raises
            try:
                codes.append(contender.close())
            except subprocess.TimeoutExpired:
                codes.append(None)
    assert codes == [0] * len(codes), [contender.stderr() for contender in started]


def node_name(path: str) -> str:
    return path.rsplit("/", 1)[1]


def test_curator_holds_zklock_waits(curator, zk_client, zk_path):
    path = f"{zk_path}/lock"
    java = curator()
    java.send("acquire 10000")
    _, curator_node, curator_token = java.expect("ACQUIRED")
    assert CURATOR_NODE.fullmatch(node_name(curator_node)), curator_node

    lock = zklock.Lock(zk_client, path, naming=zklock.NodeNaming.CURATOR)
    curator_data = zk_client.get(curator_node)[0].decode()  # Curator writes its client's address
    assert [c.identifier for c in lock.contenders()] == [curator_data]
    assert lock.acquire(timeout=0.5) is False  # Curator holds it
    assert zk_client.get_children(path) == [node_name(curator_node)]  # our timed-out try left nothing

    # Curator releases only once our node is queued behind its own, so this acquire must wait
    # for Curator's node and be woken by its deletion, whatever the timing.
    java.send("release-when 2")
    assert lock.acquire(timeout=30)
    try:
        java.expect("RELEASED")
        lease = lock.lease
        assert lease is not None and CURATOR_NODE.fullmatch(node_name(lease.node)), lease
        assert lease.token > int(curator_token)
        assert zk_client.get_children(path) == [node_name(lease.node)]
    finally:
        lock.release()


def test_zklock_holds_curator_waits(curator, zk_client, zk_path):
    path = f"{zk_path}/lock"
    java = curator()
    lock = zklock.Lock(zk_client, path, naming=zklock.NodeNaming.CURATOR)
    assert lock.acquire(timeout=10)
    try:
        held = node_name(lock.lease.node)
        java.send("acquire 500")
        java.expect("TIMEOUT")  # InterProcessMutex.acquire(time) gives up while zklock holds
        assert zk_client.get_children(path) == [held]  # and removed its node

        java.send("acquire 30000")  # now a long wait: Curator queues behind our node...
        assert wait_until(lambda: len(zk_client.get_children(path)) == 2, timeout=15)
        assert java.read_line(timeout=1.0) is None  # ...and does not take the lock while we hold it
    finally:
        token = lock.lease.token
        lock.release()
    _, curator_node, curator_token = java.expect("ACQUIRED")  # our release woke it
    assert int(curator_token) > token
    assert zk_client.get_children(path) == [node_name(curator_node)]
    java.send("release")
    java.expect("RELEASED")
    assert zk_client.get_children(path) == []


def test_curator_and_zklock_processes_contending(curator_classpath, zookeeper, zk_client, zk_path, tmp_path):
    java_count, python_count, rounds = 3, 3, 6
    total = (java_count + python_count) * rounds
    path, counter = f"{zk_path}/lock", f"{zk_path}/counter"
    log = tmp_path / "sections.log"
    log.touch()
    zk_client.create(counter, b"0", makepath=True)
    hosts = zookeeper.connect_string
    commands = [
        ["java", "-cp", curator_classpath, "CuratorContender", hosts, path, "contend",
         str(rounds), counter, str(log), f"curator-{i}"]
        for i in range(java_count)
    ] + [
        [sys.executable, str(WORKER), hosts, path, counter, str(rounds), str(log), f"zklock-{i}", "curator"]
        for i in range(python_count)
    ]
    # A start line: we hold the lock until every contender has queued behind us, so the first
    # round of sections is all six processes in queue order and the rest contend for real.
    gate = zklock.Lock(zk_client, path, naming=zklock.NodeNaming.CURATOR)
    assert gate.acquire(timeout=10)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        try:
            for i, command in enumerate(commands):
                err = (tmp_path / f"contender-{i}.stderr").open("wb")
                with err:
                    procs.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=err))
            assert wait_until(lambda: len(zk_client.get_children(path)) == 1 + len(commands), timeout=40)
        finally:
            gate.release()
        codes = [proc.wait(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    errors = [(tmp_path / f"contender-{i}.stderr").read_text(errors="replace") for i in range(len(procs))]
    assert codes == [0] * len(commands), errors
    value, _ = zk_client.get(counter)

    sections = check_section_log(log.read_text().splitlines())
    assert len(sections) == total
    assert int(value) == total  # no lost update
    per_contender = Counter(who for who, _token in sections)
    assert per_contender == {f"{side}-{i}": rounds for side in ("curator", "zklock") for i in range(3)}
    assert {who for who, _token in sections[: len(commands)]} == set(per_contender)  # one shared queue


def check_section_log(lines: list[str]) -> list[tuple[str, int]]:
    """Check the shared enter/exit log and return its sections as (who, token), in order.

    Sound without comparing clocks: the lines are in real-time order (see CuratorContender.java).
    """
    assert len(lines) % 2 == 0, f"unpaired lines: {lines[-3:]}"
    sections: list[tuple[str, int]] = []
    for index in range(0, len(lines), 2):
        enter, leave = lines[index].split(), lines[index + 1].split()
        number = index // 2
        assert enter[0] == "enter" and leave[0] == "exit" and enter[1:3] == leave[1:3], (
            f"overlap: section {number} ({lines[index]!r}) is followed by {lines[index + 1]!r}"
        )
        assert int(leave[3]) == number, f"section {number} read {leave[3]}: an update was lost"
        sections.append((enter[1], int(enter[2])))
    tokens = [token for _who, token in sections]
    assert tokens == sorted(set(tokens)), "fencing tokens (czxids) do not increase in holding order"
    return sections


@pytest.mark.parametrize(
    "lines, error",
    [
        (["enter a 5", "enter b 6", "exit a 5 0", "exit b 6 0"], "overlap"),
        (["enter a 5", "exit a 5 0", "enter b 6", "exit b 6 0"], "an update was lost"),
        (["enter a 6", "exit a 6 0", "enter b 5", "exit b 5 1"], "do not increase"),
    ],
    ids=["overlap", "lost-update", "token-order"],
)
def test_the_log_check_catches_what_it_should(lines, error):
    # The checker must fail on a broken run, or the contention test proves nothing.
    with pytest.raises(AssertionError, match=error):
        check_section_log(lines)
    assert check_section_log(["enter a 5", "exit a 5 0", "enter b 6", "exit b 6 1"]) == [("a", 5), ("b", 6)]


def test_kazoo_named_nodes_are_invisible_to_curator(curator, zk_client_factory, zk_path):
    # Why a path shared with Curator must carry no kazoo-named contenders.  Curator orders a
    # path's children by the text after the last "lock-" in each name, or by the whole name
    # when there is none: kazoo's "<32 hex>__lock__<seq>" then sorts after every
    # "0000000123"-style key (unless its random hex began with a long run of zeros), so a kazoo-named
    # holder is never ahead of a Curator contender.  zklock's default naming is kazoo's.
    path = f"{zk_path}/lock"
    kazoo_lock = KazooLock(zk_client_factory(), path)
    assert kazoo_lock.acquire(timeout=10)
    java = curator()
    try:
        java.send("acquire 5000")
        java.expect("ACQUIRED")  # WRONG, and the point of the test: both hold the lock now
        # zklock (any naming) sees both holders' nodes and would wait for them.
        assert zklock.Lock(zk_client_factory(), path).acquire(timeout=0.2) is False
        java.send("release")
        java.expect("RELEASED")
    finally:
        kazoo_lock.release()

    # The other way: kazoo's Lock does not read Curator's names either, unless told to.
    java.send("acquire 5000")
    java.expect("ACQUIRED")
    blind, told = (
        KazooLock(zk_client_factory(), path),
        KazooLock(zk_client_factory(), path, extra_lock_patterns=["-lock-"]),
    )
    try:
        assert blind.acquire(timeout=5)  # WRONG: it holds beside Curator
        blind.release()
        with pytest.raises(KazooLockTimeout):
            told.acquire(timeout=0.5)  # with Curator's marker it waits as it should
    finally:
        java.send("release")
        java.expect("RELEASED")
