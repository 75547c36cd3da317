"""ZooKeeper for tests: containers, an ensemble with faults, leak checks, pytest fixtures.

The pytest plugin (:mod:`zklock.testing.plugin`) is registered through the ``pytest11`` entry
point, so installing ``zklock[testing]`` gives any test suite the fixtures ``zookeeper``,
``zookeeper_ensemble``, ``zookeeper_tls``, ``zk_client``, ``zk_client_factory``, ``zk_path`` and
``no_thread_leaks``. Settings come from ``ZKLOCK_ZOOKEEPER_IMAGE``, ``ZKLOCK_ZOOKEEPER_HOSTS`` and
``ZKLOCK_ZOOKEEPER_PULL`` (see :class:`Settings`); ``ZKLOCK_TEST_HANDLER`` picks the kazoo handler
of the clients the fixtures make (see :class:`KazooClientFactory`). :class:`LocalZooKeeper` runs
servers as local Java processes instead, without Docker.
"""

from __future__ import annotations

from typing import Any, Optional

from ._ci import in_ci
from ._clients import ENV_HANDLER, KazooClientFactory, handler_from_env
from ._errors import (
    EnsembleNotSettledError,
    FaultsUnavailableError,
    HarnessError,
    ImageNotAvailableError,
    LeakError,
    PortInUseError,
    SettingsError,
    ZooKeeperStartError,
)
from ._faults import TcpProxy, connect_string_of, expire_session, expire_session_id
from ._fourletter import client_sessions, four_letter_word, monitor, server_mode, wait_for_mode
from ._local import LocalZooKeeper
from ._polling import wait_until
from ._ports import free_loopback_ports, loopback_ports
from ._settings import DEFAULT_IMAGE, PullPolicy, Settings, apply_testcontainers_settings
from ._tls import TlsCertificates
from ._traffic import KazooTraffic

# Containers need docker and testcontainers (``zklock[testing]``); the rest, LocalZooKeeper
# included, does not. Without them, using a container name raises their ImportError.
_missing: Optional[ImportError] = None
try:
    from ._container import CONTAINER_LABEL, ZooKeeperContainer, ZooKeeperReady
    from ._ensemble import ZooKeeperEnsemble
    from ._leaks import (
        assert_no_containers,
        assert_no_new_threads,
        assert_no_znodes,
        list_containers,
        list_znodes,
        new_threads,
        remove_containers,
        thread_snapshot,
    )
    from ._server import ZooKeeperServer
    from ._tls_server import ZooKeeperTlsContainer, ZooKeeperTlsServer, tls_server_mode
except ImportError as _error:
    _missing = _error

__all__ = [
    "CONTAINER_LABEL",
    "DEFAULT_IMAGE",
    "ENV_HANDLER",
    "EnsembleNotSettledError",
    "FaultsUnavailableError",
    "HarnessError",
    "ImageNotAvailableError",
    "KazooClientFactory",
    "KazooTraffic",
    "LeakError",
    "LocalZooKeeper",
    "PortInUseError",
    "PullPolicy",
    "Settings",
    "SettingsError",
    "TcpProxy",
    "TlsCertificates",
    "ZooKeeperContainer",
    "ZooKeeperEnsemble",
    "ZooKeeperReady",
    "ZooKeeperServer",
    "ZooKeeperStartError",
    "ZooKeeperTlsContainer",
    "ZooKeeperTlsServer",
    "apply_testcontainers_settings",
    "assert_no_containers",
    "assert_no_new_threads",
    "assert_no_znodes",
    "client_sessions",
    "connect_string_of",
    "expire_session",
    "expire_session_id",
    "four_letter_word",
    "free_loopback_ports",
    "handler_from_env",
    "in_ci",
    "list_containers",
    "list_znodes",
    "loopback_ports",
    "monitor",
    "new_threads",
    "remove_containers",
    "server_mode",
    "thread_snapshot",
    "tls_server_mode",
    "wait_for_mode",
    "wait_until",
]


def __getattr__(name: str) -> Any:
    """Raise the ImportError of docker or testcontainers for a container name they would give."""
    if _missing is not None and name in __all__:  # a container name, without docker
        raise type(_missing)(_missing.msg, name=_missing.name, path=_missing.path) from _missing
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Errors show and pickle as zklock.testing.X (see zklock/__init__.py); other classes keep
# their own module, where typing.get_type_hints and inspect.getsource find what they need.
for _name in __all__:
    _obj = globals().get(_name)
    if isinstance(_obj, type) and issubclass(_obj, BaseException):
        _obj.__module__ = __name__
del _name, _obj
