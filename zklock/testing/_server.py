"""The ZooKeeper a test runs against: a connect string, and the container if the harness owns it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ._container import ZooKeeperContainer
from ._fourletter import server_mode

__all__ = ["ZooKeeperServer"]


@dataclass(frozen=True)
class ZooKeeperServer:
    """A running ZooKeeper server (or external ensemble) that tests connect to.

    ``container`` is the harness's container, or ``None`` when the servers come from
    ``ZKLOCK_ZOOKEEPER_HOSTS``.
    """

    connect_string: str
    container: Optional[ZooKeeperContainer] = None

    @property
    def external(self) -> bool:
        """True when the harness did not start this server (no container to fault)."""
        return self.container is None

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every server in :attr:`connect_string`."""
        servers = self.connect_string.partition("/")[0]
        result = []
        for entry in servers.split(","):
            host, _, port = entry.strip().rpartition(":")
            result.append((host.strip("[]"), int(port)))
        return result

    def mode(self) -> Optional[str]:
        """``srvr`` mode of the first server, or ``None`` when it does not serve."""
        host, port = self.addresses[0]
        return server_mode(host, port)
