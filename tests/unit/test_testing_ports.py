"""Free ports for the harness's servers: outside the kernel's ephemeral range where it is known."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from zklock.testing import _ports
from zklock.testing._ports import free_loopback_ports


def test_free_ports_are_distinct_bindable_and_outside_the_ephemeral_range() -> None:
    low, high = (int(f) for f in Path(_ports.EPHEMERAL_RANGE_FILE).read_text().split())
    ports = free_loopback_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        # A client connection made before the port is published can never take it.
        assert not low <= port <= high
        assert port >= _ports.LOWEST_CHOSEN_PORT
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        # Eleven candidates, the held port among them: every choice must pass it over.
        candidates = [*range(taken - 30, taken - 20), taken]
        monkeypatch.setattr(_ports, "_outside_ephemeral_range", lambda: candidates)
        for _ in range(20):
            assert taken not in free_loopback_ports(2)


def test_the_kernel_chooses_when_the_range_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _ports._outside_ephemeral_range(str(tmp_path / "missing")) is None
    (tmp_path / "garbled").write_text("not a range\n")
    assert _ports._outside_ephemeral_range(str(tmp_path / "garbled")) is None
    monkeypatch.setattr(_ports, "_outside_ephemeral_range", lambda: None)
    ports = free_loopback_ports(3)
    assert len(set(ports)) == 3
