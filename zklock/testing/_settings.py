"""Harness settings, read from the environment.

=============================  =============================================================
``ZKLOCK_ZOOKEEPER_IMAGE``     image for containers; default ``zookeeper:3.9`` (Docker Hub)
``ZKLOCK_ZOOKEEPER_HOSTS``     ``host:port,...`` of an existing server or ensemble; when set,
                               no container is started (fault-injection fixtures then fail)
``ZKLOCK_ZOOKEEPER_PULL``      ``missing`` (default: pull the image if it is not local) or
                               ``never`` (fail with :class:`ImageNotAvailableError` instead)
=============================  =============================================================

:func:`apply_testcontainers_settings` prepares testcontainers for a machine without a
container registry and with a local Docker daemon.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional, Union

from ._errors import SettingsError

__all__ = [
    "DEFAULT_IMAGE",
    "DEFAULT_JVMFLAGS",
    "DEFAULT_MAX_SESSION_TIMEOUT",
    "DEFAULT_MIN_SESSION_TIMEOUT",
    "DEFAULT_TICK_TIME",
    "ENV_HOSTS",
    "ENV_IMAGE",
    "ENV_PULL",
    "LOOPBACK",
    "PullPolicy",
    "Settings",
    "apply_testcontainers_settings",
    "pull_policy",
]

ENV_IMAGE = "ZKLOCK_ZOOKEEPER_IMAGE"
ENV_HOSTS = "ZKLOCK_ZOOKEEPER_HOSTS"
ENV_PULL = "ZKLOCK_ZOOKEEPER_PULL"
#: The ZooKeeper image when ``ZKLOCK_ZOOKEEPER_IMAGE`` is not set: the official one on Docker Hub.
DEFAULT_IMAGE = "zookeeper:3.9"
LOOPBACK = "127.0.0.1"

#: Server defaults for every ZooKeeper the harness starts (containers and local Java): with a
#: 200 ms tick a lost session ends within about a second, while ``maxSessionTimeout`` stays
#: above kazoo's default request of 10 s, so the server never clamps a client's requested
#: timeout below what it asked for.
DEFAULT_TICK_TIME = 200
DEFAULT_MIN_SESSION_TIMEOUT = 400
DEFAULT_MAX_SESSION_TIMEOUT = 20_000
#: A small JVM (about 60 MiB per server), understood by both our image and the official one.
DEFAULT_JVMFLAGS = "-Xms16m -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData"

#: testcontainers variables and the values the harness needs: Ryuk's image cannot be pulled
#: without a registry (the fixtures remove their own containers instead), and a ``/.dockerenv``
#: file must not make testcontainers hand back a bridge gateway address instead of loopback.
_TESTCONTAINERS_ENV = {
    "TESTCONTAINERS_RYUK_DISABLED": "true",
    "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
    "TESTCONTAINERS_HOST_OVERRIDE": LOOPBACK,
}


class PullPolicy(str, enum.Enum):
    """What to do when the ZooKeeper image is not present locally."""

    MISSING = "missing"
    """Let Docker pull it (the default; needs a registry)."""
    NEVER = "never"
    """Fail with :class:`ImageNotAvailableError`, never pull."""


def pull_policy(value: Union[PullPolicy, str]) -> PullPolicy:
    """``value`` as a :class:`PullPolicy`: a member, or its value as a string (any case).

    The containers compare the policy by identity; a plain ``"never"`` left as a string would
    not be ``PullPolicy.NEVER`` and the image would be pulled. Raises :class:`SettingsError`
    (a ``ValueError``) for anything else.
    """
    if isinstance(value, PullPolicy):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return PullPolicy(value.strip().lower())
    choices = " or ".join(repr(p.value) for p in PullPolicy)
    raise SettingsError(f"pull policy {value!r}: expected a PullPolicy or {choices}")


@dataclass(frozen=True)
class Settings:
    """The harness's settings; :meth:`from_env` reads them from ``ZKLOCK_ZOOKEEPER_*``."""

    image: str = DEFAULT_IMAGE
    hosts: Optional[str] = None
    pull: PullPolicy = PullPolicy.MISSING

    @property
    def external(self) -> bool:
        """True when tests use existing servers (``hosts``) instead of containers."""
        return self.hosts is not None

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> Settings:
        """Read the settings from ``environ`` (default :data:`os.environ`).

        Empty variables count as unset. Raises :class:`SettingsError` on a value it does not
        understand.
        """
        env = os.environ if environ is None else environ
        image = env.get(ENV_IMAGE, "").strip() or DEFAULT_IMAGE
        hosts = env.get(ENV_HOSTS, "").strip() or None
        if hosts is not None:
            hosts = _check_hosts(hosts)
        pull_text = env.get(ENV_PULL, "").strip().lower() or PullPolicy.MISSING.value
        try:
            pull = PullPolicy(pull_text)
        except ValueError:
            choices = "|".join(p.value for p in PullPolicy)
            raise SettingsError(f"{ENV_PULL}={pull_text!r}: expected {choices}") from None
        return cls(image=image, hosts=hosts, pull=pull)


# An ASCII port: str.isdigit() also takes superscripts (which int() refuses) and other
# scripts' digits (which int() reads).
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
# What ZooKeeper refuses in a path (PathUtils.validatePath): control characters, surrogates,
# the private use area and the specials block.
_BAD_PATH_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\uf8ff\ufff0-\uffff]")


def _check_hosts(hosts: str) -> str:
    """Validate a ``host:port,...[/chroot]`` connect string and return it without spaces.

    A port is 1-65535 in ASCII digits; a chroot is a ZooKeeper path (no empty, ``.`` or ``..``
    segment, no trailing ``/``) without whitespace or commas, which in a connect string mean a
    mistyped server list rather than a node name.
    """
    servers, slash, chroot = hosts.partition("/")
    parts = [p.strip() for p in servers.split(",")]
    for part in parts:
        host, colon, port = part.rpartition(":")
        if not part or not colon or not host or not _PORT.fullmatch(port) or not 0 < int(port) < 65536:
            raise SettingsError(
                f"{ENV_HOSTS}={hosts!r}: expected host:port[,host:port...][/chroot] with ports "
                f"1-65535, not {part!r}"
            )
    if slash:
        problem = _chroot_problem(slash + chroot)
        if problem is not None:
            raise SettingsError(f"{ENV_HOSTS}={hosts!r}: chroot {slash + chroot!r} {problem}")
    return ",".join(parts) + slash + chroot


def _chroot_problem(path: str) -> Optional[str]:
    """Why ``path`` (starting with ``/``) is no usable chroot, or None when it is one."""
    if path.endswith("/"):
        return "ends with '/' (for no chroot, leave out the '/')"
    if any(segment in ("", ".", "..") for segment in path[1:].split("/")):
        return "has an empty, '.' or '..' segment"
    if any(c.isspace() or c == "," for c in path):
        return "contains whitespace or a comma"
    bad = _BAD_PATH_CHARS.search(path)
    if bad is not None:
        return f"contains {bad.group()!r}, which ZooKeeper refuses in a path"
    return None


def apply_testcontainers_settings() -> None:
    """Prepare testcontainers for a registry-less machine with a local Docker daemon.

    Disables Ryuk, pins the connection mode to ``docker_host`` and the host to 127.0.0.1.
    A variable the user has already set is left alone. The environment is set first, so the
    settings hold when testcontainers is imported later; when it is already imported, its
    ``testcontainers_config`` object is updated as well. Idempotent.
    """
    remote_daemon = os.environ.get("DOCKER_HOST", "").partition("://")[0] not in ("", "unix")
    applied: dict[str, str] = {}
    for name, value in _TESTCONTAINERS_ENV.items():
        if name == "TESTCONTAINERS_HOST_OVERRIDE" and (remote_daemon or "TC_HOST" in os.environ):
            continue
        if name not in os.environ:
            os.environ[name] = value
            applied[name] = value
    if "testcontainers.core.config" not in sys.modules or not applied:
        return
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    if "TESTCONTAINERS_RYUK_DISABLED" in applied:
        testcontainers_config.ryuk_disabled = True
    if "TESTCONTAINERS_CONNECTION_MODE" in applied:
        testcontainers_config.connection_mode_override = ConnectionMode.docker_host
    if "TESTCONTAINERS_HOST_OVERRIDE" in applied:
        testcontainers_config.tc_host_override = LOOPBACK
