"""Started kazoo clients that are all stopped and closed together."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Optional

from kazoo.client import KazooClient

from ._errors import SettingsError

__all__ = ["ENV_HANDLER", "KazooClientFactory", "handler_from_env"]

_log = logging.getLogger(__name__)

#: kazoo's own default session timeout, which zklock assumes a server does not clamp lower.
DEFAULT_SESSION_TIMEOUT = 10.0

#: ``ZKLOCK_TEST_HANDLER=lean`` gives every client made here zklock's LeanHandler, so a whole
#: suite can be run once on kazoo's stock handler and once on the lean one.
ENV_HANDLER = "ZKLOCK_TEST_HANDLER"


def handler_from_env() -> Any:
    """A new kazoo handler as ``ZKLOCK_TEST_HANDLER`` asks (``lean``), or None for kazoo's own."""
    choice = os.environ.get(ENV_HANDLER, "").strip().lower()
    if choice in ("", "stock", "kazoo"):
        return None
    if choice == "lean":
        from ..handler import LeanHandler

        return LeanHandler()
    raise SettingsError(f"{ENV_HANDLER}={choice!r}: expected 'lean' or 'stock'")


class KazooClientFactory:
    """Make kazoo clients for one ZooKeeper; :meth:`close_all` stops and closes every one.

    ::

        with KazooClientFactory(server.connect_string) as factory:  # close_all() at the end
            owner, rival = factory(), factory(timeout=2.0)
            ...
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
        if "handler" not in kwargs:
            kwargs["handler"] = handler_from_env()
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

    def __enter__(self) -> KazooClientFactory:
        """The factory itself; leaving the block stops and closes every client it made."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close_all()

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
