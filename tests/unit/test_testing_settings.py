"""zklock.testing without Docker: settings, errors, four-letter words."""

from __future__ import annotations

import pickle
import socket
import threading
from collections.abc import Iterator

import pytest

from zklock.testing import (
    DEFAULT_IMAGE,
    EnsembleNotSettledError,
    ImageNotAvailableError,
    LeakError,
    PullPolicy,
    Settings,
    SettingsError,
    ZooKeeperContainer,
    ZooKeeperEnsemble,
    ZooKeeperReady,
    ZooKeeperServer,
    ZooKeeperStartError,
    apply_testcontainers_settings,
    server_mode,
    wait_for_mode,
)
from zklock.testing._settings import pull_policy


def test_defaults_when_nothing_is_set() -> None:
    settings = Settings.from_env({})
    assert settings == Settings(image=DEFAULT_IMAGE, hosts=None, pull=PullPolicy.MISSING)
    assert settings.image == "zookeeper:3.9"
    assert not settings.external


def test_values_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "ZKLOCK_ZOOKEEPER_IMAGE": "zklock-zookeeper:3.8",
            "ZKLOCK_ZOOKEEPER_HOSTS": " 10.0.0.1:2181, [::1]:2182/chroot ",
            "ZKLOCK_ZOOKEEPER_PULL": "NEVER",
        }
    )
    assert settings.image == "zklock-zookeeper:3.8"
    assert settings.hosts == "10.0.0.1:2181,[::1]:2182/chroot"
    assert settings.pull is PullPolicy.NEVER
    assert settings.external


def test_empty_variables_count_as_unset() -> None:
    env = {"ZKLOCK_ZOOKEEPER_IMAGE": "", "ZKLOCK_ZOOKEEPER_HOSTS": " ", "ZKLOCK_ZOOKEEPER_PULL": ""}
    assert Settings.from_env(env) == Settings()


@pytest.mark.parametrize(
    "name, value",
    [
        ("ZKLOCK_ZOOKEEPER_PULL", "always"),
        ("ZKLOCK_ZOOKEEPER_HOSTS", "localhost"),
        ("ZKLOCK_ZOOKEEPER_HOSTS", "a:1,,b:2"),
        ("ZKLOCK_ZOOKEEPER_HOSTS", "a:99999"),
        ("ZKLOCK_ZOOKEEPER_HOSTS", "a:0"),
        # Digits of other scripts: superscript two made int() raise a plain ValueError, the
        # fullwidth "2181" was read as 2181.
        ("ZKLOCK_ZOOKEEPER_HOSTS", "h:\u00b2"),
        ("ZKLOCK_ZOOKEEPER_HOSTS", "h:\uff12\uff11\uff18\uff11"),
        # Chroots that are no ZooKeeper path, or a server list typed after the chroot.
        ("ZKLOCK_ZOOKEEPER_HOSTS", "h:2181/"),
        ("ZKLOCK_ZOOKEEPER_HOSTS", "h:2181//x"),
        ("ZKLOCK_ZOOKEEPER_HOSTS", "h:2181/x/"),
        ("ZKLOCK_ZOOKEEPER_HOSTS", "h:2181/a/../b"),
        ("ZKLOCK_ZOOKEEPER_HOSTS", "h:2181/a b"),
        ("ZKLOCK_ZOOKEEPER_HOSTS", "h:2181/x, h2:2181"),
        ("ZKLOCK_ZOOKEEPER_HOSTS", "h:2181/a\x01"),
    ],
)
def test_bad_values_are_settings_errors(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name) as error:
        Settings.from_env({name: value})
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize("hosts", ["h:1", "h:65535", "h:2181/a", "h:2181/a/b-c_d.e", "[::1]:2181/x"])
def test_good_connect_strings_pass(hosts: str) -> None:
    assert Settings.from_env({"ZKLOCK_ZOOKEEPER_HOSTS": hosts}).hosts == hosts


def test_the_report_header_names_a_bad_setting_instead_of_crashing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from zklock.testing._plugin import pytest_report_header

    monkeypatch.setenv("ZKLOCK_ZOOKEEPER_HOSTS", "h:\u00b2")
    header = pytest_report_header(None)  # type: ignore[arg-type]  # the hook ignores it
    assert header.startswith("zklock.testing: ZKLOCK_ZOOKEEPER_HOSTS=")

    # Whatever goes wrong reading the settings, the header reports it (no INTERNALERROR):
    # the fixtures read them again and fail the tests that need them.
    def broken(environ: object = None) -> Settings:
        raise OSError("environment unreadable")

    monkeypatch.setattr(Settings, "from_env", staticmethod(broken))
    assert pytest_report_header(None) == "zklock.testing: environment unreadable"  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [PullPolicy.NEVER, "never", "NEVER", " never "])
def test_pull_policies_given_as_strings_become_members(value: str) -> None:
    assert pull_policy(value) is PullPolicy.NEVER
    assert pull_policy("missing") is PullPolicy.MISSING
    # The ensemble keeps the member: a plain "never" would fail the identity check its
    # nodes make and let Docker pull. Nothing here talks to Docker.
    assert ZooKeeperEnsemble(3, "zklock-zookeeper:3.8", pull=value)._pull is PullPolicy.NEVER


@pytest.mark.parametrize("value", ["sometimes", "", 1])
def test_a_bad_pull_policy_fails_before_any_docker_call(value: object) -> None:
    with pytest.raises(ValueError, match="pull policy"):
        pull_policy(value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pull policy"):
        ZooKeeperEnsemble(3, "img", pull=value)  # type: ignore[arg-type]
    # The container checks it before testcontainers makes its Docker client.
    with pytest.raises(ValueError, match="pull policy"):
        ZooKeeperContainer("img", pull=value)  # type: ignore[arg-type]


def test_testcontainers_settings_respect_what_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    for name in ("TESTCONTAINERS_RYUK_DISABLED", "TESTCONTAINERS_HOST_OVERRIDE", "TC_HOST", "DOCKER_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TESTCONTAINERS_CONNECTION_MODE", "bridge_ip")
    monkeypatch.setattr(testcontainers_config, "_ryuk_disabled", False)
    monkeypatch.setattr(testcontainers_config, "tc_host_override", None)
    monkeypatch.setattr(testcontainers_config, "connection_mode_override", ConnectionMode.bridge_ip)
    apply_testcontainers_settings()
    assert testcontainers_config.ryuk_disabled is True
    assert testcontainers_config.tc_host_override == "127.0.0.1"
    assert testcontainers_config.connection_mode_override is ConnectionMode.bridge_ip  # user's
    import os

    assert os.environ["TESTCONTAINERS_RYUK_DISABLED"] == "true"
    assert os.environ["TESTCONTAINERS_CONNECTION_MODE"] == "bridge_ip"


@pytest.mark.parametrize(
    "error",
    [
        ImageNotAvailableError("zookeeper:3.9"),
        ZooKeeperStartError("did not start", "line 1\nline 2"),
        EnsembleNotSettledError(3.0, {1: "leader", 2: None}),
        LeakError("threads", ["a", "b"]),
    ],
)
def test_errors_pickle_and_keep_their_details(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)


def test_start_error_shows_the_logs() -> None:
    text = str(ZooKeeperStartError("did not start", "java.lang.NumberFormatException"))
    assert "did not start" in text and "NumberFormatException" in text


def test_server_addresses_from_a_connect_string() -> None:
    server = ZooKeeperServer("127.0.0.1:2181,[::1]:2182/chroot")
    assert server.addresses == [("127.0.0.1", 2181), ("::1", 2182)]
    assert server.external


@pytest.fixture
def fake_server() -> Iterator[tuple[str, int]]:
    """A TCP server that answers every connection like a ZooKeeper leader answers srvr."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:  # TimeoutError from Python 3.10
                continue
            with conn:
                conn.recv(4)
                conn.sendall(b"Zookeeper version: 3.8.0\nMode: leader\nNode count: 5\n")

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_server_mode_reads_the_mode_line(fake_server: tuple[str, int]) -> None:
    assert server_mode(*fake_server) == "leader"
    assert wait_for_mode(*fake_server, ["leader"], timeout=2) == "leader"


def test_wait_for_mode_times_out_on_a_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert server_mode("127.0.0.1", port) is None
    with pytest.raises(TimeoutError, match="not serving"):
        wait_for_mode("127.0.0.1", port, timeout=0.3)


@pytest.mark.parametrize("seconds", [0.5, 2.9, 60])
def test_the_readiness_wait_keeps_a_fractional_startup_timeout(seconds):
    assert ZooKeeperReady(startup_timeout=seconds)._startup_timeout == seconds


@pytest.mark.parametrize("seconds", [0, -1, float("nan")])
def test_the_readiness_wait_refuses_a_startup_timeout_that_is_not_positive(seconds):
    with pytest.raises(ValueError, match="startup timeout"):
        ZooKeeperReady(startup_timeout=seconds)
