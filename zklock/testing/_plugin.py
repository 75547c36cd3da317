"""The body of :mod:`zklock.testing.plugin`, loaded only when zklock[testing] is installed."""

from __future__ import annotations

import logging
import re
import socket
import threading
import uuid
from collections.abc import Generator, Iterator
from typing import NoReturn, Optional

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NotEmptyError

from ._ci import in_ci
from ._clients import KazooClientFactory
from ._container import ZooKeeperContainer, started_containers
from ._ensemble import ZooKeeperEnsemble
from ._errors import FaultsUnavailableError, HarnessError, LeakError, ZooKeeperStartError
from ._fourletter import wait_for_mode
from ._leaks import (
    ZNODE_GRACE,
    assert_no_new_threads,
    harness_object_ids,
    list_znodes,
    remove_containers,
    thread_snapshot,
)
from ._server import ZooKeeperServer
from ._settings import ENV_HOSTS, Settings, apply_testcontainers_settings
from ._tls import TlsCertificates
from ._tls_server import ZooKeeperTlsContainer, ZooKeeperTlsServer

# Everything pytest must find (hooks, fixtures, the autouse ones too) when plugin.py
# re-exports this module with a star import.
__all__ = [
    "_zklock_ensemble_recovery",
    "_zklock_thread_leak_check",
    "no_thread_leaks",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_report_header",
    "pytest_runtest_makereport",
    "pytest_runtest_teardown",
    "pytest_sessionfinish",
    "pytest_sessionstart",
    "skip_outside_ci",
    "zk_client",
    "zk_client_factory",
    "zk_path",
    "zookeeper",
    "zookeeper_ensemble",
    "zookeeper_settings",
    "zookeeper_tls",
]


_log = logging.getLogger(__name__)
_ZNODE_CHECKS = ("ephemeral", "all", "off")
_TEST_ROOT = "/zklock-test"
_CALL_FAILED = pytest.StashKey[bool]()
# The threads alive when a test's no_thread_leaks was set up (see pytest_runtest_teardown).
_THREADS_BEFORE = pytest.StashKey[frozenset[threading.Thread]]()
# Ids of the harness containers and networks that existed when this pytest session started:
# not this session's to sweep. None when they could not be listed (then nothing is swept).
_PREEXISTING = pytest.StashKey[Optional[frozenset[str]]]()


# ------------------------------------------------------------------------------------ hooks
def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the plugin's ini options."""
    parser.addini(
        "zklock_thread_leak_check",
        type="bool",
        default=False,
        help="zklock: check every test for leaked threads (fixture no_thread_leaks)",
    )
    parser.addini(
        "zklock_znode_leak_check",
        default="ephemeral",
        help="zklock: znodes left under zk_path that fail a test: ephemeral|all|off",
    )
    parser.addini(
        "zklock_no_skips_in_ci",
        type="bool",
        default=False,
        help="zklock: in CI (CI=1/true/yes), a test that skips or xfails fails instead",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the plugin's markers and prepare testcontainers (before it is imported)."""
    config.addinivalue_line("markers", "ensemble: needs the 3-node ZooKeeper ensemble")
    config.addinivalue_line("markers", "tls: needs the TLS-enabled ZooKeeper (zookeeper_tls)")
    config.addinivalue_line("markers", "no_thread_leaks: error the test when threads it started outlive it")
    config.addinivalue_line(
        "markers",
        "zk_path_check(mode): what zk_path counts as left behind: ephemeral, all or off",
    )
    apply_testcontainers_settings()


def pytest_report_header(config: pytest.Config) -> str:
    """Say which ZooKeeper the run uses."""
    try:
        settings = Settings.from_env()
    except Exception as exc:  # not only HarnessError: a header must never crash the run
        # The fixtures read the settings again and raise there, where pytest reports the
        # error on the tests that need them; here an INTERNALERROR would stop the whole run.
        return f"zklock.testing: {exc}"
    if settings.external:
        return f"zklock.testing: external ZooKeeper {settings.hosts}"
    return f"zklock.testing: ZooKeeper image {settings.image} (pull: {settings.pull.value})"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether a test's body failed: leak checks then stay quiet, not to bury it.

    With ``zklock_no_skips_in_ci`` set, a skip or an expected failure in CI is made a failure
    here (outermost, after pytest's own skipping plugin has written the report): a skipped
    test must never be counted as a passing one.
    """
    report = yield
    if report.skipped and in_ci() and item.config.getini("zklock_no_skips_in_ci"):
        _fail_the_skip(report)
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


def _fail_the_skip(report: pytest.TestReport) -> None:
    expected_failure = getattr(report, "wasxfail", None)
    if expected_failure is not None:
        del report.wasxfail  # else it would be reported as an unexpected pass
        why = f"expected to fail ({expected_failure or 'xfail'})"
    elif isinstance(report.longrepr, tuple):  # (path, line, "Skipped: reason")
        why = str(report.longrepr[2])
    else:
        why = str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"zklock_no_skips_in_ci: this test did not run in CI: {why}"


def _call_failed(request: pytest.FixtureRequest) -> bool:
    node: pytest.Item = request.node
    return node.stash.get(_CALL_FAILED, False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that use the ensemble with ``ensemble``, the TLS server with ``tls``."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "zookeeper_ensemble" in fixtures:
            item.add_marker(pytest.mark.ensemble)
        if "zookeeper_tls" in fixtures:
            item.add_marker(pytest.mark.tls)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Note the harness containers this process already has: not this session's to sweep.

    They belong to an outer pytest run when this one runs inside a test (pytester, in-process)
    and share this process's harness session label.
    """
    preexisting: Optional[frozenset[str]] = frozenset()
    if started_containers():  # else there are none, and no Docker call is needed
        try:
            preexisting = harness_object_ids()
        except Exception:  # Docker unreachable: ours cannot be told from theirs, sweep nothing
            preexisting = None
    session.stash[_PREEXISTING] = preexisting


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Remove containers of this run still present at the end, and fail the run if any were."""
    if session.exitstatus == pytest.ExitCode.INTERRUPTED:
        # After Ctrl-C (or pytest.exit) pytest tears the session fixtures down only after
        # this hook: their containers are still theirs to remove, not leaks.
        return
    if not started_containers():
        return
    preexisting = session.stash.get(_PREEXISTING, frozenset())
    if preexisting is None:
        return
    try:
        removed = remove_containers(sparing=preexisting)
    except Exception:  # no Docker daemon: then no container of ours either
        return
    if not removed:
        return
    # A container still there after every fixture was torn down is a leak: fail the run.
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()  # not glued to the last progress line
        reporter.write_line(
            f"zklock.testing: containers outlived their fixtures (removed now): {removed}; "
            "the run fails for this leak",
            red=True,
        )


def skip_outside_ci(reason: str) -> NoReturn:
    """Skip the calling test with ``reason``; in CI (:func:`~zklock.testing.in_ci`), fail it."""
    if in_ci():
        pytest.fail(f"would skip in CI: {reason}")
    pytest.skip(reason)


# --------------------------------------------------------------------------------- servers
@pytest.fixture(scope="session")
def zookeeper_settings() -> Settings:
    """The harness settings from ``ZKLOCK_ZOOKEEPER_*`` (override to change them)."""
    return Settings.from_env()


@pytest.fixture(scope="session")
def zookeeper(zookeeper_settings: Settings) -> Iterator[ZooKeeperServer]:
    """A serving standalone ZooKeeper for the whole run (or the external servers)."""
    settings = zookeeper_settings
    if settings.hosts is not None:
        server = ZooKeeperServer(settings.hosts)
        host, port = server.addresses[0]
        try:
            wait_for_mode(host, port, timeout=15.0)
        except TimeoutError as exc:
            raise ZooKeeperStartError(f"{ENV_HOSTS}={settings.hosts}: {exc}") from exc
        yield server
        return
    container = ZooKeeperContainer(settings.image, pull=settings.pull).start()
    try:
        yield ZooKeeperServer(container.get_connect_string(), container)
    finally:
        container.stop()


@pytest.fixture(scope="session")
def zookeeper_ensemble(zookeeper_settings: Settings) -> Iterator[ZooKeeperEnsemble]:
    """A settled 3-node ensemble for the whole run, with fault tools."""
    settings = zookeeper_settings
    if settings.external:
        raise FaultsUnavailableError(
            f"this test needs the 3-node container ensemble, but {ENV_HOSTS} is set "
            f"({settings.hosts}): fault injection needs servers the harness owns. Unset "
            f"{ENV_HOSTS}, or deselect these tests with -m 'not ensemble'."
        )
    with ZooKeeperEnsemble(3, settings.image, pull=settings.pull) as ensemble:
        yield ensemble


@pytest.fixture(scope="session")
def zookeeper_tls(
    zookeeper_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ZooKeeperTlsServer]:
    """A standalone ZooKeeper with a TLS client port, and the certificates to reach it."""
    settings = zookeeper_settings
    if settings.external:
        raise HarnessError(
            f"this test needs a TLS-enabled ZooKeeper container, but {ENV_HOSTS} is set "
            f"({settings.hosts}) and the harness starts no container then. Unset {ENV_HOSTS}, "
            f"or deselect these tests with -m 'not tls'."
        )
    certificates = TlsCertificates.create(tmp_path_factory.mktemp("zklock-tls"))
    container = ZooKeeperTlsContainer(certificates, settings.image, pull=settings.pull).start()
    try:
        yield ZooKeeperTlsServer(
            connect_string=container.secure_connect_string,
            plain_connect_string=container.get_connect_string(),
            certificates=certificates,
            container=container,
        )
    finally:
        container.stop()


@pytest.fixture(autouse=True)
def _zklock_ensemble_recovery(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the ensemble, bring stopped or paused nodes back."""
    if "zookeeper_ensemble" not in request.fixturenames:
        yield
        return
    ensemble: ZooKeeperEnsemble = request.getfixturevalue("zookeeper_ensemble")
    yield
    ensemble.recover()


# --------------------------------------------------------------------------------- clients
@pytest.fixture
def zk_client_factory(zookeeper: ZooKeeperServer) -> Iterator[KazooClientFactory]:
    """Makes started kazoo clients on ``zookeeper``; all are stopped and closed at teardown."""
    _fail_if_gone(zookeeper)
    with KazooClientFactory(zookeeper.connect_string) as factory:
        yield factory


def _fail_if_gone(server: ZooKeeperServer) -> None:
    """Raise :class:`HarnessError` at once if the run's own server container has stopped.

    A container that crashed or was killed mid-run would otherwise cost every later test a
    client's start timeout (15 s) before it errors: an hour and more for the suite instead of
    a clear failure.  A connect to its port is the cheap look; the container's state, asked
    of Docker only when that fails, is the verdict.
    """
    container = server.container
    if container is None:
        return
    try:
        socket.create_connection(server.addresses[0], timeout=2.0).close()
        return
    except OSError:
        pass
    container.reload()
    if container.status in ("exited", "dead"):
        raise HarnessError(
            f"the run's ZooKeeper container has {container.status}: every test that needs it "
            f"fails from here on\n--- container logs (last lines) ---\n{container.logs_tail()}"
        )


@pytest.fixture
def zk_client(zk_client_factory: KazooClientFactory) -> KazooClient:
    """A started kazoo client on ``zookeeper`` (requested session timeout 10 s)."""
    return zk_client_factory()


@pytest.fixture
def zk_path(
    request: pytest.FixtureRequest,
    zookeeper: ZooKeeperServer,
    zk_client_factory: KazooClientFactory,
) -> Iterator[str]:
    """A unique path for the test's locks; left-over znodes below it fail the test.

    The path does not exist yet. The check runs before the test's clients are closed, so an
    ephemeral node still held by one of them counts as left behind; it is skipped when the
    test itself failed.
    """
    mode = _znode_check_mode(request)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")[:80] or "test"
    root = f"{_TEST_ROOT}/{name}-{uuid.uuid4().hex[:8]}"
    admin = KazooClient(hosts=zookeeper.connect_string)
    admin.start(timeout=15)
    try:
        yield root
        check = mode != "off" and not _call_failed(request)
        leaked = (
            list_znodes(admin, root, ephemeral_only=mode == "ephemeral", grace=ZNODE_GRACE)
            if check
            else []
        )
        _remove_tree(admin, root)
        if leaked:
            raise LeakError(f"znodes under zk_path {root}", leaked)
    finally:
        admin.stop()
        admin.close()


def _znode_check_mode(request: pytest.FixtureRequest) -> str:
    marker = request.node.get_closest_marker("zk_path_check")
    mode = str(marker.args[0]) if marker is not None and marker.args else None
    if mode is None:
        mode = str(request.config.getini("zklock_znode_leak_check")).strip() or "ephemeral"
    if mode not in _ZNODE_CHECKS:
        raise pytest.UsageError(f"zk_path check mode {mode!r}: expected one of {_ZNODE_CHECKS}")
    return mode


def _remove_tree(client: KazooClient, root: str) -> None:
    for _ in range(5):
        try:
            client.delete(root, recursive=True)
            return
        except NoNodeError:
            return
        except NotEmptyError:  # something is still creating nodes below root
            continue
    _log.warning("zklock.testing: could not remove %s", root)


# --------------------------------------------------------------------------------- threads
@pytest.fixture
def no_thread_leaks(request: pytest.FixtureRequest) -> None:
    """Fail the test when threads started during it are alive 2 s after it ends.

    The threads are counted from this fixture's setup, and checked once every function-scoped
    fixture of the test is torn down (in ``pytest_runtest_teardown``), so that threads other
    fixtures stop, such as the clients of ``zk_client_factory``, are not counted whatever the
    order of the test's arguments. Not checked when the test itself failed (or did not run).
    """
    request.node.stash[_THREADS_BEFORE] = thread_snapshot()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: Optional[pytest.Item]
) -> Generator[None, None, None]:
    """Run the ``no_thread_leaks`` check after the test's fixtures are all finalized."""
    before = item.stash.get(_THREADS_BEFORE, None)
    if before is not None:
        del item.stash[_THREADS_BEFORE]  # the snapshot holds threads: do not keep it longer
    # A fixture that fails its teardown raises here: that error is reported, the check skipped.
    yield
    # Only after a body that ran and did not fail: a failure is not to be buried under leaks
    # it may well have caused, and a test whose setup failed has nothing to check.
    if before is not None and item.stash.get(_CALL_FAILED, True) is False:
        assert_no_new_threads(before, grace=2.0)


@pytest.fixture(autouse=True)
def _zklock_thread_leak_check(request: pytest.FixtureRequest) -> None:
    """Apply ``no_thread_leaks`` by marker or by the ``zklock_thread_leak_check`` ini option."""
    wanted = request.node.get_closest_marker("no_thread_leaks") is not None or bool(
        request.config.getini("zklock_thread_leak_check")
    )
    if wanted and "no_thread_leaks" not in request.fixturenames:
        request.getfixturevalue("no_thread_leaks")
