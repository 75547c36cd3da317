"""Locking from asyncio tasks, until zklock has an asyncio API: the calls run in threads.

    python examples/asyncio_tasks.py [HOSTS]

zklock's calls block, so a coroutine runs them in a thread. Three rules keep that safe:

* ``acquire()`` runs in a thread pool of its own, with a thread for every task that may wait
  at once.  On the loop's default pool (``min(32, CPUs + 4)`` threads) waiters can take every
  thread, and a holder's release queued behind them then waits for their timeouts.
* ``acquire()`` gets the timeout itself.  ``asyncio.wait_for()`` or ``asyncio.timeout()``
  around it cancel the awaiting task but not the thread, whose acquire may go on to take the
  lock with nobody left to release it.
* Each task has a ``Lock`` object of its own (they may share one client), so that a task
  cancelled while it waits cancels its own acquire: ``Lock.cancel()`` ends every acquire
  waiting on its object.

``holding()`` below does all three.  Five tasks take turns through it while a ticker shows the
event loop running on; one more task is cancelled while it waits and leaves no node behind,
and one gives up after its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ThreadPoolExecutor

from _common import connected, expect_no_contenders, scratch_path, verdict, zookeeper
from kazoo.client import KazooClient

import zklock

TASKS = 5


@contextlib.asynccontextmanager
async def holding(lock: zklock.Lock, timeout: float, waiting: Executor) -> AsyncIterator[zklock.Lease]:
    """Hold ``lock`` for an ``async with`` block; raise ``LockTimeout`` after ``timeout`` s.

    A task cancelled while it waits cancels its acquire; if the acquire had just taken the
    lock, it is released before the cancellation goes on.
    """
    loop = asyncio.get_running_loop()
    acquiring = loop.run_in_executor(waiting, functools.partial(lock.acquire, timeout=timeout))
    try:
        acquired = await asyncio.shield(acquiring)  # a cancel must not drop the thread's answer
    except asyncio.CancelledError:
        lock.cancel()
        with contextlib.suppress(zklock.AcquireCancelled):
            if await acquiring:  # it took the lock just before the cancel reached it
                await asyncio.to_thread(lock.release)
        raise
    if not acquired:
        raise zklock.LockTimeout(lock.path, timeout)
    lease = lock.lease
    assert lease is not None
    try:
        yield lease
    finally:
        await asyncio.to_thread(lock.release)  # one delete: a round trip, off the loop


async def demo(client: KazooClient, path: str, problems: list[str]) -> None:
    inside = 0
    tokens: list[int] = []
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def section(name: str, waiting: Executor) -> None:
        nonlocal inside
        lock = zklock.Lock(client, path, identifier=name)
        async with holding(lock, timeout=30, waiting=waiting) as lease:
            inside += 1
            if inside > 1:
                problems.append(f"{name} entered while another task held the lock")
            tokens.append(lease.token)
            await asyncio.sleep(0.05)  # the loop runs other tasks meanwhile
            inside -= 1

    ticking = asyncio.create_task(ticker())
    with ThreadPoolExecutor(max_workers=TASKS + 1, thread_name_prefix="zklock-wait") as waiting:
        await asyncio.gather(*(section(f"task-{i}", waiting) for i in range(TASKS)))
        increasing = tokens == sorted(tokens) and len(set(tokens)) == TASKS
        print(f"{TASKS} tasks held the lock one after another, tokens increasing: {increasing}")
        if not increasing:
            problems.append(f"tokens not strictly increasing: {tokens}")
        loop_ran = ticks > TASKS
        print(f"the event loop ran on meanwhile: {loop_ran}")
        if not loop_ran:
            problems.append(f"the ticker ticked only {ticks} times: the loop was blocked")

        # A task cancelled while it waits: its acquire is cancelled and its node leaves.
        holder = zklock.Lock(client, path, identifier="holder")
        async with holding(holder, timeout=10, waiting=waiting):
            waiter = asyncio.create_task(section("cancelled", waiting))
            queue: list[str] = []
            for _ in range(500):
                queue = [c.identifier for c in await asyncio.to_thread(holder.contenders)]
                if queue == ["holder", "cancelled"]:
                    break
                await asyncio.sleep(0.01)
            print(f"queue while the holder holds: {queue}")
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
            queue = [c.identifier for c in await asyncio.to_thread(holder.contenders)]
            print(f"after cancelling the waiting task: {queue}")
            if queue != ["holder"]:
                problems.append(f"the cancelled task left {queue} in the queue")

            late = zklock.Lock(client, path, identifier="late")
            try:
                async with holding(late, timeout=0.2, waiting=waiting):
                    problems.append("a task got the lock while the holder held it")
            except zklock.LockTimeout as timed_out:
                print(f"a task with timeout=0.2 while the holder holds: LockTimeout ({timed_out})")
    ticking.cancel()


def main(hosts: str) -> int:
    problems: list[str] = []
    with connected(hosts) as client, scratch_path(client, "asyncio") as root:
        path = f"{root}/report"
        asyncio.run(demo(client, path, problems))
        expect_no_contenders(client, path, problems)
    return verdict(problems)


if __name__ == "__main__":
    with zookeeper(sys.argv[1] if len(sys.argv) > 1 else None) as found:
        sys.exit(main(found))
