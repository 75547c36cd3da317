"""One ZooKeeper server in a Docker container, through testcontainers.

The harness owns its containers: Ryuk is off (its image cannot be pulled without a registry), so
:meth:`ZooKeeperContainer.stop` removes the container, and every container carries the label
``io.zklock.testing`` (plus testcontainers' ``org.testcontainers=true``) for leak checks and
sweeps. The client port is published on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Optional, Union

from docker.errors import APIError, ImageNotFound, NotFound
from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import WaitStrategy

from ._errors import ImageNotAvailableError, ZooKeeperStartError
from ._fourletter import SERVING_MODES, server_mode, wait_for_mode
from ._ports import free_loopback_ports
from ._settings import (
    DEFAULT_JVMFLAGS,
    DEFAULT_MAX_SESSION_TIMEOUT,
    DEFAULT_MIN_SESSION_TIMEOUT,
    DEFAULT_TICK_TIME,
    LOOPBACK,
    PullPolicy,
    Settings,
    apply_testcontainers_settings,
    pull_policy,
)

if TYPE_CHECKING:
    from typing import Self

    from testcontainers.core.waiting_utils import WaitStrategyTarget

__all__ = [
    "CLIENT_PORT",
    "CONTAINER_LABEL",
    "DEFAULT_MAX_SESSION_TIMEOUT",
    "DEFAULT_MIN_SESSION_TIMEOUT",
    "DEFAULT_TICK_TIME",
    "HARNESS_SESSION",
    "PID_LABEL",
    "SESSION_LABEL",
    "ZooKeeperContainer",
    "ZooKeeperReady",
    "free_loopback_ports",
    "harness_labels",
]

CLIENT_PORT = 2181
#: Label on every container and network the harness creates.
CONTAINER_LABEL = "io.zklock.testing"
#: Label naming the process (harness session) that created a container.
SESSION_LABEL = "io.zklock.testing.session"
#: Label with the process id of the creator, so that a sweep can spare a run still going.
PID_LABEL = "io.zklock.testing.pid"
#: This process's harness session: the value of :data:`SESSION_LABEL` on its containers.
HARNESS_SESSION = uuid.uuid4().hex[:12]


_started = False  # set once this process has created a harness container


def started_containers() -> bool:
    """Whether this process has started any harness container (so a sweep can be useful)."""
    return _started


def harness_labels() -> dict[str, str]:
    """The labels the harness puts on each container and network it creates."""
    return {CONTAINER_LABEL: "true", SESSION_LABEL: HARNESS_SESSION, PID_LABEL: str(os.getpid())}


_LOG_LINES = 80


class ZooKeeperReady(WaitStrategy):
    """Wait until ``srvr`` reports one of ``modes`` (by default any serving mode).

    Gives up with :class:`ZooKeeperStartError` after ``startup_timeout`` seconds, or early
    when the container exits.
    """

    def __init__(self, modes: Iterable[str] = SERVING_MODES, startup_timeout: float = 60.0) -> None:
        super().__init__()
        if not startup_timeout > 0:  # NaN fails this too
            raise ValueError(f"startup timeout must be a positive number of seconds, not {startup_timeout}")
        self._modes = tuple(modes)
        self.with_poll_interval(0.05)
        # Set directly: testcontainers' with_startup_timeout() drops a timedelta's fraction.
        self._startup_timeout = float(startup_timeout)

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        """Block until the server in ``container`` serves, or raise ZooKeeperStartError."""
        if isinstance(container, ZooKeeperContainer):
            host, port = container.address
        else:
            host, port = container.get_container_host_ip(), container.get_exposed_port(CLIENT_PORT)

        def still_running() -> None:
            container.reload()
            if container.status in ("exited", "dead"):
                raise ZooKeeperStartError(f"ZooKeeper container {container.status} while starting")

        try:
            wait_for_mode(
                host,
                port,
                self._modes,
                timeout=self._startup_timeout,
                poll_interval=self._poll_interval,
                check=still_running,
            )
        except TimeoutError as exc:
            raise ZooKeeperStartError(str(exc)) from exc


class ZooKeeperContainer(DockerContainer):
    """A ZooKeeper server (standalone unless told otherwise) in a container.

    ::

        with ZooKeeperContainer() as zk:
            client = KazooClient(hosts=zk.get_connect_string())

    ``image`` and ``pull`` (a :class:`PullPolicy` or its value, ``"missing"`` or ``"never"``)
    default to :class:`Settings` from the environment. The server gets
    fast-session test settings (see :data:`DEFAULT_TICK_TIME`), all four-letter words, no
    AdminServer and a small JVM; the builder methods change them. ``host_port`` fixes the
    published port (default: a random free one). With ``wait=False``, :meth:`start` returns as
    soon as the container runs (ensemble members only serve once a quorum is up). ``labels``
    and other keyword arguments go to ``docker create``.
    """

    def __init__(
        self,
        image: Optional[str] = None,
        *,
        host_port: Optional[int] = None,
        pull: Optional[Union[PullPolicy, str]] = None,
        wait: bool = True,
        startup_timeout: float = 60.0,
        labels: Optional[Mapping[str, str]] = None,
        **kwargs: Any,
    ) -> None:
        # Coerced first, before any Docker call: a bad value fails here, and "never" as a plain
        # string must become PullPolicy.NEVER, or _configure() would let Docker pull.
        policy = None if pull is None else pull_policy(pull)
        apply_testcontainers_settings()
        if image is None or policy is None:
            settings = Settings.from_env()
            image = settings.image if image is None else image
            policy = settings.pull if policy is None else policy
        all_labels = {**(labels or {}), **harness_labels()}
        # Docker's embedded DNS forwards a name it does not know (an ensemble peer while it is
        # stopped, which the servers look up again and again) to the host's resolvers: off
        # this machine. A resolver on the container's own loopback answers nothing, at once.
        kwargs.setdefault("dns", [LOOPBACK])
        super().__init__(image, labels=all_labels, **kwargs)
        self._pull: PullPolicy = policy
        self._config: dict[str, str] = {}
        # docker-py takes (host_ip, host_port) here; testcontainers types the value as a port.
        self.ports[f"{CLIENT_PORT}/tcp"] = (LOOPBACK, host_port)  # type: ignore[assignment]
        self.with_envs(
            ZOO_4LW_COMMANDS_WHITELIST="*",
            ZOO_ADMINSERVER_ENABLED="false",
            JVMFLAGS=DEFAULT_JVMFLAGS,
        )
        self.with_tick_time(DEFAULT_TICK_TIME)
        self.with_session_timeouts(DEFAULT_MIN_SESSION_TIMEOUT, DEFAULT_MAX_SESSION_TIMEOUT)
        if wait:
            self.waiting_for(ZooKeeperReady(startup_timeout=startup_timeout))

    # ----------------------------------------------------------------------------- builders
    def with_tick_time(self, milliseconds: int) -> Self:
        """Set ``tickTime`` (ZOO_TICK_TIME), the unit of ZooKeeper's timeouts."""
        if milliseconds <= 0:
            raise ValueError(f"tick time must be positive, not {milliseconds}")
        return self.with_env("ZOO_TICK_TIME", str(milliseconds))

    def with_session_timeouts(self, minimum: int, maximum: int) -> Self:
        """Set ``minSessionTimeout`` and ``maxSessionTimeout`` in milliseconds.

        The server clamps each client's requested timeout into this range.
        """
        if not 0 < minimum <= maximum:
            raise ValueError(f"need 0 < minimum <= maximum, not {minimum}, {maximum}")
        return self.with_config("minSessionTimeout", str(minimum)).with_config(
            "maxSessionTimeout", str(maximum)
        )

    def with_jvm_flags(self, flags: str) -> Self:
        """Replace the server's JVM flags (JVMFLAGS; default :data:`DEFAULT_JVMFLAGS`).

        The default JVM is small and starts fast but compiles with C1 only; a benchmark
        wants the JVM a deployment runs (for example ``"-Xms256m -Xmx256m"``: C2, G1).
        """
        return self.with_env("JVMFLAGS", flags)

    def with_config(self, key: str, value: str) -> Self:
        """Add a ``key=value`` line to zoo.cfg (through ZOO_CFG_EXTRA, as the official image)."""
        if not key or any(c.isspace() or c == "=" for c in key) or any(c.isspace() for c in value):
            raise ValueError(f"zoo.cfg entries cannot contain whitespace: {key!r}={value!r}")
        self._config[key] = value
        return self

    # ---------------------------------------------------------------------------- lifecycle
    def _configure(self) -> None:
        self.env["ZOO_CFG_EXTRA"] = " ".join(f"{k}={v}" for k, v in self._config.items())
        try:
            self.get_docker_client().client.images.get(self.image)
        except ImageNotFound:
            if self._pull is PullPolicy.NEVER:
                raise ImageNotAvailableError(self.image) from None

    def start(self) -> Self:
        """Create and start the container, then wait until ZooKeeper serves.

        On failure the container is removed and :class:`ZooKeeperStartError` carries its last
        log lines (:class:`ImageNotAvailableError` passes through unchanged).
        """
        global _started
        try:
            _started = True
            super().start()
        except ImageNotAvailableError:
            raise
        except BaseException as exc:
            logs = self.logs_tail()
            self.stop()
            if not isinstance(exc, Exception):
                raise
            if isinstance(exc, ZooKeeperStartError):
                exc.logs = exc.logs or logs
                raise
            raise ZooKeeperStartError(
                f"ZooKeeper container from image {self.image!r} did not start: {exc}", logs
            ) from exc
        return self

    def stop(self, force: bool = True, delete_volume: bool = True) -> None:
        """Remove the container and its volumes; safe to call more than once."""
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(NotFound):
                container.remove(force=force, v=delete_volume)
        self.get_docker_client().client.close()

    # ---------------------------------------------------------------------------- inspection
    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` of the client port on the loopback interface."""
        port = self.get_docker_client().port(self.get_wrapped_container().id, CLIENT_PORT)
        return LOOPBACK, int(port)

    @property
    def network_address(self) -> Optional[tuple[str, int]]:
        """``(ip, 2181)`` of the server on its Docker network, or ``None`` without one.

        On Linux the host reaches a container's network directly, without the userland proxy
        (``docker-proxy``) that carries the published loopback port. That proxy is a test-rig
        artefact that no deployment has, and it costs each request a hop through another
        process: benchmarks connect here. The address may change when the container restarts,
        so tests that restart servers use :attr:`address`.
        """
        self.get_wrapped_container().reload()
        networks = self.get_wrapped_container().attrs["NetworkSettings"]["Networks"] or {}
        for network in networks.values():
            if network.get("IPAddress"):
                return str(network["IPAddress"]), CLIENT_PORT
        return None

    def get_connect_string(self) -> str:
        """The kazoo ``hosts`` string of this server, ``127.0.0.1:<port>``."""
        host, port = self.address
        return f"{host}:{port}"

    @property
    def connect_string(self) -> str:
        """Same as :meth:`get_connect_string`."""
        return self.get_connect_string()

    def mode(self) -> Optional[str]:
        """The server's ``srvr`` mode now, or ``None`` when it does not serve."""
        host, port = self.address
        return server_mode(host, port)

    def logs_tail(self, lines: int = _LOG_LINES) -> str:
        """The container's last ``lines`` lines of output ("" before it exists)."""
        if self._container is None:
            return ""
        try:
            raw: bytes = self._container.logs(tail=lines)
        except APIError as exc:
            return f"(logs unavailable: {exc})"
        return raw.decode("utf-8", "replace")
