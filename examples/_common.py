"""What every example needs: a ZooKeeper to talk to, a client, and a scratch path it removes.

Where ZooKeeper is, first found wins:

1. the command line: ``python examples/NAME.py 127.0.0.1:2181``;
2. the environment: ``ZKLOCK_HOSTS`` (or the test harness's ``ZKLOCK_ZOOKEEPER_HOSTS``);
3. otherwise a throwaway server in a container, started with ``zklock.testing`` (needs Docker
   and ``pip install zklock[testing]``; the image is ``ZKLOCK_ZOOKEEPER_IMAGE``) and removed
   when the example ends.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any, Callable, Optional

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NotEmptyError

EXAMPLES_ROOT = "/zklock-examples"


def hosts_from(argument: Optional[str] = None) -> Optional[str]:
    """The hosts given on the command line or in the environment, else None."""
    return (
        argument
        or os.environ.get("ZKLOCK_HOSTS")
        or os.environ.get("ZKLOCK_ZOOKEEPER_HOSTS")
        or None
    )


@contextlib.contextmanager
def zookeeper(argument: Optional[str] = None) -> Iterator[str]:
    """Yield a kazoo ``hosts`` string; start (and later remove) a container if none was given."""
    hosts = hosts_from(argument)
    if hosts:
        yield hosts
        return
    try:
        from zklock.testing import ZooKeeperContainer
    except ImportError as error:
        sys.exit(
            "no ZooKeeper given (pass HOSTS or set ZKLOCK_HOSTS), and a throwaway one needs "
            f"`pip install zklock[testing]` and Docker: {error}"
        )
    print("(starting a throwaway ZooKeeper in a container...)", file=sys.stderr, flush=True)
    with ZooKeeperContainer() as server:
        yield server.get_connect_string()


@contextlib.contextmanager
def connected(hosts: str, timeout: float = 10.0, **options: Any) -> Iterator[KazooClient]:
    """A started KazooClient (session timeout ``timeout``), stopped and closed afterwards.

    ``options`` go to ``KazooClient`` (TLS settings, ``auth_data``, a ``handler``...).
    """
    client = KazooClient(hosts=hosts, timeout=timeout, **options)
    client.start(timeout=15)
    try:
        yield client
    finally:
        client.stop()
        client.close()


@contextlib.contextmanager
def scratch_path(client: KazooClient, name: str) -> Iterator[str]:
    """A fresh path ``/zklock-examples/<name>-<random>``, deleted with all below it afterwards."""
    root = f"{EXAMPLES_ROOT}/{name}-{uuid.uuid4().hex[:8]}"
    try:
        yield root
    finally:
        remove_tree(client, root)


def expire_session(hosts: str, victim: KazooClient) -> None:
    """Make the server end ``victim``'s session, as if it had been silent for too long.

    A second client joins the session (its id and password) and closes it: the server then
    deletes the session's ephemeral nodes and drops ``victim``'s connection.  (The test
    harness's ``zklock.testing.expire_session`` does the same; these lines spare the examples
    that need nothing else from it the ``zklock[testing]`` extra.)
    """
    session_id, password = victim.client_id
    twin = KazooClient(hosts=hosts, client_id=(session_id, password))
    twin.start(timeout=15)
    twin.stop()
    twin.close()


def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def contenders_left(client: KazooClient, path: str) -> int:
    """Print and return how many contender nodes are left under the lock ``path`` (0: none)."""
    left = len(client.get_children(path))
    print(f"contender nodes left under the lock: {left}")
    return left


def expect_no_contenders(client: KazooClient, path: str, problems: list[str]) -> None:
    """:func:`contenders_left`, noting a problem when any node is left."""
    if contenders_left(client, path):
        problems.append("contender nodes were left under the lock")


def verdict(problems: list[str]) -> int:
    """Print each problem as FAILED and return 1, or print OK and return 0 (the exit status)."""
    for problem in problems:
        print(f"FAILED: {problem}")
    if problems:
        return 1
    print("OK")
    return 0


def remove_tree(client: KazooClient, root: str) -> None:
    """Delete ``root`` and everything below it, then ``/zklock-examples`` if it is empty."""
    with contextlib.suppress(NoNodeError):
        client.delete(root, recursive=True)
    with contextlib.suppress(NoNodeError, NotEmptyError):
        client.delete(EXAMPLES_ROOT)
