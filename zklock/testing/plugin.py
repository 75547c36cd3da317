"""pytest plugin of zklock's ZooKeeper harness (entry point ``pytest11``: ``zklock``).

Fixtures
    ``zookeeper`` (session)            :class:`ZooKeeperServer`: a standalone container, or the
                                       servers of ``ZKLOCK_ZOOKEEPER_HOSTS``
    ``zookeeper_ensemble`` (session)   :class:`ZooKeeperEnsemble` of 3 containers; after each
                                       test that uses it, stopped or paused nodes are brought
                                       back. Fails when ``ZKLOCK_ZOOKEEPER_HOSTS`` is set.
    ``zookeeper_tls`` (session)        :class:`ZooKeeperTlsServer`: a standalone container
                                       with a TLS client port (client certificates required)
                                       and the test CA, server and client certificates.
                                       Fails when ``ZKLOCK_ZOOKEEPER_HOSTS`` is set.
    ``zookeeper_settings`` (session)   :class:`Settings` read from the environment
    ``zk_client_factory``              :class:`KazooClientFactory` on ``zookeeper``; every
                                       client it made is stopped and closed at teardown
    ``zk_client``                      a started ``KazooClient`` on ``zookeeper`` (10 s session)
    ``zk_path``                        a unique, not yet existing path
                                       ``/zklock-test/<test>-<8 hex>``; at teardown the test
                                       errors when znodes are left below it (see below), then
                                       the whole tree is removed
    ``no_thread_leaks``                errors the test (at teardown) when threads it started
                                       are still alive 2 s after all its function-scoped
                                       fixtures are torn down (so the clients of
                                       ``zk_client_factory`` do not count, whatever the
                                       argument order); skipped when the test failed

Options (ini)
    ``zklock_thread_leak_check = true``    use ``no_thread_leaks`` in every test (default off;
                                           or mark tests with ``@pytest.mark.no_thread_leaks``)
    ``zklock_znode_leak_check = MODE``     what ``zk_path`` counts as left behind:
                                           ``ephemeral`` (default: ephemeral znodes, i.e. lock
                                           contenders and leases; the persistent parent nodes a
                                           lock recipe keeps are fine), ``all`` (any znode) or
                                           ``off``; per test: ``@pytest.mark.zk_path_check("all")``

The ``zk_path`` check runs before the test's clients are closed, so a contender node that a
still-connected client forgot to delete counts. Tests using ``zookeeper_ensemble`` get the
``ensemble`` marker, so ``-m "not ensemble"`` deselects them; tests using ``zookeeper_tls``
get the ``tls`` marker. Containers that cannot start make
the fixtures raise (the tests error); the harness never skips.
"""

from __future__ import annotations

try:
    # pytest reads the fixtures and hooks from this module: all of them come from _plugin.
    from ._plugin import *  # noqa: F403
    from ._plugin import skip_outside_ci  # noqa: F401  (documented under this module's name)
except ModuleNotFoundError as missing:
    if (missing.name or "").partition(".")[0] not in ("docker", "testcontainers", "requests"):
        raise
    # zklock installed without [testing]: the entry point still loads this module in every
    # pytest run of the project, so it offers nothing rather than break the user's suite.
