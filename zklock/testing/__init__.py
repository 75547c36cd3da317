"""ZooKeeper for tests: containers, an ensemble with faults, leak checks, pytest fixtures.

The pytest plugin (:mod:`zklock.testing.plugin`) is registered through the ``pytest11`` entry
point, so installing ``zklock[testing]`` gives any test suite the fixtures ``zookeeper``,
``zookeeper_ensemble``, ``zk_client``, ``zk_client_factory``, ``zk_path`` and
``no_thread_leaks``. Settings come from ``ZKLOCK_ZOOKEEPER_IMAGE``, ``ZKLOCK_ZOOKEEPER_HOSTS`` and
``ZKLOCK_ZOOKEEPER_PULL`` (see :class:`Settings`).
"""

from __future__ import annotations

from ._clients import KazooClientFactory
from ._container import CONTAINER_LABEL, ZooKeeperContainer, ZooKeeperReady, free_loopback_ports
from ._ensemble import ZooKeeperEnsemble
from ._errors import (
    EnsembleNotSettledError,
    FaultsUnavailableError,
    HarnessError,
    ImageNotAvailableError,
    LeakError,
    SettingsError,
    ZooKeeperStartError,
)
from ._faults import TcpProxy, connect_string_of, expire_session
from ._fourletter import four_letter_word, monitor, server_mode, wait_for_mode
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
from ._settings import DEFAULT_IMAGE, PullPolicy, Settings, apply_testcontainers_settings

__all__ = [
    "CONTAINER_LABEL",
    "DEFAULT_IMAGE",
    "EnsembleNotSettledError",
    "FaultsUnavailableError",
    "HarnessError",
    "ImageNotAvailableError",
    "KazooClientFactory",
    "LeakError",
    "PullPolicy",
    "Settings",
    "SettingsError",
    "TcpProxy",
    "ZooKeeperContainer",
    "ZooKeeperEnsemble",
    "ZooKeeperReady",
    "ZooKeeperServer",
    "ZooKeeperStartError",
    "apply_testcontainers_settings",
    "assert_no_containers",
    "assert_no_new_threads",
    "assert_no_znodes",
    "connect_string_of",
    "expire_session",
    "four_letter_word",
    "free_loopback_ports",
    "list_containers",
    "list_znodes",
    "monitor",
    "new_threads",
    "remove_containers",
    "server_mode",
    "thread_snapshot",
    "wait_for_mode",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        _obj.__module__ = __name__
del _name, _obj
