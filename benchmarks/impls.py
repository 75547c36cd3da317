"""The implementations under test, behind one small interface.

Each one is a session (a ``KazooClient``, or tooz's coordinator around one) plus lock objects
on it.  Names, as they appear in tables and JSON:

``kazoo``        ``kazoo.recipe.lock.Lock`` (the reference of every ratio)
``zklock``       ``zklock.Lock`` on a stock ``KazooClient``
``zklock+lean``  ``zklock.Lock`` on ``KazooClient(handler=zklock.handler.LeanHandler())``
``kazoo+lean``   kazoo's Lock on the lean handler (shows what the handler alone is worth, and
                 against ``zklock+lean`` what the recipe alone is worth)
``tooz``         tooz's ZooKeeper lock (``kazoo://`` driver; kazoo's Lock underneath)
``raw``          the floor: bare Create (ephemeral, sequential) + GetChildren + Delete, one after
                 another, on a stock ``KazooClient``; no lock logic at all
``raw+lean``     the same floor on the lean handler
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any, Callable, Optional

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NotEmptyError

SESSION_TIMEOUT = 10.0
BENCH_ROOT = "/zklock-bench"  # every benchmark's znodes live below it, removed afterwards
TOOZ_LOCKS = "/tooz/locks"  # where tooz's kazoo driver keeps its locks (namespace "tooz")
REFERENCE = "kazoo"
#: Not a lock: kazoo's semaphore with two leases, which lets two holders in at once.  Never
#: measured by default; the suite's own tests run it to show its exclusion check catches that.
TWO_AT_ONCE = "two-at-once"
ALL = ("zklock", "zklock+lean", "kazoo", "kazoo+lean", "tooz", "raw", "raw+lean", TWO_AT_ONCE)
UNCONTENDED = ("zklock", "zklock+lean", "kazoo", "kazoo+lean", "tooz", "raw")
CONTENDED = ("zklock", "zklock+lean", "kazoo", "kazoo+lean", "tooz")
SCALE = ("zklock", "zklock+lean", "kazoo")


def _client(hosts: str, lean: bool) -> KazooClient:
    handler = None
    if lean:
        from zklock.handler import LeanHandler

        handler = LeanHandler()
    client = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT, handler=handler)
    client.start(timeout=30)
    return client


def tooz_lock_name(path: str) -> str:
    """The tooz lock name a benchmark lock on ``path`` gets (tooz takes a name, not a path)."""
    return path.strip("/").replace("/", "-")


def remove_znodes(hosts: str, base: str) -> None:
    """Delete what a run below ``base`` left: its tree, and tooz's locks named after it.

    tooz's own ``/tooz/locks`` stays: another application on the server may use tooz.
    """
    client = _client(hosts, lean=False)
    try:
        with contextlib.suppress(NoNodeError):
            client.delete(base, recursive=True)
        prefix = tooz_lock_name(base)
        with contextlib.suppress(NoNodeError):
            for name in client.get_children(TOOZ_LOCKS):
                if name.startswith(prefix):
                    with contextlib.suppress(NoNodeError):
                        client.delete(f"{TOOZ_LOCKS}/{name}", recursive=True)
        with contextlib.suppress(NoNodeError, NotEmptyError):  # another run's nodes stay
            client.delete(BENCH_ROOT)
    finally:
        client.stop()
        client.close()


class Session:
    """One implementation's session, able to make lock objects on it."""

    def __init__(self, impl: str, hosts: str) -> None:
        if impl not in ALL:
            raise ValueError(f"unknown implementation {impl!r}; choose from {', '.join(ALL)}")
        self.impl = impl
        self.hosts = hosts
        self._coordinator: Any = None
        if impl == "tooz":
            from tooz import coordination

            first, _, rest = hosts.partition(",")
            options: dict[str, Any] = {"hosts": rest} if rest else {}
            member = f"bench-{uuid.uuid4().hex[:8]}".encode()
            self._coordinator = coordination.get_coordinator(
                f"kazoo://{first}", member, timeout=str(int(SESSION_TIMEOUT)), **options
            )
            self._coordinator.start(start_heart=False)
            self.client: KazooClient = self._coordinator._coord
        else:
            self.client = _client(hosts, lean=impl.endswith("+lean"))

    @property
    def session_id(self) -> int:
        """The ZooKeeper session id (public ``KazooClient.client_id``)."""
        return int(self.client.client_id[0])

    def lock(self, path: str) -> Lock:
        """A lock object on ``path`` (tooz: on lock name ``path``, under tooz's namespace)."""
        return Lock(self, path)

    def close(self) -> None:
        """End the session."""
        if self._coordinator is not None:
            self._coordinator.stop()
            return
        self.client.stop()
        self.client.close()


class Lock:
    """``acquire()`` / ``release()`` / ``token`` for every implementation."""

    def __init__(self, session: Session, path: str) -> None:
        self.session = session
        self.path = path
        impl = session.impl
        self._raw_node: Optional[str] = None
        self.acquire: Callable[[], object]
        self.release: Callable[[], object]
        if impl.startswith("zklock"):
            import zklock

            self._zk = zklock.Lock(session.client, path)
            self.acquire, self.release = self._zk.acquire, self._zk.release
        elif impl.startswith("kazoo"):
            from kazoo.recipe.lock import Lock as KazooLock

            self._kz = KazooLock(session.client, path)
            self.acquire, self.release = self._kz.acquire, self._kz.release
        elif impl == "tooz":
            self._tz = session._coordinator.get_lock(tooz_lock_name(path).encode())
            self.acquire, self.release = self._tz.acquire, self._tz.release
        elif impl == TWO_AT_ONCE:
            from kazoo.recipe.lock import Semaphore

            self._two = Semaphore(session.client, path, max_leases=2)
            self.acquire, self.release = self._two.acquire, self._two.release
        else:
            self.acquire, self.release = self._raw_acquire, self._raw_release

    def token(self) -> Optional[int]:
        """zklock's fencing token of the current hold (None for the others)."""
        lease = getattr(getattr(self, "_zk", None), "lease", None)
        return None if lease is None else int(lease.token)

    # The floor: what any queue-based lock must at least send, with no checks at all.
    def _raw_acquire(self) -> None:
        client = self.session.client
        self._raw_node = client.create(f"{self.path}/n-", ephemeral=True, sequence=True)
        client.get_children(self.path)

    def _raw_release(self) -> None:
        assert self._raw_node is not None
        self.session.client.delete(self._raw_node)
        self._raw_node = None


def prepare_path(client: KazooClient, path: str) -> None:
    """Create ``path`` (and parents) if missing, so every implementation starts alike."""
    client.ensure_path(path)
