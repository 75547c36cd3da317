"""A benchmark worker process: one session at a time, driven by JSON lines on stdin.

Every measurement runs in a worker, never in the coordinator, so a process's CPU time is the
CPU of exactly one implementation's client (its caller, I/O and callback threads), and
contenders are separate processes with separate sessions.

``python -m benchmarks.worker`` serves commands (``{"op": ...}`` in, one JSON line out);
``python -m benchmarks.worker scale-hold|scale-waiters IMPL HOSTS ...`` runs one scale
measurement in a fresh process (so its peak RSS is its own) and prints one JSON line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import mmap
import os
import resource
import sys
import tempfile
import threading
import time
import traceback
from typing import Any, Callable, Optional

from .impls import Lock, Session, prepare_path
from .server import received_by_session, watches_below

_clock = time.monotonic


def _recording() -> Any:
    """``zklock.testing.KazooTraffic.recording()`` on ``kazoo.client``: every client's traffic."""
    from zklock.testing import KazooTraffic  # only when counting: it imports docker's client

    return KazooTraffic.recording()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _reset_peak_rss() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM, the peak resident set size.
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def _peak_rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


def new_occupancy_file(directory: Optional[str] = None) -> str:
    """A fresh one-byte counter file for :class:`Occupancy` (in ``/dev/shm`` where it exists:
    memory, no disk); the caller removes it."""
    if directory is None and os.path.isdir("/dev/shm"):
        directory = "/dev/shm"
    fd, path = tempfile.mkstemp(prefix="zklock-bench-occupancy-", dir=directory)
    try:
        os.write(fd, b"\0")
    finally:
        os.close(fd)
    return path


class Occupancy:
    """How many processes are inside the lock, counted in one byte that every worker of a
    contended round maps from the same file.

    :meth:`enter` raises the count right after ``acquire()`` returns, :meth:`leave` lowers it
    right before ``release()`` is called; each change is made under ``flock`` on the file, so it
    is atomic across processes.  An entry that finds the count above 1 after raising it met
    another holder inside: an overlap, whatever the two sections' timestamps say.  Only the
    holder touches the counter (it lowers it before it releases), so the ``flock`` is never
    waited for unless two processes hold the lock at once: about a microsecond per section.
    """

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, 1)
        self.overlaps = 0  # entries that found another holder inside
        self.highest = 0  # the highest count this process saw

    def enter(self) -> None:
        fd, counter = self._fd, self._map
        fcntl.flock(fd, fcntl.LOCK_EX)
        inside = counter[0] + 1
        counter[0] = inside
        fcntl.flock(fd, fcntl.LOCK_UN)
        if inside > self.highest:
            self.highest = inside
        if inside > 1:
            self.overlaps += 1

    def leave(self) -> None:
        fd, counter = self._fd, self._map
        fcntl.flock(fd, fcntl.LOCK_EX)
        counter[0] -= 1
        fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


def _nothing() -> None:
    pass


class Worker:
    """The state of a serving worker: its session, its lock object, and in a contended round
    the round's shared :class:`Occupancy` counter."""

    def __init__(self) -> None:
        self.session: Optional[Session] = None
        self.lock: Optional[Lock] = None
        self.occupancy: Optional[Occupancy] = None

    # ------------------------------------------------------------------ commands
    def connect(
        self, impl: str, hosts: str, path: str, warm: bool = False,
        occupancy: Optional[str] = None,
    ) -> dict[str, Any]:
        """Open a session and a lock object on ``path``; ``warm``: one acquire+release.

        ``occupancy``: the round's counter file (:class:`Occupancy`); every section from here
        on, the warm-up one too, raises and lowers it.
        """
        self.disconnect()
        if occupancy is not None:
            self.occupancy = Occupancy(occupancy)
        self.session = Session(impl, hosts)
        if impl.startswith("raw"):
            prepare_path(self.session.client, path)
        self.lock = self.session.lock(path)
        if warm:  # parents exist and per-object first-use checks are done before measuring
            enter, leave = self._guards()
            self.lock.acquire()
            enter()
            leave()
            self.lock.release()
        return {"session_id": self.session.session_id}

    def disconnect(self) -> dict[str, Any]:
        if self.session is not None:
            self.session.close()
        if self.occupancy is not None:
            self.occupancy.close()
        self.session = self.lock = self.occupancy = None
        return {}

    def cycles(self, n: int) -> dict[str, Any]:
        """``n`` uncontended acquire+release cycles: each latency, and the process CPU."""
        lock = self._lock()
        acquire, release, clock = lock.acquire, lock.release, time.perf_counter
        latencies = []
        cpu = _cpu()
        for _ in range(n):
            started = clock()
            acquire()
            release()
            latencies.append(clock() - started)
        return {"latencies": latencies, "cpu": _cpu() - cpu}

    def count(self, n: int) -> dict[str, Any]:
        """Requests per cycle over ``n`` cycles, counted by the server and by the client."""
        lock, session = self._lock(), self._session()
        lock.acquire()
        lock.release()  # a request right before the snapshot: no ping is due for seconds
        before = received_by_session(session.hosts).get(session.session_id)
        with _recording() as traffic:
            for _ in range(n):
                lock.acquire()
                lock.release()
        after = received_by_session(session.hosts).get(session.session_id)
        server = None if before is None or after is None else (after - before) / n
        return {
            "server_per_cycle": server,
            "client_per_cycle": len(traffic.sent()) / n,
            "client_by_type": {k: v / n for k, v in sorted(traffic.requests().items())},
        }

    def contend(self, start: float, end: float, hold: float, count: bool = False) -> dict[str, Any]:
        """Acquire, hold ``hold`` s, release, again, from ``start`` until ``end`` (monotonic).

        Returns the sections ``(called, entered, leaving, token)``: ``acquire()`` called, it
        returned, ``release()`` about to be called (all ``time.monotonic()``, system-wide),
        and zklock's fencing token; the process CPU time (all threads) the loop took; and the
        entries since ``connect`` that found the shared occupancy counter taken.  With
        ``count``, the client counts its requests by type (slower: DEBUG logging).
        """
        lock = self._lock()
        acquire, release, token = lock.acquire, lock.release, lock.token
        enter, leave = self._guards()
        sections = []
        traffic = None
        with contextlib.ExitStack() as stack:
            if count:
                traffic = stack.enter_context(_recording())
            time.sleep(max(0.0, start - _clock()))
            cpu = _cpu()
            called = _clock()
            while called < end:
                acquire()
                entered = _clock()
                enter()
                held = token()
                if hold:
                    time.sleep(hold)
                leave()
                leaving = _clock()
                release()
                sections.append((called, entered, leaving, held))
                called = _clock()
            cpu = _cpu() - cpu
        occupancy = self.occupancy
        return {"sections": sections, "cpu_s": cpu,
                "requests": traffic.requests() if traffic else None,
                "occupancy_overlaps": occupancy.overlaps if occupancy else None,
                "occupancy_highest": occupancy.highest if occupancy else None}

    def session_id(self) -> dict[str, Any]:
        return {"session_id": self._session().session_id}

    # ------------------------------------------------------------------ serving
    def _guards(self) -> tuple[Callable[[], None], Callable[[], None]]:
        """The occupancy counter's enter and leave (no-ops outside a contended round)."""
        if self.occupancy is None:
            return _nothing, _nothing
        return self.occupancy.enter, self.occupancy.leave

    def _session(self) -> Session:
        if self.session is None:
            raise RuntimeError("not connected")
        return self.session

    def _lock(self) -> Lock:
        if self.lock is None:
            raise RuntimeError("not connected")
        return self.lock

    def serve(self) -> None:
        handlers: dict[str, Callable[..., dict[str, Any]]] = {
            "connect": self.connect,
            "disconnect": self.disconnect,
            "cycles": self.cycles,
            "count": self.count,
            "contend": self.contend,
            "session_id": self.session_id,
        }
        for line in sys.stdin:
            command = json.loads(line)
            op = command.pop("op")
            if op == "exit":
                break
            try:
                reply = {"ok": True, **handlers[op](**command)}
            except Exception:
                reply = {"ok": False, "error": traceback.format_exc()}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
        self.disconnect()


# ---------------------------------------------------------------------- scale, one process each
def scale_parents(hosts: str, count: int, base: str, remove: bool) -> dict[str, Any]:
    """Create (or ``remove``) the parents ``base/l<i>`` of the scale-hold locks.

    Run in its own process, so that the memory of this flood of requests is not what the
    holding process later reuses (its resident-set growth would read as zero).
    """
    session = Session("raw", hosts)
    try:
        client = session.client
        if remove:
            for result in [client.delete_async(f"{base}/l{i}") for i in range(count)]:
                result.get()
            client.delete(base)
        else:
            prepare_path(client, base)
            for result in [client.create_async(f"{base}/l{i}") for i in range(count)]:
                result.get()
        return {"parents": count}
    finally:
        session.close()


def scale_hold(impl: str, hosts: str, count: int, base: str) -> dict[str, Any]:
    """One session takes ``count`` different locks and holds them all, then releases them.

    The parents exist beforehand (``scale_parents``), for every implementation alike.
    """
    session = Session(impl, hosts)
    try:
        client = session.client
        locks = [session.lock(f"{base}/l{i}") for i in range(count)]
        rss_before = _rss_kib()
        _reset_peak_rss()
        cpu = _cpu()
        started = _clock()
        for lock in locks:
            lock.acquire()
        acquired = _clock() - started
        acquire_cpu = _cpu() - cpu
        rss_held = _rss_kib()
        children = sum(len(client.get_children(f"{base}/l{i}")) for i in range(0, count, 97))
        started = _clock()
        for lock in locks:
            lock.release()
        released = _clock() - started
        peak = _peak_rss_kib()  # the peak since just before the first acquire
        return {
            "locks": count,
            "acquire_s": acquired,
            "acquire_cpu_s": acquire_cpu,
            "release_s": released,
            "rss_before_mib": rss_before / 1024,
            "rss_held_mib": rss_held / 1024,
            "peak_rss_mib": peak / 1024,
            "peak_growth_mib": (peak - rss_before) / 1024,
            "rss_growth_mib": (rss_held - rss_before) / 1024,
            "sampled_nodes_ok": children == len(range(0, count, 97)),
        }
    finally:
        session.close()


class _Woken(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, str) and "woken by" in record.msg:
            self.count += 1


def scale_waiters(impl: str, hosts: str, waiters: int, sessions: int, path: str) -> dict[str, Any]:
    """``waiters`` lock objects queue on one lock held by another session; then the holder
    releases and each waiter in turn acquires and releases.  Counts the watch events the
    server delivered (and, for zklock, the wake-ups its recipe logged)."""
    holder_session = Session(impl, hosts)
    pool = [Session(impl, hosts) for _ in range(sessions)]
    recipe_log = logging.getLogger("zklock.recipe")
    woken = _Woken()
    try:
        prepare_path(holder_session.client, path)
        holder = holder_session.lock(path)
        holder.acquire()
        locks = [pool[i % sessions].lock(path) for i in range(waiters)]
        order: list[float] = []
        errors: list[str] = []

        def wait_then_pass(lock: Lock) -> None:
            try:
                lock.acquire()
                order.append(_clock())
                lock.release()
            except Exception:
                errors.append(traceback.format_exc())

        threads = [threading.Thread(target=wait_then_pass, args=(lock,), daemon=True)
                   for lock in locks]
        for thread in threads:
            thread.start()
        watcher = holder_session.client
        deadline = _clock() + 120
        queued = watching = 0
        # Start the chain only once every waiter is queued and watches its predecessor
        # (the server's own count of watches below the lock), so that the counts below are
        # those of the hand-offs alone.
        while _clock() < deadline:
            queued = len(watcher.get_children(path)) - 1
            watching = watches_below(holder_session.hosts, path)
            if queued >= waiters and watching >= waiters:
                break
            time.sleep(0.1)
        recipe_log.addHandler(woken)
        saved_level = recipe_log.level
        recipe_log.setLevel(logging.DEBUG)
        try:
            with _recording() as traffic:
                started = _clock()
                holder.release()
                for thread in threads:
                    thread.join(timeout=max(0.0, deadline - _clock()))
                elapsed = _clock() - started
        finally:
            recipe_log.removeHandler(woken)
            recipe_log.setLevel(saved_level)
        return {
            "waiters": waiters,
            "sessions": sessions,
            "queued": queued,
            "watching_at_start": watching,
            "completed": len(order),
            "errors": errors[:3],
            "chain_s": elapsed,
            "watch_events": traffic.events(),
            "watch_events_per_release": traffic.events() / max(1, waiters),
            "recipe_wakeups": woken.count if impl.startswith("zklock") else None,
            "requests_by_type_per_handoff": {
                k: v / max(1, waiters) for k, v in sorted(traffic.requests().items())
            },
        }
    finally:
        for session in (*pool, holder_session):
            session.close()


def main(argv: list[str]) -> int:
    if not argv:
        Worker().serve()
        return 0
    kind, impl, hosts, *rest = argv
    if kind == "scale-parents":  # IMPL is "create" or "remove"
        result = scale_parents(hosts, int(rest[0]), rest[1], remove=impl == "remove")
    elif kind == "scale-hold":
        result = scale_hold(impl, hosts, int(rest[0]), rest[1])
    elif kind == "scale-waiters":
        result = scale_waiters(impl, hosts, int(rest[0]), int(rest[1]), rest[2])
    else:
        raise SystemExit(f"unknown worker mode {kind!r}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
