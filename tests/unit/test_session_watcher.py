"""zklock._session.SessionWatcher against a stand-in for kazoo's client state (no server).

Only the order of registering and reading is checked here; everything that locks is tested
against a real ZooKeeper in tests/integration.
"""

from __future__ import annotations

import threading

from kazoo.protocol.states import KazooState

from zklock._session import SessionWatcher


class ConnectingClient:
    """A client whose CONNECTED lands right after its state is first read, as kazoo's would:
    state set first, then the registered listeners told, on kazoo's own thread."""

    _session_timeout = 10_000

    def __init__(self) -> None:
        self._state = KazooState.SUSPENDED  # kazoo's word while it is still connecting
        self.client_id: tuple[int, bytes] | None = None
        self.listeners: list = []
        self.told: threading.Thread | None = None

    @property
    def state(self) -> str:
        seen = self._state
        if self.told is None:  # the connection completes just after this read
            self._state, self.client_id = KazooState.CONNECTED, (0x5, b"pw")
            listeners = list(self.listeners)
            self.told = threading.Thread(target=lambda: [fn(KazooState.CONNECTED) for fn in listeners])
            self.told.start()
        return seen

    def add_listener(self, listener) -> None:
        self.listeners.append(listener)


def test_a_connection_completed_while_the_watcher_starts_is_not_missed():
    client = ConnectingClient()
    watcher = SessionWatcher(client)  # type: ignore[arg-type]
    assert client.told is not None
    client.told.join(5)
    assert watcher._connected and watcher.session_id == 0x5
