"""The wait of ``zklock exec``: who holds the lock, shown on stderr while the main thread acquires."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import TYPE_CHECKING, TextIO

from ._signals import STOP, SignalRouter

if TYPE_CHECKING:
    from kazoo.client import KazooClient

    from ..lock import Lock

__all__ = ["FIRST_POLL", "POLL_INTERVAL", "Display", "Waiting", "elide"]

POLL_INTERVAL = 0.5
"""Seconds between two looks at the queue while waiting (at most ~2 requests a second)."""
FIRST_POLL = 0.2
"""Nothing is shown if the lock comes within this time."""


class Display:
    """The wait shown on stderr: one line updated in place on a terminal, else log lines."""

    def __init__(self, stream: TextIO | None, in_place: bool) -> None:
        self._stream = stream
        self._in_place = in_place
        self._last_key: object = None
        self._on_screen = False
        self.shown = False

    @classmethod
    def for_stream(cls, stream: TextIO, quiet: bool) -> Display:
        """A display on ``stream`` (nothing at all when ``quiet``)."""
        if quiet:
            return cls(None, False)
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        return cls(stream, tty)

    def columns(self) -> int | None:
        """The terminal's width for an in-place line, or None when lines may be any length."""
        if not self._in_place or self._stream is None:
            return None
        try:
            columns = os.get_terminal_size(self._stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
        return columns or 80

    def update(self, text: str, key: object) -> None:
        """Show ``text``; as a log line only when ``key`` changed since the last one."""
        if self._stream is None:
            return
        if self._in_place:
            width = self.columns() or 80
            self._write("\r\x1b[2K" + f"zklock: {text}"[: max(10, width - 1)])
            self._on_screen = True
        elif key != self._last_key:
            self._write(f"zklock: {text}\n")
        self._last_key = key
        self.shown = True

    def clear(self) -> None:
        """Remove the in-place line, if any."""
        if self._on_screen:
            self._write("\r\x1b[2K")
            self._on_screen = False

    def line(self, text: str) -> None:
        """Print one log line (not on a terminal, where the cleared status line says enough)."""
        if self._stream is not None and not self._in_place:
            self._write(f"zklock: {text}\n")

    def _write(self, text: str) -> None:
        assert self._stream is not None
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(text)
            self._stream.flush()


class Waiting(threading.Thread):
    """While the main thread acquires: show the queue, and cancel the acquire on a signal."""

    def __init__(
        self, lock: Lock, client: KazooClient, router: SignalRouter, display: Display
    ) -> None:
        super().__init__(name="zklock-exec-waiting", daemon=True)
        self._lock = lock
        self._client = client
        self._router = router
        self._display = display
        self._since = time.monotonic()

    def stop(self) -> None:
        """Ask the thread to end, and wait for it (it ends within one request timeout)."""
        if self.is_alive():
            self._router.poke(STOP)
            self.join()

    def run(self) -> None:
        """Poll the queue every POLL_INTERVAL until stopped; on a signal, cancel the acquire."""
        next_poll = self._since + FIRST_POLL
        cancelling = False
        try:
            while True:
                now = time.monotonic()
                timeout = 0.1 if cancelling else max(0.0, next_poll - now)
                data = self._router.read(timeout)
                if STOP in data:
                    return
                if data:  # a signal number: stop waiting
                    cancelling = True
                    self._display.clear()
                if cancelling:
                    # Again and again: an acquire that had not yet started is cancelled too.
                    self._lock.cancel()
                    continue
                if time.monotonic() >= next_poll:
                    self._show()
                    next_poll = time.monotonic() + POLL_INTERVAL
        finally:
            self._display.clear()

    def _show(self) -> None:
        from ..errors import ZkLockError

        waited = f"waited {time.monotonic() - self._since:.0f} s"
        try:
            contenders = self._lock.contenders(timeout=POLL_INTERVAL)
        except ZkLockError as error:
            text = f"waiting for {self._lock.path}: no answer from ZooKeeper ({error}); {waited}"
            self._display.update(text, ("error", type(error)))
            return
        client_id = self._client.client_id
        own_session = client_id[0] if client_id else None
        place = next(
            (i for i, c in enumerate(contenders) if c.session_id == own_session), None
        )
        if not contenders or place == 0:
            self._display.update(f"waiting for {self._lock.path}; {waited}", ("free",))
            return
        holder = contenders[0]
        held_by = f"held by {holder.identifier!r} (token {holder.token})"
        path = self._lock.path
        columns = self._display.columns()
        if columns is None:
            # The count ahead is also our position as `zklock status` numbers it (holder: 0).
            queue = "" if place is None else f"; position {place} in the queue ({place} ahead of us)"
            rest = f": {held_by}{queue}; {waited}"
        else:  # one line on a terminal: the news first, the path shortened, the end cut
            ahead = "" if place is None else f"{place} ahead, "
            rest = f": {ahead}{waited}; {held_by}"
            path = elide(path, columns - 1 - len(f"zklock: waiting for {rest}"))
        self._display.update(f"waiting for {path}{rest}", (holder.node, place))


def elide(text: str, room: int) -> str:
    """``text`` shortened to ``room`` characters (at least 12) by dropping its middle."""
    room = max(12, room)
    if len(text) <= room:
        return text
    head = (room - 3) // 2
    return text[:head] + "..." + text[len(text) - (room - 3 - head) :]
