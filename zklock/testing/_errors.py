"""Errors raised by the ZooKeeper test harness.

::

    HarnessError (RuntimeError)             any failure of the harness itself
    ├── SettingsError (also ValueError)     a ZKLOCK_ZOOKEEPER_* variable has a bad value
    ├── ImageNotAvailableError              the image is not local and pulling is off
    ├── ZooKeeperStartError                 a server or ensemble did not become ready
    ├── PortInUseError                      a fixed client port asked for is taken
    ├── EnsembleNotSettledError             no single leader within the time allowed
    │                                       (also TimeoutError)
    └── FaultsUnavailableError              fault tools asked for, but the servers are
                                            external (ZKLOCK_ZOOKEEPER_HOSTS)
    LeakError (AssertionError)              a test left znodes, threads or containers behind

``LeakError`` is an ``AssertionError`` so that pytest reports a leak as a failed check, not as a
broken harness.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

__all__ = [
    "EnsembleNotSettledError",
    "FaultsUnavailableError",
    "HarnessError",
    "ImageNotAvailableError",
    "LeakError",
    "PortInUseError",
    "SettingsError",
    "ZooKeeperStartError",
]


class HarnessError(RuntimeError):
    """Base class of the harness's own failures (not of the code under test)."""


class SettingsError(HarnessError, ValueError):
    """An environment setting of the harness has a value it does not understand."""


class ImageNotAvailableError(HarnessError):
    """The ZooKeeper image is not present locally and ``ZKLOCK_ZOOKEEPER_PULL=never``."""

    def __init__(self, image: str) -> None:
        self.image = image
        super().__init__(
            f"ZooKeeper image {image!r} is not present locally and pulling is disabled "
            f"(ZKLOCK_ZOOKEEPER_PULL=never). Build one with docker/zookeeper/build-image.sh, "
            f"load it with `docker load`, or point ZKLOCK_ZOOKEEPER_IMAGE at a local image."
        )

    def __reduce__(self) -> tuple[type[ImageNotAvailableError], tuple[str]]:
        return type(self), (self.image,)


class ZooKeeperStartError(HarnessError):
    """A ZooKeeper container or ensemble failed to start; ``logs`` holds its last output."""

    def __init__(self, message: str, logs: str = "") -> None:
        self.message = message
        self.logs = logs
        super().__init__(message)

    def __str__(self) -> str:
        if not self.logs:
            return self.message
        return f"{self.message}\n--- container logs (last lines) ---\n{self.logs.rstrip()}"

    def __reduce__(self) -> tuple[type[ZooKeeperStartError], tuple[str, str]]:
        return type(self), (self.message, self.logs)


class PortInUseError(HarnessError):
    """A server was to listen on a fixed port (``host``, ``port``), but something else has it."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        super().__init__(f"port {port} on {host} is in use ({reason})")

    def __reduce__(self) -> tuple[type[PortInUseError], tuple[str, int, str]]:
        return type(self), (self.host, self.port, self.reason)


class EnsembleNotSettledError(HarnessError, TimeoutError):
    """An ensemble did not reach exactly one leader and only followers in time."""

    def __init__(self, timeout: float, modes: dict[int, Optional[str]]) -> None:
        self.timeout = timeout
        self.modes = dict(modes)
        super().__init__(f"ensemble not settled after {timeout:g}s; server modes: {self.modes}")

    def __reduce__(
        self,
    ) -> tuple[type[EnsembleNotSettledError], tuple[float, dict[int, Optional[str]]]]:
        return type(self), (self.timeout, self.modes)


class FaultsUnavailableError(HarnessError):
    """Fault injection needs containers the harness owns; external servers cannot be used."""


class LeakError(AssertionError):
    """A test left resources behind; ``leaked`` lists them (paths, thread or container names)."""

    def __init__(self, what: str, leaked: Sequence[str]) -> None:
        self.what = what
        self.leaked = list(leaked)
        shown = "\n  ".join(self.leaked[:50])
        more = f"\n  ... and {len(self.leaked) - 50} more" if len(self.leaked) > 50 else ""
        super().__init__(f"{len(self.leaked)} {what} left behind:\n  {shown}{more}")

    def __reduce__(self) -> tuple[type[LeakError], tuple[str, list[str]]]:
        return type(self), (self.what, self.leaked)
