"""The backends of ``zklock server``: ZooKeeper in containers, or as local Java processes.

Both are thin adapters over :mod:`zklock.testing` (``ZooKeeperContainer`` / ``ZooKeeperEnsemble``
and ``LocalZooKeeper``) that add the development settings and turn the harness's errors into the
command's own: a taken ``--port`` is :class:`BackendUnavailable`, any other failure
:class:`ServerFailed`.  Only the docker backend needs ``zklock[testing]``.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import TYPE_CHECKING, Any, Protocol

from ._common import say
from ._errors import BackendUnavailable, ServerFailed

if TYPE_CHECKING:
    from ..testing import LocalZooKeeper, PortInUseError

__all__ = ["DEFAULT_PORT", "Backend", "ContainerBackend", "JavaBackend"]

DEFAULT_PORT = 2181
# Development settings on top of zklock.testing's (tickTime 200 ms): sessions of up to 60 s.
MIN_SESSION_TIMEOUT_MS = 400
MAX_SESSION_TIMEOUT_MS = 60_000


class Backend(Protocol):
    """A way to run ZooKeeper: start (returning the connect string), check, stop."""

    description: str

    def start(self) -> str:
        """Start every server and wait until they serve; return the connect string."""

    def check(self) -> None:
        """Raise :class:`ServerFailed` if a server is no longer running."""

    def stop(self) -> None:
        """Stop everything started so far and delete its data; idempotent."""


# ---------------------------------------------------------------------- helpers
def _kind(size: int) -> str:
    return "standalone" if size == 1 else f"{size}-server ensemble"


def _first_port(port: int | None) -> int:
    """The first client port for ``--port`` (0: free ports)."""
    return DEFAULT_PORT if port is None else port


def _port_in_use(error: PortInUseError) -> BackendUnavailable:
    return BackendUnavailable(f"{error}; is a ZooKeeper already running? --port 0 picks free ports")


# ---------------------------------------------------------------------- java backend
class JavaBackend:
    """ZooKeeper servers as local Java processes, through :class:`zklock.testing.LocalZooKeeper`."""

    def __init__(self, size: int, first_port: int | None) -> None:
        self.size = size
        self.first_port = first_port
        self.description = f"java, {_kind(size)}"
        self._servers: LocalZooKeeper | None = None

    @staticmethod
    def unavailable() -> str | None:
        """Why this backend cannot run here, or None if it can."""
        from ..testing import LocalZooKeeper

        return LocalZooKeeper.unavailable()

    def start(self) -> str:
        """Start the servers and wait until they serve; return the connect string."""
        from ..testing import HarnessError, LocalZooKeeper, PortInUseError

        self._servers = LocalZooKeeper(
            self.size,
            _first_port(self.first_port),
            min_session_timeout=MIN_SESSION_TIMEOUT_MS,
            max_session_timeout=MAX_SESSION_TIMEOUT_MS,
        )
        try:
            return self._servers.start()
        except PortInUseError as error:
            raise _port_in_use(error) from None
        except HarnessError as error:
            raise ServerFailed(str(error)) from None

    def check(self) -> None:
        """Raise :class:`ServerFailed` if a server process has exited."""
        from ..testing import HarnessError

        if self._servers is None:
            return
        try:
            self._servers.check()
        except HarnessError as error:
            raise ServerFailed(str(error)) from None

    def stop(self) -> None:
        """Stop every server and delete the data; idempotent."""
        if self._servers is not None:
            self._servers.stop()


# ---------------------------------------------------------------------- container backend
class ContainerBackend:
    """ZooKeeper in containers, through :mod:`zklock.testing` (``zklock[testing]``)."""

    def __init__(self, size: int, first_port: int | None, image: str | None) -> None:
        self.size = size
        self.first_port = first_port
        self.image = image
        self.description = f"docker, {_kind(size)}"
        self._running: Any = None  # a ZooKeeperContainer or a ZooKeeperEnsemble
        # This process's harness containers and networks from before start(): not ours to
        # sweep at stop() (None: start() never got that far).
        self._before: frozenset[str] | None = None

    @staticmethod
    def unavailable(image: str | None, must_be_local: bool) -> str | None:
        """Why containers cannot be used here, or None if they can.

        With ``must_be_local`` (``--backend auto``), an image that would have to be pulled
        counts as unavailable: auto never downloads.
        """
        try:
            # Through importlib: mypy would take the repository's docker/ directory for it.
            docker: Any = importlib.import_module("docker")
            from docker.errors import ImageNotFound

            from ..testing import HarnessError, Settings, ZooKeeperContainer  # noqa: F401 (installed?)
        except ImportError as error:
            return f"zklock[testing] is not installed ({error})"
        try:
            image = image or Settings.from_env().image
        except HarnessError as error:
            return str(error)
        try:
            client = docker.from_env(timeout=3)
        except Exception as error:
            return f"no Docker engine reachable ({type(error).__name__})"
        try:
            client.ping()
            if must_be_local:
                client.images.get(image)
        except ImageNotFound:
            return (
                f"image {image} is not present locally (docker pull {image}, or "
                "--backend docker to let zklock pull it)"
            )
        except Exception as error:
            return f"no Docker engine reachable ({type(error).__name__})"
        finally:
            client.close()
        return None

    def start(self) -> str:
        """Start the container(s) and wait until ZooKeeper serves; return the connect string."""
        from ..testing import (
            HarnessError,
            PortInUseError,
            Settings,
            ZooKeeperContainer,
            ZooKeeperEnsemble,
            loopback_ports,
        )
        from ..testing._leaks import harness_object_ids

        # The Docker engine's own refusals (no address pool left for a network, a port it
        # cannot bind...) are a server that did not start, not a bug of zklock's.
        docker_errors: Any = importlib.import_module("docker.errors")
        requests_errors: Any = importlib.import_module("requests.exceptions")
        try:
            self._before = harness_object_ids()
            settings = Settings.from_env()
            image = self.image or settings.image
            self.description += f", {image}"
            if self.size == 1:
                port = None
                if self.first_port != 0:
                    port = loopback_ports(1, _first_port(self.first_port))[0]
                container = ZooKeeperContainer(image, host_port=port, pull=settings.pull)
                self._running = container
                container.with_session_timeouts(MIN_SESSION_TIMEOUT_MS, MAX_SESSION_TIMEOUT_MS)
                container.start()
                return str(container.get_connect_string())
            if self.first_port not in (None, 0):
                say("--port is ignored for a container ensemble: it gets free ports")
            ensemble = ZooKeeperEnsemble(
                self.size,
                image,
                pull=settings.pull,
                max_session_timeout=MAX_SESSION_TIMEOUT_MS,
            )
            self._running = ensemble
            ensemble.open()
            return str(ensemble.connect_string)
        except PortInUseError as error:
            raise _port_in_use(error) from None
        except HarnessError as error:
            raise ServerFailed(str(error)) from None
        except (docker_errors.DockerException, requests_errors.RequestException) as error:
            raise ServerFailed(f"Docker refused: {error}") from None

    def check(self) -> None:
        """Raise :class:`ServerFailed` if a container stopped serving for good."""
        running = self._running
        if running is None:
            return
        containers = [running] if self.size == 1 else list(running.nodes.values())
        for container in containers:
            try:
                container.get_wrapped_container().reload()
                status = container.get_wrapped_container().status
            except Exception as error:
                raise ServerFailed(f"container gone: {error}") from None
            if status in ("exited", "dead"):
                raise ServerFailed(f"container {status}:\n{container.logs_tail(15)}")

    def stop(self) -> None:
        """Remove the container(s) (and the ensemble's network); idempotent.

        Then whatever else of this process's harness objects appeared since :meth:`start`
        began goes too: a start that failed cleans up after itself, and a stop signal in the
        middle of that clean-up would have left the rest behind.
        """
        running, self._running = self._running, None
        before, self._before = self._before, None
        try:
            if running is not None and self.size == 1:
                running.stop()
            elif running is not None:
                running.close()
        finally:
            if before is not None:
                from ..testing._leaks import remove_containers

                with contextlib.suppress(Exception):  # no Docker left: then nothing of ours
                    remove_containers(sparing=before)
