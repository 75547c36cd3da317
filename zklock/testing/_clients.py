"""Started kazoo clients that are all stopped and closed together."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Optional

from kazoo.client import KazooClient

__all__ = ["KazooClientFactory"]

_log = logging.getLogger(__name__)

#: kazoo's own default session timeout, which zklock assumes a server does not clamp lower.
DEFAULT_SESSION_TIMEOUT = 10.0


class KazooClientFactory:
    """Make kazoo clients for one ZooKeeper; :meth:`close_all` stops and closes every one.

    ::

        factory = KazooClientFactory(server.connect_string)
        owner, rival = factory(), factory(timeout=2.0)
        ...
        factory.close_all()
    """

    def __init__(
        self,
        hosts: str,
        *,
        timeout: float = DEFAULT_SESSION_TIMEOUT,
        start_timeout: float = 15.0,
    ) -> None:
        self.hosts = hosts
        self.timeout = timeout
        self.start_timeout = start_timeout
        self._clients: list[KazooClient] = []

    def __call__(
        self,
        hosts: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        start: bool = True,
        **kwargs: Any,
    ) -> KazooClient:
        """Create a client (started unless ``start=False``) and keep it for :meth:`close_all`.

        ``hosts`` defaults to the factory's server (pass a :class:`TcpProxy`'s connect string
        to go through it); ``timeout`` is the requested session timeout in seconds; other
        keyword arguments go to :class:`kazoo.client.KazooClient`.
        """
        client = KazooClient(
            hosts=hosts or self.hosts,
            timeout=self.timeout if timeout is None else timeout,
            **kwargs,
        )
        self._clients.append(client)
        if start:
            client.start(timeout=self.start_timeout)
        return client

    @property
    def clients(self) -> list[KazooClient]:
        """The clients made so far, oldest first."""
        return list(self._clients)

    def close_all(self) -> None:
        """Stop and close every client made so far (newest first); idempotent."""
        while self._clients:
            client = self._clients.pop()
            try:
                client.stop()
            except Exception:
                _log.warning("stopping kazoo client %r failed", client, exc_info=True)
            with contextlib.suppress(Exception):
                client.close()
