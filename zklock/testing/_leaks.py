"""Checks that a test left nothing behind: znodes, threads, containers.

Each ``assert_no_*`` function raises :class:`LeakError` (an ``AssertionError``) naming what it
found; the ``list_*`` and :func:`new_threads` functions return the same findings for a test
that wants to look for itself.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Collection, Iterable
from typing import Optional

from docker.errors import APIError, NotFound
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from testcontainers.core.docker_client import DockerClient

from ._container import CONTAINER_LABEL, HARNESS_SESSION, SESSION_LABEL
from ._errors import LeakError
from ._polling import wait_until

__all__ = [
    "assert_no_containers",
    "assert_no_new_threads",
    "assert_no_znodes",
    "harness_object_ids",
    "list_containers",
    "list_znodes",
    "new_threads",
    "remove_containers",
    "thread_snapshot",
]


# ---------------------------------------------------------------------------------- znodes
#: Seconds a znode a leak check finds may take to go before it counts as left behind: an
#: acquire that gives up sends its node's delete as it returns, without waiting for it, so a
#: test that ends right after one may be checked while that delete is in flight.
ZNODE_GRACE = 2.0


def list_znodes(
    client: KazooClient, root: str, *, ephemeral_only: bool = False, grace: float = 0.0
) -> list[str]:
    """Every znode below ``root`` (not ``root`` itself), sorted; ``[]`` when ``root`` is absent.

    With ``ephemeral_only``, only ephemeral znodes (held by some session) are listed.  With
    ``grace``, znodes found are looked for again until they are gone or ``grace`` seconds
    have passed: deletes may be in flight (zklock sends the delete of an abandoned contender
    node as the acquire returns, without waiting for it).
    """
    found = _list_znodes(client, root, ephemeral_only)
    if found and grace > 0:

        def gone() -> bool:
            nonlocal found
            found = _list_znodes(client, root, ephemeral_only)
            return not found

        wait_until(gone, timeout=grace, step=0.02)
    return found


def _list_znodes(client: KazooClient, root: str, ephemeral_only: bool) -> list[str]:
    found: list[str] = []
    pending = [root.rstrip("/") or "/"]
    while pending:
        parent = pending.pop()
        try:
            children = client.get_children(parent)
        except NoNodeError:
            continue
        for name in children:
            path = f"{parent.rstrip('/')}/{name}"
            pending.append(path)
            if ephemeral_only:
                stat = client.exists(path)
                if stat is None or not stat.ephemeralOwner:
                    continue
            found.append(path)
    return sorted(found)


def assert_no_znodes(
    client: KazooClient, root: str, *, ephemeral_only: bool = False, grace: float = ZNODE_GRACE
) -> None:
    """Raise :class:`LeakError` listing the znodes still below ``root`` after ``grace`` seconds."""
    leaked = list_znodes(client, root, ephemeral_only=ephemeral_only, grace=grace)
    if leaked:
        kind = "ephemeral znodes" if ephemeral_only else "znodes"
        raise LeakError(f"{kind} under {root}", leaked)


# --------------------------------------------------------------------------------- threads
def thread_snapshot() -> frozenset[threading.Thread]:
    """The threads alive now, to compare with later (see :func:`new_threads`)."""
    return frozenset(threading.enumerate())


def new_threads(
    before: Iterable[threading.Thread],
    *,
    grace: float = 2.0,
    ignore: Optional[Callable[[threading.Thread], bool]] = None,
) -> list[threading.Thread]:
    """Threads alive now that were not in ``before``.

    Waits up to ``grace`` seconds for them to end (kazoo's threads finish shortly after
    ``stop()``). ``ignore`` excludes threads that may outlive a test on purpose.
    """
    old = frozenset(before)
    deadline = time.monotonic() + grace
    while True:
        extra = [
            t
            for t in threading.enumerate()
            if t not in old and t.is_alive() and not (ignore is not None and ignore(t))
        ]
        if not extra or time.monotonic() >= deadline:
            return extra
        time.sleep(0.05)


def assert_no_new_threads(
    before: Iterable[threading.Thread],
    *,
    grace: float = 2.0,
    ignore: Optional[Callable[[threading.Thread], bool]] = None,
) -> None:
    """Raise :class:`LeakError` when threads started after ``before`` are still alive."""
    leaked = new_threads(before, grace=grace, ignore=ignore)
    if leaked:
        raise LeakError(
            "threads",
            [f"{t.name} ({'daemon' if t.daemon else 'non-daemon'}, ident {t.ident})" for t in leaked],
        )


# ------------------------------------------------------------------------------ containers
def list_containers(*, session: Optional[str] = HARNESS_SESSION) -> list[str]:
    """Containers (running or not) created by the harness, as ``name (id, status)``.

    ``session`` limits the list to one harness session: this process's by default, ``None``
    for every session.
    """
    label = CONTAINER_LABEL if session is None else f"{SESSION_LABEL}={session}"
    client = DockerClient().client
    try:
        containers = client.containers.list(all=True, filters={"label": label})
        return sorted(f"{c.name} ({c.short_id}, {c.status})" for c in containers)
    finally:
        client.close()


def assert_no_containers(*, session: Optional[str] = HARNESS_SESSION) -> None:
    """Raise :class:`LeakError` when containers of the harness (session) still exist."""
    leaked = list_containers(session=session)
    if leaked:
        raise LeakError("ZooKeeper containers", leaked)


def remove_containers(
    *, session: Optional[str] = HARNESS_SESSION, sparing: Collection[str] = ()
) -> list[str]:
    """Force-remove the harness's containers and networks; return the containers removed.

    ``session`` selects them as in :func:`list_containers`. Containers and networks whose full
    Docker id is in ``sparing`` are left alone: the plugin spares what existed when its pytest
    session started, since a run inside a test (pytester, in-process) shares this process's
    harness session with the outer run, whose containers are still in use.
    """
    label = CONTAINER_LABEL if session is None else f"{SESSION_LABEL}={session}"
    spared = frozenset(sparing)
    client = DockerClient().client
    removed: list[str] = []
    try:
        for container in client.containers.list(all=True, filters={"label": label}):
            if container.id in spared:
                continue
            with contextlib.suppress(NotFound):
                container.remove(force=True, v=True)
                removed.append(f"{container.name} ({container.short_id})")
        for network in client.networks.list(filters={"label": label}):
            if network.id in spared:
                continue
            with contextlib.suppress(APIError):
                network.remove()
    finally:
        client.close()
    return sorted(removed)


def harness_object_ids(*, session: Optional[str] = HARNESS_SESSION) -> frozenset[str]:
    """The full ids of the harness's containers and networks that exist now.

    ``session`` selects them as in :func:`list_containers`; pass the result to
    :func:`remove_containers` as ``sparing`` to keep them.
    """
    label = CONTAINER_LABEL if session is None else f"{SESSION_LABEL}={session}"
    client = DockerClient().client
    try:
        containers = client.containers.list(all=True, filters={"label": label})
        networks = client.networks.list(filters={"label": label})
        return frozenset(str(o.id) for o in [*containers, *networks])
    finally:
        client.close()
