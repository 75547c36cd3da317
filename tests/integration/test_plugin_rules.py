"""The rules the zklock.testing pytest plugin enforces, checked on inner pytest runs.

Each test writes a small test module, runs pytest on it in a subprocess (its own plugin state,
its own environment) and checks the exact outcome counts and that the report names the cause:

(a) a ZooKeeper that cannot start makes the tests error, never skip (even outside CI);
(b) ``skip_outside_ci`` fails the test in CI and skips it otherwise;
(c) znodes left under ``zk_path`` make the test error, checked before the test's clients close;
(d) threads left running make the test error under ``zklock_thread_leak_check``, and
    ``no_thread_leaks`` checks after every fixture's teardown, whatever the argument order;
(e) a run inside a test, in this very process, leaves the outer run's containers alone;
(f) a server that dies mid-run fails every later test at once, saying so;
(g) under ``zklock_no_skips_in_ci`` (this project's setting), every kind of skip fails in CI.

The inner runs of (c), (d) and (e) use this session's ``zookeeper`` through
``ZKLOCK_ZOOKEEPER_HOSTS``, so they start no container of their own.
"""

from __future__ import annotations

import re
from typing import Optional

import pytest
from kazoo.client import KazooClient

from zklock.testing import ZooKeeperServer, list_containers, server_mode
from zklock.testing.plugin import skip_outside_ci

# Enabled here, not in a conftest: pytest refuses ``pytest_plugins`` in tests/integration/
# conftest.py when the run starts from the repository root (it is not a top-level conftest).
pytest_plugins = ["pytester"]

# Prints the inner run's harness session, so that the outer test can look for its containers.
_INNER_CONFTEST = """
from zklock.testing._container import HARNESS_SESSION


def pytest_report_header(config):
    return f"inner-harness-session={HARNESS_SESSION}"
"""


def _run_inner(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, Optional[str]],
) -> pytest.RunResult:
    """Run pytest on ``pytester.path`` in a subprocess with ``env`` (``None``: unset).

    Afterwards, in this process's own environment, no container of that run may exist.
    """
    pytester.makeconftest(_INNER_CONFTEST)
    with monkeypatch.context() as inner:
        for name, value in env.items():
            if value is None:
                inner.delenv(name, raising=False)
            else:
                inner.setenv(name, value)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", timeout=60)
    sessions = re.findall(r"inner-harness-session=([0-9a-f]{12})", result.stdout.str())
    assert len(sessions) == 1, result.stdout.str()
    assert list_containers(session=sessions[0]) == []
    return result


def _summary(out: str, outcome: str) -> list[str]:
    """The inner tests the short test summary lists as ``outcome`` (ERROR, FAILED...), sorted."""
    return sorted(re.findall(rf"^{outcome} test_inner\.py::(\w+)", out, re.MULTILINE))


# ------------------------------------------------------------------- (a) start failures error
_NEEDS_ZOOKEEPER = """
def test_uses_the_server(zookeeper):
    pass


def test_uses_a_client(zk_client):
    pass


def test_uses_a_path(zk_path):
    pass
"""


@pytest.mark.parametrize(
    ("env", "cause"),
    [
        pytest.param(
            {"ZKLOCK_ZOOKEEPER_IMAGE": "zklock-no-such-image:0", "ZKLOCK_ZOOKEEPER_PULL": "never"},
            r"ImageNotAvailableError: ZooKeeper image 'zklock-no-such-image:0' is not present "
            r"locally and pulling is disabled \(ZKLOCK_ZOOKEEPER_PULL=never\)",
            id="image-missing-pull-never",
        ),
        pytest.param(
            {"DOCKER_HOST": "unix:///nonexistent/zklock-test/docker.sock"},
            r"DockerException: Error while fetching server API version",
            id="no-docker-daemon",
        ),
        pytest.param(
            {"ZKLOCK_ZOOKEEPER_PULL": "sometimes"},
            r"SettingsError: ZKLOCK_ZOOKEEPER_PULL='sometimes': expected missing\|never",
            id="bad-setting",
        ),
    ],
)
def test_a_zookeeper_that_cannot_start_errors_and_never_skips(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: dict[str, Optional[str]], cause: str
) -> None:
    pytester.makepyfile(test_inner=_NEEDS_ZOOKEEPER)

    # Outside CI, where a skip would be allowed: still none.
    result = _run_inner(pytester, monkeypatch, {"ZKLOCK_ZOOKEEPER_HOSTS": None, "CI": None, **env})

    result.assert_outcomes(errors=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    for name in ("test_uses_the_server", "test_uses_a_client", "test_uses_a_path"):
        result.stdout.fnmatch_lines([f"ERROR test_inner.py::{name} - *"])
    # Each of the three errors names the cause (the session fixture's error is re-raised).
    assert len(re.findall(cause, result.stdout.str())) >= 3, result.stdout.str()
    result.stdout.no_fnmatch_line("*SKIPPED*")


_SERVER_DIES = """
def test_kills_the_server(zookeeper):
    zookeeper.container.get_wrapped_container().kill()


def test_a_later_client(zk_client):
    pass


def test_a_later_path(zk_path):
    pass
"""


def test_a_server_that_died_mid_run_fails_the_later_tests_at_once_and_says_so(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the check each later test waited out a client's 15 s start timeout, and
    # failed with a timeout that did not say the server was gone.
    pytester.makepyfile(test_inner=_SERVER_DIES)
    result = _run_inner(pytester, monkeypatch, {"ZKLOCK_ZOOKEEPER_HOSTS": None})
    result.assert_outcomes(passed=1, errors=2)
    out = result.stdout.str()
    assert _summary(out, "ERROR") == ["test_a_later_client", "test_a_later_path"], out
    for name in ("test_a_later_client", "test_a_later_path"):
        result.stdout.fnmatch_lines(
            [f"ERROR test_inner.py::{name} - *HarnessError: the run's ZooKeeper container has exited*"]
        )


# ------------------------------------------------------------------------ (b) skip_outside_ci
_SKIP_OUTSIDE_CI = """
from zklock.testing.plugin import skip_outside_ci


def test_needs_the_widget():
    skip_outside_ci("the widget backend is unavailable")
"""


@pytest.mark.parametrize("ci", ["true", "1", "YES"])
def test_skip_outside_ci_fails_the_test_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    pytester.makepyfile(test_inner=_SKIP_OUTSIDE_CI)

    result = _run_inner(pytester, monkeypatch, {"CI": ci})

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "FAILED test_inner.py::test_needs_the_widget - "
            "Failed: would skip in CI: the widget backend is unavailable"
        ]
    )


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_skip_outside_ci_skips_the_test_outside_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: Optional[str]
) -> None:
    pytester.makepyfile(test_inner=_SKIP_OUTSIDE_CI)

    result = _run_inner(pytester, monkeypatch, {"CI": ci})

    result.assert_outcomes(skipped=1)
    # The location is skip_outside_ci's own line in the plugin, not the test's.
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *: the widget backend is unavailable"])
    result.stdout.no_fnmatch_line("*would skip in CI*")


# ---------------------------------------------------------------------- (c) znodes under zk_path
_ZNODE_LEAKS = """
import pytest


def test_clean(zk_client, zk_path):
    zk_client.create(f"{zk_path}/lease", ephemeral=True, makepath=True)
    zk_client.delete(f"{zk_path}/lease")


def test_persistent_parents_are_fine_by_default(zk_client, zk_path):
    zk_client.create(f"{zk_path}/parent/child", makepath=True)


def test_forgot_an_ephemeral_node(zk_client, zk_path):
    # Left by a client that is still open: only a check made before it closes sees it.
    zk_client.create(f"{zk_path}/forgotten-lease", ephemeral=True, makepath=True)


@pytest.mark.zk_path_check("all")
def test_forgot_a_persistent_node_under_mode_all(zk_path, zk_client_factory):
    zk_client_factory().create(f"{zk_path}/forgotten-parent", makepath=True)


@pytest.mark.zk_path_check("off")
def test_check_off(zk_client, zk_path):
    zk_client.create(f"{zk_path}/unchecked-lease", ephemeral=True, makepath=True)


def test_a_failed_body_is_not_buried_under_its_leaks(zk_client, zk_path):
    zk_client.create(f"{zk_path}/lease-of-a-failed-test", ephemeral=True, makepath=True)
    assert False, "the body failed first"
"""


def test_znodes_left_under_zk_path_fail_the_test(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    zookeeper: ZooKeeperServer,
    zk_client: KazooClient,
) -> None:
    pytester.makepyfile(test_inner=_ZNODE_LEAKS)

    result = _run_inner(pytester, monkeypatch, {"ZKLOCK_ZOOKEEPER_HOSTS": zookeeper.connect_string})

    # A test that passes and errors at teardown counts once as passed and once as an error.
    result.assert_outcomes(passed=5, errors=2, failed=1)
    out = result.stdout.str()
    for test, node in (
        ("test_forgot_an_ephemeral_node", "forgotten-lease"),
        ("test_forgot_a_persistent_node_under_mode_all", "forgotten-parent"),
    ):
        root = rf"/zklock-test/{test}-[0-9a-f]{{8}}"
        assert re.search(rf"LeakError: 1 znodes under zk_path {root} left behind:\n", out), out
        assert re.search(rf"^E +{root}/{node}$", out, re.MULTILINE), out
        result.stdout.fnmatch_lines([f"ERROR test_inner.py::{test} - *1 znodes under zk_path*"])
    result.stdout.fnmatch_lines(
        ["FAILED test_inner.py::test_a_failed_body_is_not_buried_under_its_leaks - *the body failed first"]
    )
    for test in ("test_clean", "test_persistent_parents_are_fine_by_default", "test_check_off"):
        result.stdout.fnmatch_lines([f"PASSED test_inner.py::{test}"])
        result.stdout.no_fnmatch_line(f"ERROR test_inner.py::{test}*")
    # Only those two: not the test whose check is off, nor the one whose body failed.
    assert _summary(out, "ERROR") == [
        "test_forgot_a_persistent_node_under_mode_all",
        "test_forgot_an_ephemeral_node",
    ]
    assert _summary(out, "FAILED") == ["test_a_failed_body_is_not_buried_under_its_leaks"]
    # Leaked or not, every tree the inner tests used is gone from the shared server.
    inner_names = re.findall(r"^def (test_\w+)", _ZNODE_LEAKS, re.MULTILINE)
    assert len(inner_names) == 6
    left = [
        child
        for child in (zk_client.get_children("/zklock-test") if zk_client.exists("/zklock-test") else [])
        if child.rpartition("-")[0] in inner_names
    ]
    assert left == []


# -------------------------------------------------------------------------------- (d) threads
_THREAD_LEAKS = """
import threading

import pytest


@pytest.fixture(scope="session")
def stop():
    # Ends the leaked (non-daemon) threads after the last test, so that the run can exit.
    event = threading.Event()
    yield event
    event.set()


def test_leaves_a_thread_running(stop):
    threading.Thread(target=stop.wait, args=(60,), name="forgotten-worker").start()


def test_joins_its_thread():
    thread = threading.Thread(target=lambda: None, name="joined-worker")
    thread.start()
    thread.join()


def test_the_fixtures_clients_are_no_leak(zk_client, zk_path):
    zk_client.create(f"{zk_path}/lease", ephemeral=True, makepath=True)
    zk_client.delete(f"{zk_path}/lease")


def test_a_failed_body_is_not_buried_under_its_leaks(stop):
    threading.Thread(target=stop.wait, args=(60,), name="worker-of-a-failed-test").start()
    assert False, "the body failed first"
"""


def test_threads_left_running_fail_the_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, zookeeper: ZooKeeperServer
) -> None:
    pytester.makeini("[pytest]\nzklock_thread_leak_check = true\n")
    pytester.makepyfile(test_inner=_THREAD_LEAKS)

    result = _run_inner(pytester, monkeypatch, {"ZKLOCK_ZOOKEEPER_HOSTS": zookeeper.connect_string})

    result.assert_outcomes(passed=3, errors=1, failed=1)
    out = result.stdout.str()
    assert re.search(
        r"LeakError: 1 threads left behind:\nE +forgotten-worker \(non-daemon, ident \d+\)$",
        out,
        re.MULTILINE,
    ), out
    result.stdout.fnmatch_lines(
        ["ERROR test_inner.py::test_leaves_a_thread_running - *1 threads left behind*"]
    )
    result.stdout.fnmatch_lines(
        ["FAILED test_inner.py::test_a_failed_body_is_not_buried_under_its_leaks - *the body failed first"]
    )
    for test in ("test_joins_its_thread", "test_the_fixtures_clients_are_no_leak"):
        result.stdout.fnmatch_lines([f"PASSED test_inner.py::{test}"])
        result.stdout.no_fnmatch_line(f"ERROR test_inner.py::{test}*")
    # Only that one: not the thread of the test whose body failed.
    assert _summary(out, "ERROR") == ["test_leaves_a_thread_running"]
    assert _summary(out, "FAILED") == ["test_a_failed_body_is_not_buried_under_its_leaks"]


_THREAD_CHECK_ORDER = """
import threading

import pytest


@pytest.fixture(scope="session")
def stop():
    event = threading.Event()
    yield event
    event.set()


# The factory's clients are closed at its teardown: the check must come after it, not
# before, whichever fixture the test names first.
def test_factory_first(zk_client_factory, no_thread_leaks):
    zk_client_factory().ensure_path("/zklock-test")


def test_check_first(no_thread_leaks, zk_client_factory):
    zk_client_factory().ensure_path("/zklock-test")


@pytest.mark.no_thread_leaks
def test_marked(zk_client_factory):
    zk_client_factory().ensure_path("/zklock-test")


def test_a_real_leak_still_errors(zk_client_factory, no_thread_leaks, stop):
    zk_client_factory()
    threading.Thread(target=stop.wait, args=(60,), name="forgotten-worker").start()


def test_a_failed_body_is_not_buried_under_its_leaks(zk_client_factory, no_thread_leaks, stop):
    threading.Thread(target=stop.wait, args=(60,), name="worker-of-a-failed-test").start()
    assert False, "the body failed first"
"""


def test_the_thread_check_runs_after_every_fixture_whatever_the_argument_order(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, zookeeper: ZooKeeperServer
) -> None:
    pytester.makepyfile(test_inner=_THREAD_CHECK_ORDER)

    result = _run_inner(pytester, monkeypatch, {"ZKLOCK_ZOOKEEPER_HOSTS": zookeeper.connect_string})

    result.assert_outcomes(passed=4, errors=1, failed=1)
    out = result.stdout.str()
    for test in ("test_factory_first", "test_check_first", "test_marked"):
        result.stdout.fnmatch_lines([f"PASSED test_inner.py::{test}"])
    assert _summary(out, "ERROR") == ["test_a_real_leak_still_errors"]
    assert re.search(
        r"LeakError: 1 threads left behind:\nE +forgotten-worker \(non-daemon, ident \d+\)$",
        out,
        re.MULTILINE,
    ), out
    assert _summary(out, "FAILED") == ["test_a_failed_body_is_not_buried_under_its_leaks"]


# ------------------------------------------------------------- (e) a run inside a test's process
_INSIDE_A_TEST = """
def test_uses_the_outer_server(zk_client, zk_path):
    zk_client.create(f"{zk_path}/node", makepath=True)
    zk_client.delete(f"{zk_path}/node")
"""


def test_an_in_process_run_spares_the_containers_of_the_run_around_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, zookeeper: ZooKeeperServer
) -> None:
    if zookeeper.container is None:
        skip_outside_ci(f"needs the harness's own container, not {zookeeper.connect_string}")
    pytester.makepyfile(test_inner=_INSIDE_A_TEST)
    monkeypatch.setenv("ZKLOCK_ZOOKEEPER_HOSTS", zookeeper.connect_string)

    # In this process: the same harness session as this run, whose zookeeper container is live.
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*containers outlived their fixtures*")
    # The outer container was not swept: it still runs and serves.
    container = zookeeper.container.get_wrapped_container()
    container.reload()
    assert container.status == "running"
    assert server_mode(*zookeeper.addresses[0]) == "standalone"


# ------------------------------------------------------------------ (g) no skips in CI at all
_EVERY_KIND_OF_SKIP = """
import pytest


def test_skips():
    pytest.skip("no widget")


@pytest.mark.skipif(True, reason="never here")
def test_skipif():
    pass


@pytest.mark.parametrize("value", [])
def test_empty_parameters(value):
    pass


@pytest.mark.xfail(reason="known broken")
def test_expected_failure():
    assert False


def test_runs():
    pass
"""


@pytest.mark.parametrize("ci", ["true", None])
def test_no_skips_in_ci_makes_every_skip_a_failure_in_ci_only(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: Optional[str]
) -> None:
    pytester.makepyfile(test_inner=_EVERY_KIND_OF_SKIP)
    pytester.makeini("[pytest]\nzklock_no_skips_in_ci = true\n")

    result = _run_inner(pytester, monkeypatch, {"CI": ci})

    if ci is None:
        result.assert_outcomes(passed=1, skipped=3, xfailed=1)
        return
    # A skip decided before the body (a mark, an empty parameter set) fails the setup: an error.
    result.assert_outcomes(passed=1, failed=2, errors=2)
    assert _summary(result.stdout.str(), "FAILED") == ["test_expected_failure", "test_skips"]
    assert _summary(result.stdout.str(), "ERROR") == ["test_empty_parameters", "test_skipif"]
    result.stdout.fnmatch_lines_random(
        [
            "*this test did not run in CI: Skipped: no widget*",
            "*this test did not run in CI: Skipped: never here*",
            "*this test did not run in CI: expected to fail (known broken)*",
        ]
    )
