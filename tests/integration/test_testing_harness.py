"""zklock.testing against a real ZooKeeper: containers, fault tools and leak checks."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Callable

import pytest
from kazoo.client import KazooClient
from kazoo.handlers.threading import SequentialThreadingHandler
from kazoo.protocol.states import KazooState

from zklock.handler import LeanHandler
from zklock.testing import (
    HarnessError,
    ImageNotAvailableError,
    KazooClientFactory,
    LeakError,
    PullPolicy,
    TcpProxy,
    TlsCertificates,
    ZooKeeperContainer,
    ZooKeeperEnsemble,
    ZooKeeperServer,
    ZooKeeperStartError,
    ZooKeeperTlsContainer,
    _tls_server,
    assert_no_containers,
    assert_no_new_threads,
    assert_no_znodes,
    expire_session,
    four_letter_word,
    list_containers,
    list_znodes,
    monitor,
    server_mode,
    thread_snapshot,
)
from zklock.testing._clients import ENV_HANDLER
from zklock.testing._leaks import harness_object_ids

SUSPENDED, CONNECTED, LOST = KazooState.SUSPENDED, KazooState.CONNECTED, KazooState.LOST


class StateLog:
    """Records a kazoo client's connection states; waits for a sequence of them."""

    def __init__(self, client: KazooClient) -> None:
        self.states: list[KazooState] = []
        self._changed = threading.Condition()
        client.add_listener(self)

    def __call__(self, state: KazooState) -> None:
        with self._changed:
            self.states.append(state)
            self._changed.notify_all()

    def saw(self, *sequence: KazooState) -> bool:
        """``sequence`` occurred in this order (not necessarily adjacent)."""
        seen = iter(self.states)
        return all(any(s == wanted for s in seen) for wanted in sequence)

    def wait_for(self, *sequence: KazooState, timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.saw(*sequence), timeout)


def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def needs_container(zookeeper: ZooKeeperServer) -> ZooKeeperContainer:
    if zookeeper.container is None:
        pytest.fail("this test checks the harness's own container (unset ZKLOCK_ZOOKEEPER_HOSTS)")
    return zookeeper.container


# ------------------------------------------------------------------------------ standalone
def test_create_and_delete_znode(zk_client: KazooClient, zk_path: str) -> None:
    path = f"{zk_path}/node"
    zk_client.create(path, b"hello", makepath=True)
    assert zk_client.get(path)[0] == b"hello"
    assert list_znodes(zk_client, zk_path) == [path]
    zk_client.delete(path)
    assert zk_client.exists(path) is None


def test_the_handler_setting_reaches_every_client(zk_client: KazooClient) -> None:
    # CI runs the suite a second time with ZKLOCK_TEST_HANDLER=lean; that pass must really be
    # on LeanHandler, or it only repeats the first.
    lean = os.environ.get(ENV_HANDLER, "").strip().lower() == "lean"
    assert isinstance(zk_client.handler, LeanHandler) is lean, type(zk_client.handler)
    if not lean:
        assert type(zk_client.handler) is SequentialThreadingHandler


def test_srvr_mode_and_four_letter_words(zookeeper: ZooKeeperServer) -> None:
    container = needs_container(zookeeper)
    host, port = zookeeper.addresses[0]
    assert host == "127.0.0.1"
    assert server_mode(host, port) == "standalone" == container.mode() == zookeeper.mode()
    assert "Mode: standalone" in four_letter_word(host, port, "srvr")
    assert monitor(host, port)["zk_server_state"] == "standalone"
    with pytest.raises(ValueError):
        four_letter_word(host, port, "srvr\n")


def test_fast_session_settings_do_not_clamp_kazoo_default(
    zookeeper: ZooKeeperServer, zk_client_factory: KazooClientFactory
) -> None:
    needs_container(zookeeper)
    conf = four_letter_word(*zookeeper.addresses[0], "conf")
    for line in ("tickTime=200", "minSessionTimeout=400", "maxSessionTimeout=20000"):
        assert line in conf.splitlines(), conf
    default, short = zk_client_factory(), zk_client_factory(timeout=0.1)
    assert negotiated_timeout(zookeeper, default) == 10_000  # kazoo's default: not clamped
    assert negotiated_timeout(zookeeper, short) == 400  # raised to minSessionTimeout


def negotiated_timeout(zookeeper: ZooKeeperServer, client: KazooClient) -> int:
    """The session timeout the server granted ``client``, from the ``cons`` listing."""
    sid = f"sid=0x{client.client_id[0]:x},"
    for line in four_letter_word(*zookeeper.addresses[0], "cons").splitlines():
        if sid in line:
            return int(line.split(",to=")[1].split(",")[0])
    raise AssertionError(f"session {sid} not listed by cons")


def test_expire_session_drops_ephemeral_node_and_reports_lost(
    zk_client_factory: KazooClientFactory, zk_path: str
) -> None:
    victim, watcher = zk_client_factory(), zk_client_factory()
    log = StateLog(victim)
    node = f"{zk_path}/owner"
    victim.create(node, ephemeral=True, makepath=True)
    session = victim.client_id[0]
    started = time.monotonic()
    assert expire_session(victim) is True
    took = time.monotonic() - started
    assert LOST in log.states
    assert watcher.exists(node) is None
    # kazoo starts a fresh session by itself
    assert wait_until(lambda: victim.connected and victim.client_id[0] != session)
    assert took < 5, took



def test_expire_session_that_cannot_reach_a_server_fails_typed_and_keeps_no_listener(
    zk_client: KazooClient,
) -> None:
    listeners = set(zk_client.state_listeners)
    with pytest.raises(HarnessError, match="could not expire session"):
        expire_session(zk_client, hosts="127.0.0.1:1", timeout=0.5)  # nothing listens there
    assert set(zk_client.state_listeners) == listeners
    assert zk_client.connected  # its session was never touched


def test_proxy_drop_suspends_then_reconnects_with_the_same_session(
    zookeeper: ZooKeeperServer, zk_client_factory: KazooClientFactory, zk_path: str
) -> None:
    with TcpProxy(zookeeper.connect_string) as proxy:
        client = zk_client_factory(proxy.connect_string)
        log = StateLog(client)
        node = f"{zk_path}/through-proxy"
        client.create(node, ephemeral=True, makepath=True)
        session = client.client_id[0]
        assert proxy.connections == 1
        assert proxy.drop() == 1
        assert log.wait_for(SUSPENDED, CONNECTED, timeout=10), log.states
        assert client.client_id[0] == session
        stat = client.exists(node)
        assert stat is not None and stat.ephemeralOwner == session
        assert LOST not in log.states
        client.delete(node)
        client.stop()


def test_proxy_blackhole_longer_than_session_timeout_expires_the_session(
    zookeeper: ZooKeeperServer, zk_client_factory: KazooClientFactory, zk_path: str
) -> None:
    watcher = zk_client_factory()
    with TcpProxy(zookeeper.connect_string) as proxy:
        client = zk_client_factory(proxy.connect_string, timeout=1.0)  # 1000 ms negotiated
        log = StateLog(client)
        node = f"{zk_path}/partitioned"
        client.create(node, ephemeral=True, makepath=True)
        session = client.client_id[0]
        cut = time.monotonic()
        proxy.blackhole()
        assert proxy.blackholed
        # the server expires the session while the client hears nothing
        assert wait_until(lambda: watcher.exists(node) is None, timeout=10)
        expired_after = time.monotonic() - cut
        assert LOST not in log.states
        proxy.heal()
        assert log.wait_for(LOST, timeout=15), log.states
        assert wait_until(lambda: client.connected and client.client_id[0] != session, 15)
        client.stop()
    assert expired_after < 5, expired_after


# -------------------------------------------------------------------------------- ensemble
def test_ensemble_leader_kill_and_restart_keep_the_client_session(
    zookeeper_ensemble: ZooKeeperEnsemble,
) -> None:
    ensemble = zookeeper_ensemble
    assert sorted(map(str, ensemble.modes().values())) == ["follower", "follower", "leader"]
    factory = KazooClientFactory(ensemble.connect_string)
    try:
        client = factory()
        log = StateLog(client)
        node = f"/zklock-test/ensemble-{uuid.uuid4().hex[:8]}"
        client.create(node, ephemeral=True, makepath=True)
        session = client.client_id[0]

        leader = ensemble.leader()
        started = time.monotonic()
        ensemble.kill(leader)
        assert ensemble.leader() != leader
        assert ensemble.mode(leader) is None
        assert client.retry(client.exists, node) is not None
        failover = time.monotonic() - started

        ensemble.start(leader)
        assert ensemble.modes()[leader] == "follower"
        assert sorted(map(str, ensemble.modes().values())) == ["follower", "follower", "leader"]
        stat = client.retry(client.exists, node)
        assert stat is not None and stat.ephemeralOwner == session
        assert client.client_id[0] == session
        assert LOST not in log.states
        client.delete(node)
    finally:
        factory.close_all()
    assert failover < 15, failover


def test_harness_containers_resolve_names_on_their_own_loopback_only(
    zookeeper: ZooKeeperServer, zookeeper_ensemble: ZooKeeperEnsemble
) -> None:
    # A peer's name unknown to Docker's DNS (the peer stopped) must not be asked of the
    # host's resolvers, which are off this machine.
    containers = [node.get_wrapped_container() for node in zookeeper_ensemble.nodes.values()]
    if zookeeper.container is not None:
        containers.append(zookeeper.container.get_wrapped_container())
    assert len(containers) >= 3
    for container in containers:
        container.reload()
        assert container.attrs["HostConfig"]["Dns"] == ["127.0.0.1"], container.name


def test_ensemble_pause_and_unpause_a_follower(zookeeper_ensemble: ZooKeeperEnsemble) -> None:
    ensemble = zookeeper_ensemble
    follower = ensemble.followers()[0]
    ensemble.pause(follower)
    try:
        assert follower not in ensemble.available
        with KazooClientFactory(ensemble.connect_string_without([follower])) as factory:
            client = factory()
            node = client.create(f"/zklock-test/paused-{uuid.uuid4().hex[:8]}", makepath=True)
            client.delete(node)
    finally:
        ensemble.unpause(follower)
    assert ensemble.modes()[follower] == "follower"


# ---------------------------------------------------------------------------------- leaks
def test_znode_leak_helpers(zk_client: KazooClient, zk_path: str) -> None:
    assert list_znodes(zk_client, zk_path) == []
    zk_client.create(f"{zk_path}/a/b", makepath=True)
    zk_client.create(f"{zk_path}/a/c", ephemeral=True)
    assert list_znodes(zk_client, zk_path) == [f"{zk_path}/a", f"{zk_path}/a/b", f"{zk_path}/a/c"]
    assert list_znodes(zk_client, zk_path, ephemeral_only=True) == [f"{zk_path}/a/c"]
    with pytest.raises(LeakError) as leak:
        assert_no_znodes(zk_client, zk_path, ephemeral_only=True, grace=0.1)
    assert leak.value.leaked == [f"{zk_path}/a/c"]
    # A node that goes within the grace (2 s by default) is not a leak.
    late_delete = threading.Timer(0.3, zk_client.delete, args=(f"{zk_path}/a/c",))
    late_delete.start()
    assert_no_znodes(zk_client, zk_path, ephemeral_only=True)
    late_delete.join()
    zk_client.delete(f"{zk_path}/a", recursive=True)
    assert_no_znodes(zk_client, zk_path)


def test_thread_leak_helpers() -> None:
    before = thread_snapshot()
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="deliberately-leaked")
    thread.start()
    try:
        with pytest.raises(LeakError) as leak:
            assert_no_new_threads(before, grace=0.2)
        assert "deliberately-leaked" in str(leak.value)
    finally:
        release.set()
        thread.join()
    assert_no_new_threads(before, grace=1.0)


@pytest.mark.no_thread_leaks
def test_factory_clients_leave_no_threads(zk_client_factory: KazooClientFactory) -> None:
    for _ in range(3):
        assert zk_client_factory().connected


def test_container_leak_helpers_and_clean_removal(zookeeper: ZooKeeperServer) -> None:
    needs_container(zookeeper)
    before = set(list_containers())
    with ZooKeeperContainer() as extra:
        assert extra.mode() == "standalone"
        assert len(set(list_containers()) - before) == 1
        with pytest.raises(LeakError):
            assert_no_containers()
    assert set(list_containers()) == before
    assert_no_containers(session="no-such-session")


def test_missing_image_with_pull_never_fails_clearly() -> None:
    before = set(list_containers())
    with pytest.raises(ImageNotAvailableError, match="zklock-no-such-image:0"):
        ZooKeeperContainer("zklock-no-such-image:0", pull=PullPolicy.NEVER).start()
    assert set(list_containers()) == before


# A registry on loopback: should the harness ever pull again, Docker asks 127.0.0.1:1 (refused
# at once), never a registry off this machine.
_NOT_LOCAL = "127.0.0.1:1/zklock-no-such-image:0"


def test_pull_never_as_a_plain_string_never_pulls() -> None:
    # PullPolicy is a str enum, but the policy is compared by identity: "never" must be
    # coerced, or the start pulls (and fails with a ZooKeeperStartError about the registry).
    before = harness_object_ids()
    with pytest.raises(ImageNotAvailableError, match=re.escape(_NOT_LOCAL)):
        ZooKeeperContainer(_NOT_LOCAL, pull="never").start()
    with pytest.raises(ImageNotAvailableError, match=re.escape(_NOT_LOCAL)):
        ZooKeeperEnsemble(1, _NOT_LOCAL, pull="never").open()
    assert harness_object_ids() == before  # no container, and the ensemble's network is gone


def test_start_failure_carries_the_container_logs(zookeeper: ZooKeeperServer) -> None:
    needs_container(zookeeper)
    before = set(list_containers())
    broken = ZooKeeperContainer(startup_timeout=30).with_config("tickTime", "not-a-number")
    with pytest.raises(ZooKeeperStartError) as failure:
        broken.start()
    assert "tickTime" in failure.value.logs or "NumberFormatException" in failure.value.logs
    assert "container logs" in str(failure.value)
    assert set(list_containers()) == before  # the failed container was removed


class _Interrupted(BaseException):
    """Stands in for a KeyboardInterrupt during the TLS wait."""


def test_a_tls_server_interrupted_while_starting_removes_its_container(
    zookeeper: ZooKeeperServer, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_container(zookeeper)
    before = set(list_containers())

    def interrupted(*args: object, **kwargs: object) -> None:
        raise _Interrupted()

    monkeypatch.setattr(_tls_server, "tls_server_mode", interrupted)
    container = ZooKeeperTlsContainer(TlsCertificates.create(tmp_path))
    with pytest.raises(_Interrupted):
        container.start()
    assert set(list_containers()) == before
