"""``zklock server``: its argument checks, and what a Docker refusal becomes (nothing started)."""

from __future__ import annotations

import argparse

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

    monkeypatch.setattr(ZooKeeperEnsemble, "open", refused)
    backend = ContainerBackend(3, None, "zklock-no-such-image:0")
    with pytest.raises(ServerFailed, match=r"Docker refused: .*address pools"):
        backend.start()
    backend.stop()
