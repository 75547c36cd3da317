"""A ZooKeeper ensemble of containers, with fault tools (stop, kill, pause, restart ...).

The nodes share a user-defined Docker network, where node ``i`` is reachable as ``zk<i>``; the
client ports are published on fixed loopback ports chosen up front, so a node keeps its address
across ``docker stop`` / ``docker start``. Nodes never become ready one at a time: the ensemble
starts them all, then waits for exactly one leader with every other node following.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Optional, Union

from testcontainers.core.network import Network

from ._container import (
    CONTAINER_LABEL,
    DEFAULT_MAX_SESSION_TIMEOUT,
    DEFAULT_MIN_SESSION_TIMEOUT,
    DEFAULT_TICK_TIME,
    ZooKeeperContainer,
    free_loopback_ports,
    harness_labels,
)
from ._errors import EnsembleNotSettledError, HarnessError, ZooKeeperStartError
from ._fourletter import client_sessions, server_mode
from ._settings import LOOPBACK, PullPolicy, Settings, apply_testcontainers_settings, pull_policy

if TYPE_CHECKING:
    from typing import Self

__all__ = ["ZooKeeperEnsemble"]

_log = logging.getLogger(__name__)

_POLL = 0.05
_STOP_GRACE = 5  # seconds docker waits after SIGTERM before SIGKILL


class ZooKeeperEnsemble:
    """``size`` ZooKeeper servers in containers, forming one ensemble (nodes ``1..size``).

    ::

        with ZooKeeperEnsemble() as ensemble:
            client = KazooClient(hosts=ensemble.connect_string)
            ensemble.kill(ensemble.leader())     # returns once a new leader serves
            ensemble.start(...)                  # the node rejoins as a follower

    ``image`` and ``pull`` (a :class:`PullPolicy` or its value) default to :class:`Settings`
    from the environment. Fault methods wait (up to ``settle_timeout`` seconds) until the
    remaining nodes settle, as long as they still form a quorum; pass ``wait=False`` to return
    at once. ``jvm_flags`` replaces every
    node's JVM flags (see :meth:`ZooKeeperContainer.with_jvm_flags`).
    """

    def __init__(
        self,
        size: int = 3,
        image: Optional[str] = None,
        *,
        pull: Optional[Union[PullPolicy, str]] = None,
        tick_time: int = DEFAULT_TICK_TIME,
        init_limit: int = 20,
        sync_limit: int = 5,
        min_session_timeout: int = DEFAULT_MIN_SESSION_TIMEOUT,
        max_session_timeout: int = DEFAULT_MAX_SESSION_TIMEOUT,
        startup_timeout: float = 60.0,
        settle_timeout: float = 30.0,
        jvm_flags: Optional[str] = None,
    ) -> None:
        if size < 1:
            raise ValueError(f"an ensemble needs at least one node, not {size}")
        # "never" as a plain string must become PullPolicy.NEVER (compared by identity when
        # the nodes start), or Docker would pull; a bad value fails here.
        policy = None if pull is None else pull_policy(pull)
        apply_testcontainers_settings()
        if image is None or policy is None:
            settings = Settings.from_env()
            image = settings.image if image is None else image
            policy = settings.pull if policy is None else policy
        self.image = image
        self.size = size
        self.tick_time = tick_time
        self.sync_limit = sync_limit
        self.startup_timeout = startup_timeout
        self.settle_timeout = settle_timeout
        self._pull: PullPolicy = policy
        self._init_limit = init_limit
        self._sessions = (min_session_timeout, max_session_timeout)
        self._jvm_flags = jvm_flags
        self._network: Optional[Network] = None
        self._nodes: dict[int, ZooKeeperContainer] = {}
        self._ports: dict[int, int] = {}
        self._down: set[int] = set()
        self._paused: set[int] = set()

    # ---------------------------------------------------------------------------- lifecycle
    def open(self) -> Self:
        """Create the network and the nodes, start them and wait for a settled ensemble.

        Raises :class:`ZooKeeperStartError` (with every node's last log lines) and removes
        whatever it created when the ensemble does not settle within ``startup_timeout``.
        """
        if self._nodes:
            raise HarnessError("ensemble already open")
        ids = range(1, self.size + 1)
        servers = " ".join(f"server.{i}=zk{i}:2888:3888;2181" for i in ids)
        try:
            self._network = Network(docker_network_kw={"labels": harness_labels()}).create()
            for i, port in zip(ids, free_loopback_ports(self.size)):
                self._ports[i] = port
                node = (
                    ZooKeeperContainer(
                        self.image,
                        host_port=port,
                        pull=self._pull,
                        wait=False,
                        labels={f"{CONTAINER_LABEL}.node": str(i)},
                        hostname=f"zk{i}",
                    )
                    .with_network(self._network)
                    .with_network_aliases(f"zk{i}")
                    .with_tick_time(self.tick_time)
                    .with_session_timeouts(*self._sessions)
                    .with_envs(
                        ZOO_MY_ID=str(i),
                        ZOO_SERVERS=servers,
                        ZOO_INIT_LIMIT=str(self._init_limit),
                        ZOO_SYNC_LIMIT=str(self.sync_limit),
                        ZOO_STANDALONE_ENABLED="false" if self.size == 1 else "true",
                    )
                    # Peers' names resolve to the network interface, not to what the
                    # container's own hostname resolves to: listen on all addresses.
                    .with_config("quorumListenOnAllIPs", "true")
                )
                if self._jvm_flags is not None:
                    node.with_jvm_flags(self._jvm_flags)
                self._nodes[i] = node
                node.start()
            self.wait_settled(self.startup_timeout)
        except BaseException as exc:
            logs = "\n".join(
                f"--- zk{i} ---\n{node.logs_tail(30).rstrip()}" for i, node in self._nodes.items()
            )
            self.close()
            if isinstance(exc, EnsembleNotSettledError):
                raise ZooKeeperStartError(f"ZooKeeper ensemble did not start: {exc}", logs) from exc
            raise
        return self

    def close(self) -> None:
        """Remove every node and the network; safe to call more than once.

        A node that cannot be removed (Docker's API error, a timeout or a broken connection
        to the daemon) is logged and the others are still removed, then the network.
        """
        try:
            for i, node in self._nodes.items():
                # Any failure, not only docker's APIError: requests' timeouts and connection
                # errors would otherwise leave the remaining nodes and the network behind.
                if i in self._paused:
                    try:
                        node.get_wrapped_container().unpause()
                    except Exception:
                        _log.warning("zklock.testing: could not unpause zk%d", i, exc_info=True)
                try:
                    node.stop()
                except Exception:
                    _log.warning("zklock.testing: could not remove zk%d", i, exc_info=True)
        finally:
            self._nodes.clear()
            self._down.clear()
            self._paused.clear()
            network, self._network = self._network, None
            if network is not None:
                try:
                    network.remove()
                except Exception:
                    _log.warning("zklock.testing: could not remove the ensemble's network", exc_info=True)

    def __enter__(self) -> Self:
        """Start the ensemble (:meth:`open`); leaving the block stops and removes it."""
        return self.open()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    # ---------------------------------------------------------------------------- inspection
    @property
    def ids(self) -> tuple[int, ...]:
        """Node numbers, ``1..size``."""
        return tuple(range(1, self.size + 1))

    @property
    def nodes(self) -> Mapping[int, ZooKeeperContainer]:
        """The node containers by number (read-only view)."""
        return MappingProxyType(self._nodes)

    @property
    def available(self) -> frozenset[int]:
        """Nodes neither stopped, killed nor paused."""
        return frozenset(self._nodes) - self._down - self._paused

    def address(self, node: int) -> tuple[str, int]:
        """``(host, port)`` of ``node``'s client port (the same across restarts)."""
        self._check(node)
        return LOOPBACK, self._ports[node]

    def network_address(self, node: int) -> Optional[tuple[str, int]]:
        """``node``'s ``(ip, 2181)`` on the ensemble's network, skipping Docker's port proxy.

        See :attr:`ZooKeeperContainer.network_address`; unlike :meth:`address` it may change
        when the node restarts.
        """
        self._check(node)
        return self._nodes[node].network_address

    @property
    def connect_string(self) -> str:
        """The kazoo ``hosts`` string of all nodes (a property, as on every server class)."""
        return self.connect_string_without(())

    def connect_string_without(self, nodes: Iterable[int]) -> str:
        """The kazoo ``hosts`` string of all nodes but ``nodes``."""
        skip = set(nodes)
        return ",".join(f"{LOOPBACK}:{self._ports[i]}" for i in self._nodes if i not in skip)

    def mode(self, node: int) -> Optional[str]:
        """``node``'s ``srvr`` mode, or ``None`` (down, paused, electing, unreachable)."""
        self._check(node)
        if node in self._down or node in self._paused:
            return None
        return server_mode(LOOPBACK, self._ports[node], timeout=0.5)

    def modes(self) -> dict[int, Optional[str]]:
        """Every node's mode, by node number."""
        return {i: self.mode(i) for i in self._nodes}

    def leader(self) -> int:
        """The node that reports ``leader`` now; :class:`HarnessError` when none does."""
        leaders = [i for i, m in self.modes().items() if m == "leader"]
        if len(leaders) != 1:
            raise HarnessError(f"expected one leader, modes are {self.modes()}")
        return leaders[0]

    def followers(self) -> list[int]:
        """The nodes that report ``follower`` now."""
        return [i for i, m in self.modes().items() if m == "follower"]

    def node_of_session(self, session_id: int) -> Optional[int]:
        """The available node a client session is connected to now (``cons``), or ``None``.

        ``session_id`` is ``client.client_id[0]``, or a lock node's ``ephemeralOwner``.
        ``None`` means no available node lists it: the client is between servers, its session
        ended, or it is connected to a stopped or paused node.
        """
        for i in sorted(self.available):
            with contextlib.suppress(OSError):
                if session_id in client_sessions(LOOPBACK, self._ports[i], timeout=1.0):
                    return i
        return None

    def wait_settled(self, timeout: Optional[float] = None, *, hold: float = 0.0) -> dict[int, Optional[str]]:
        """Wait until the available nodes show exactly one leader, the others following.

        ``hold`` is how long that must stay true: a node just unpaused still reports its old
        mode for a moment. Checks about once a second that the nodes' containers still run.
        Returns the modes; raises :class:`EnsembleNotSettledError` after ``timeout`` seconds
        (default ``settle_timeout``).
        """
        limit = self.settle_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        next_check = time.monotonic() + 1.0
        settled_since: Optional[float] = None
        while True:
            nodes = sorted(self.available)
            modes = {i: self.mode(i) for i in nodes}
            now = time.monotonic()
            values = list(modes.values())
            if nodes and values.count("leader") == 1 and values.count("follower") == len(nodes) - 1:
                settled_since = now if settled_since is None else settled_since
                if now - settled_since >= hold:
                    return modes
            else:
                settled_since = None
            if now >= deadline:
                raise EnsembleNotSettledError(limit, modes)
            if now >= next_check:
                next_check = now + 1.0
                self._check_running(nodes)
            time.sleep(_POLL)

    def logs_tail(self, node: int, lines: int = 80) -> str:
        """``node``'s last ``lines`` lines of output."""
        self._check(node)
        return self._nodes[node].logs_tail(lines)

    # ------------------------------------------------------------------------------- faults
    def stop(self, node: int, *, wait: bool = True) -> None:
        """``docker stop`` ``node`` (SIGTERM, a clean shutdown); wait for the rest to settle."""
        self._container(node).stop(timeout=_STOP_GRACE)
        self._down.add(node)
        self._settle_after_loss(wait)

    def kill(self, node: int, *, wait: bool = True) -> None:
        """``docker kill`` ``node`` (SIGKILL, a crash); wait for the rest to settle."""
        self._container(node).kill()
        self._down.add(node)
        self._settle_after_loss(wait)

    def pause(self, node: int, *, wait: bool = True) -> None:
        """Freeze ``node`` (``docker pause``); wait for the rest to settle.

        A paused node keeps its connections but answers nothing, like a long GC pause.
        """
        self._container(node).pause()
        self._paused.add(node)
        self._settle_after_loss(wait)

    def unpause(self, node: int, *, wait: bool = True) -> None:
        """Thaw a paused ``node``; wait until the whole ensemble has settled again."""
        if node not in self._paused:
            raise HarnessError(f"node {node} is not paused")
        self._nodes[node].get_wrapped_container().unpause()
        self._paused.discard(node)
        if wait:
            self.wait_settled(hold=max(0.5, self.sync_limit * self.tick_time / 1000))

    def start(self, node: int, *, wait: bool = True) -> None:
        """Start a stopped or killed ``node`` (same address); wait until it has rejoined."""
        if node not in self._down:
            raise HarnessError(f"node {node} is not stopped")
        self._container(node).start()
        self._down.discard(node)
        if wait:
            self.wait_settled()

    def recover(self, *, wait: bool = True) -> None:
        """Unpause paused nodes and start stopped ones; wait until all have settled."""
        paused = bool(self._paused)
        for node in sorted(self._paused):
            self._nodes[node].get_wrapped_container().unpause()
            self._paused.discard(node)
        for node in sorted(self._down):
            self._nodes[node].get_wrapped_container().start()
            self._down.discard(node)
        if wait:
            hold = max(0.5, self.sync_limit * self.tick_time / 1000) if paused else 0.0
            self.wait_settled(hold=hold)

    def restart(self, node: int, *, wait: bool = True) -> None:
        """Stop and start ``node`` (a clean restart); wait until it has rejoined."""
        self._container(node).stop(timeout=_STOP_GRACE)
        self._down.add(node)
        self.start(node, wait=wait)

    # ------------------------------------------------------------------------------ helpers
    def _check(self, node: int) -> None:
        if node not in self._nodes:
            raise HarnessError(f"no node {node} in this ensemble (open: {bool(self._nodes)})")

    def _container(self, node: int) -> Any:  # a docker-py Container (docker-py is untyped)
        self._check(node)
        if node in self._paused:
            raise HarnessError(f"node {node} is paused; unpause it first")
        return self._nodes[node].get_wrapped_container()

    def _settle_after_loss(self, wait: bool) -> None:
        if wait and len(self.available) > self.size // 2:
            self.wait_settled()

    def _check_running(self, nodes: Iterable[int]) -> None:
        for i in nodes:
            container = self._nodes[i].get_wrapped_container()
            container.reload()
            if container.status in ("exited", "dead"):
                raise ZooKeeperStartError(
                    f"ZooKeeper node zk{i} {container.status}", self._nodes[i].logs_tail()
                )
