"""Retry policies: when an acquire tries again, how long it sleeps, and when it gives up.

    python examples/retry_policy.py [HOSTS]

A ``zklock.RetryPolicy`` is made of tenacity's own objects, composed as in tenacity:
``stop`` (give up), ``wait`` (sleep between tries) and ``retry`` (which errors are worth
another try), plus ``request_timeout``, after which an unanswered request counts as a lost
connection.  Here a client reaches ZooKeeper through a TCP proxy that stops forwarding
(``blackhole()``): its requests go unanswered.  A policy that stops after three tries gives up
with ``ConnectionLost``; a policy that keeps trying for ten seconds gets the lock once the
proxy forwards again.  zklock logs each retry on the ``zklock.retry`` logger.

Needs ``pip install zklock[testing]`` (the proxy is ``zklock.testing.TcpProxy``).
"""

from __future__ import annotations

import logging
import sys
import threading
import time

from _common import connected, eventually, expect_no_contenders, scratch_path, verdict, zookeeper
from tenacity import retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_fixed

import zklock
from zklock.testing import TcpProxy


class RetryLines(logging.Handler):
    """Prints and counts the line zklock logs before each retry."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        print(f"  [zklock.retry] {record.getMessage()}")


def main(hosts: str) -> int:
    problems = []
    retries = RetryLines()
    retry_log = logging.getLogger("zklock.retry")
    retry_log.addHandler(retries)
    retry_log.setLevel(logging.INFO)

    brief = zklock.RetryPolicy(
        stop=stop_after_attempt(3) | stop_after_delay(20),  # whichever comes first
        wait=wait_fixed(0.2),
        retry=retry_if_exception_type(zklock.ConnectionLost),  # the default retries more
        request_timeout=0.5,  # no answer in 0.5 s: the request failed with ConnectionLost
    )
    patient = brief.copy(stop=stop_after_delay(10))  # policies are immutable: copy() to vary

    with TcpProxy(hosts) as proxy, connected(proxy.connect_string) as client:
        with scratch_path(client, "retry") as root:
            path = f"{root}/report"
            lock = zklock.Lock(client, path, identifier="brief", retry=brief)

            # 1. A healthy connection: no retry at all.
            with lock.hold(timeout=10) as lease:
                print(f"healthy: held at once, token {lease.token}; retries: {retries.count}")

            # 2. Requests go unanswered: three tries, 0.2 s apart, then the error.
            proxy.blackhole()
            retries.count = 0
            started = time.monotonic()
            try:
                lock.acquire(timeout=30)
                problems.append("the acquire succeeded through a black hole")
            except zklock.ConnectionLost:
                took = time.monotonic() - started
                print(f"blackholed: acquire raised ConnectionLost after {retries.count + 1} "
                      f"tries in {took:.1f} s (timeout=30 not reached)")
                if retries.count != 2:
                    problems.append(f"{retries.count} retries, not 2")

            # 3. The same outage, healed after a second: the patient policy rides it out.
            retries.count = 0
            threading.Timer(1.0, proxy.heal).start()
            patient_lock = zklock.Lock(client, path, identifier="patient", retry=patient)
            if patient_lock.acquire(timeout=30):
                print(f"patient: held once the proxy healed (after 1 s); retries: {retries.count}")
                if retries.count == 0:
                    problems.append("the patient acquire did not retry")
                patient_lock.release()
            else:
                problems.append("the patient acquire did not get the free lock")

            # The creates that went unanswered ran on the server once the proxy healed; zklock
            # deletes those nodes as their replies come in.
            eventually(lambda: not client.get_children(path), timeout=5)
            expect_no_contenders(client, path, problems)
    retry_log.removeHandler(retries)
    return verdict(problems)


if __name__ == "__main__":
    with zookeeper(sys.argv[1] if len(sys.argv) > 1 else None) as found:
        sys.exit(main(found))
