"""ZooKeeperEnsemble.close() with nodes that fail to go: no Docker, stand-in nodes."""

from __future__ import annotations

import logging
from typing import Optional

import pytest
import requests

from zklock.testing import ZooKeeperEnsemble


class FakeWrapped:
    """What get_wrapped_container() returns: only unpause() is used by close()."""

    def __init__(self, error: Optional[Exception]) -> None:
        self.error = error
        self.unpaused = False

    def unpause(self) -> None:
        if self.error is not None:
            raise self.error
        self.unpaused = True


class FakeNode:
    """A node container whose stop() (and unpause) may raise what the Docker client can."""

    def __init__(
        self, stop_error: Optional[Exception] = None, unpause_error: Optional[Exception] = None
    ) -> None:
        self.stop_error = stop_error
        self.stopped = False
        self.wrapped = FakeWrapped(unpause_error)

    def get_wrapped_container(self) -> FakeWrapped:
        return self.wrapped

    def stop(self) -> None:
        self.stopped = True  # tried, whether or not it worked
        if self.stop_error is not None:
            raise self.stop_error


class FakeNetwork:
    def __init__(self) -> None:
        self.removed = False

    def remove(self) -> None:
        self.removed = True


def test_close_removes_every_node_and_the_network_whatever_one_node_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ensemble = ZooKeeperEnsemble(3, "zklock-zookeeper:3.8", pull="never")
    # Not docker's APIError: what requests raises when the daemon is slow or goes away.
    nodes = {
        1: FakeNode(stop_error=requests.exceptions.ReadTimeout("read timed out")),
        2: FakeNode(
            stop_error=requests.exceptions.ConnectionError("connection refused"),
            unpause_error=requests.exceptions.ConnectionError("connection refused"),
        ),
        3: FakeNode(),
    }
    network = FakeNetwork()
    ensemble._nodes.update(nodes)  # type: ignore[arg-type]
    ensemble._paused.add(2)
    ensemble._down.add(3)
    ensemble._network = network  # type: ignore[assignment]

    with caplog.at_level(logging.WARNING, logger="zklock.testing._ensemble"):
        ensemble.close()

    assert all(node.stopped for node in nodes.values())
    assert network.removed
    assert not ensemble.nodes and not ensemble.available and ensemble._network is None
    logged = caplog.text
    assert "could not remove zk1" in logged and "could not remove zk2" in logged
    assert "could not unpause zk2" in logged
    ensemble.close()  # still safe to call again
