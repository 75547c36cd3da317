"""``zklock server``: its argument checks, what a Docker refusal becomes (nothing started), and
its stop signals (on stand-in backends: nothing is started)."""

from __future__ import annotations

import argparse
import os
import signal
import time

import pytest

from zklock.cli._errors import CommandLineError
from zklock.cli.server import check_arguments


def arguments(ensemble: int, port: int | None) -> argparse.Namespace:
    return argparse.Namespace(ensemble=ensemble, port=port)


@pytest.mark.parametrize(
    ("ensemble", "port"), [(1, None), (1, 0), (1, 65535), (3, 65533), (9, 2181), (9, 65527)]
)
def test_ports_up_to_the_last_one_are_accepted(ensemble, port):
    check_arguments(arguments(ensemble, port))


@pytest.mark.parametrize(("ensemble", "port"), [(1, 65536), (2, 65535), (3, 65534), (1, -1)])
def test_a_first_port_whose_last_server_would_not_fit_is_refused(ensemble, port):
    with pytest.raises(CommandLineError, match="not a usable port"):
        check_arguments(arguments(ensemble, port))


@pytest.mark.parametrize("ensemble", [0, 10])
def test_an_ensemble_size_outside_1_to_9_is_refused(ensemble):
    with pytest.raises(CommandLineError, match="between 1 and 9"):
        check_arguments(arguments(ensemble, None))


def test_a_docker_refusal_while_starting_is_a_server_that_failed(monkeypatch):
    # As when Docker has no address pool left for the ensemble's network: zklock server
    # then tries the next backend, or exits 69 with the reason, not with a traceback.
    from docker.errors import APIError

    from zklock.cli._backends import ContainerBackend
    from zklock.cli._errors import ServerFailed
    from zklock.testing import ZooKeeperEnsemble

    def refused(self):
        raise APIError("all predefined address pools have been fully subnetted")

    swept: list[frozenset[str]] = []
    monkeypatch.setattr(ZooKeeperEnsemble, "open", refused)
    monkeypatch.setattr("zklock.testing._leaks.harness_object_ids", lambda: frozenset({"older"}))
    monkeypatch.setattr("zklock.testing._leaks.remove_containers", lambda sparing: swept.append(sparing))
    backend = ContainerBackend(3, None, "zklock-no-such-image:0")
    with pytest.raises(ServerFailed, match=r"Docker refused: .*address pools"):
        backend.start()
    backend.stop()
    backend.stop()
    # What the failed start may have left is swept once, sparing what was there before it.
    assert swept == [frozenset({"older"})]


class _Backend:
    """A stand-in backend that records its calls; ``fails`` to start, or serves."""

    description = "stand-in"

    def __init__(self, log: list[str], name: str, fails: bool, signal_in_stop: bool = False):
        self.log, self.name, self.fails, self.signal_in_stop = log, name, fails, signal_in_stop
        self.stopped = False

    def start(self) -> str:
        from zklock.cli._errors import ServerFailed

        self.log.append(f"{self.name} start")
        if self.fails:
            raise ServerFailed("did not serve")
        return "127.0.0.1:2181"

    def check(self) -> None:
        pass

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.log.append(f"{self.name} stop begins")
        if self.signal_in_stop:  # Ctrl-C in the middle of the removal
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here, in this thread
        self.log.append(f"{self.name} stop ends")


def test_a_stop_signal_during_a_failed_backends_clean_up_waits_for_it_and_tries_no_other(monkeypatch):
    from zklock.cli import server

    log: list[str] = []
    docker = _Backend(log, "docker", fails=True, signal_in_stop=True)
    java = _Backend(log, "java", fails=False)
    monkeypatch.setattr(server, "ContainerBackend", _factory(docker))
    monkeypatch.setattr(server, "JavaBackend", _factory(java))
    args = argparse.Namespace(backend="auto", ensemble=1, port=None, image=None)

    assert server.run(args) == 128 + signal.SIGINT
    assert log == ["docker start", "docker stop begins", "docker stop ends"]


def test_a_sighup_started_ignored_stays_ignored_and_an_ignored_sigint_still_stops(monkeypatch):
    # nohup zklock server &: closing the terminal must not stop it.  A script's background
    # command starts with SIGINT ignored, and `kill -INT` must still stop it.
    from zklock.cli.server import _Stop, _StopSignals

    before = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGHUP, signal.SIGINT)}
    try:
        with _StopSignals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)  # nothing raised
            with pytest.raises(_Stop):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def _factory(backend: _Backend) -> object:
    class Made:
        @staticmethod
        def unavailable(*_args: object, **_kwargs: object) -> None:
            return None

        def __new__(cls, *_args: object) -> _Backend:  # type: ignore[misc]
            return backend

    return Made
