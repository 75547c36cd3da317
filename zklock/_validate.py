"""Checks on user input, done before anything is sent to ZooKeeper."""

from __future__ import annotations

import functools
import inspect
import math
import threading
import unicodedata
from typing import Any

from .errors import InvalidIdentifier, InvalidPath, InvalidTimeout, UsageError
from .naming import NodeNaming
from .retry import RetryPolicy

__all__ = [
    "MAX_IDENTIFIER_BYTES",
    "check_blocking",
    "check_client",
    "check_decorated",
    "check_identifier",
    "check_lock_path",
    "check_naming",
    "check_retry",
    "check_timeout",
]

MAX_IDENTIFIER_BYTES = 1024
MAX_PATH_CHARS = 1024


def _has_forbidden_char(text: str) -> bool:
    # ZooKeeper's PathUtils refuses these UTF-16 code units: controls, and units it reserves.
    # Every character beyond U+FFFF is a surrogate pair in UTF-16 (0xD800-0xDFFF): refused too.
    for char in text:
        code = ord(char)
        if (
            code <= 0x1F
            or 0x7F <= code <= 0x9F
            or 0xD800 <= code <= 0xF8FF
            or code >= 0xFFF0
        ):
            return True
    return False


def check_lock_path(path: object, chroot: str = "") -> str:
    """Return ``path`` if it is a usable lock path, else raise :class:`InvalidPath`.

    ``chroot`` is the client's (kazoo's ``client.chroot``): ``/zookeeper`` is refused where the
    path lands on the server, chroot included.
    """
    if not isinstance(path, str):
        raise InvalidPath(f"lock path must be a str, not {type(path).__name__}")
    if not path.startswith("/"):
        raise InvalidPath(f"lock path must be absolute (start with '/'): {path!r}")
    if path == "/":
        raise InvalidPath("lock path cannot be the root '/'")
    if len(path) > MAX_PATH_CHARS:
        raise InvalidPath(f"lock path is longer than {MAX_PATH_CHARS} characters")
    if path.endswith("/"):
        raise InvalidPath(f"lock path must not end with '/': {path!r}")
    if _has_forbidden_char(path):
        raise InvalidPath(f"lock path holds a control or reserved character: {path!r}")
    for part in path[1:].split("/"):
        if part == "":
            raise InvalidPath(f"lock path has an empty component ('//'): {path!r}")
        if part in (".", ".."):
            raise InvalidPath(f"lock path must not contain '.' or '..': {path!r}")
    on_server = chroot.rstrip("/") + path  # a chroot of "/" (hosts "h:p//") is none
    if on_server == "/zookeeper" or on_server.startswith("/zookeeper/"):
        where = f" (with the client's chroot: {on_server!r})" if chroot else ""
        raise InvalidPath(f"paths under /zookeeper belong to ZooKeeper itself: {path!r}{where}")
    return path


def check_identifier(identifier: object) -> str:
    """Return ``identifier`` if it is short printable text, else raise :class:`InvalidIdentifier`."""
    if not isinstance(identifier, str):
        raise InvalidIdentifier(f"identifier must be a str, not {type(identifier).__name__}")
    if any(unicodedata.category(char) == "Cc" for char in identifier):
        raise InvalidIdentifier(f"identifier holds control characters: {identifier!r}")
    try:
        size = len(identifier.encode("utf-8"))
    except UnicodeEncodeError as error:  # a lone surrogate: not storable as UTF-8
        raise InvalidIdentifier(f"identifier is not valid Unicode text: {identifier!r}") from error
    if size > MAX_IDENTIFIER_BYTES:
        raise InvalidIdentifier(f"identifier is {size} bytes; the limit is {MAX_IDENTIFIER_BYTES}")
    return identifier


def check_blocking(blocking: object) -> bool:
    """Return ``blocking`` as a bool; refuse what ``threading.Lock`` refuses (:class:`UsageError`).

    ``threading.Lock.acquire`` takes a bool or an int; ``None`` or a string is a slip that
    would otherwise pass for a truth value (``"no"`` would block).
    """
    if not isinstance(blocking, int):  # bool is an int
        raise UsageError(f"blocking must be True or False, not {blocking!r}")
    return bool(blocking)


def check_timeout(timeout: object, blocking: bool = True) -> float | None:
    """Normalise an acquire timeout: ``None``/``-1`` = wait forever, ``0`` = one try.

    As ``threading.Lock.acquire``: other negative values are refused, and so is a timeout
    given to a non-blocking call.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InvalidTimeout(
            f"timeout must be a number of seconds as an int or a float, not {type(timeout).__name__}"
        )
    try:
        seconds = float(timeout)
    except OverflowError:  # an int too large for a float: refused below as too large/negative
        seconds = threading.TIMEOUT_MAX * 2 if timeout > 0 else -2.0
    if math.isnan(seconds):
        raise InvalidTimeout("timeout must not be NaN")
    if seconds == -1:
        return None
    if seconds < 0:
        raise InvalidTimeout(f"timeout must be >= 0 (or -1 for no limit), not {timeout}")
    if not blocking:
        raise InvalidTimeout("a timeout cannot be given to a non-blocking acquire")
    if math.isinf(seconds):
        return None
    if seconds > threading.TIMEOUT_MAX:  # threading.Lock refuses these too (OverflowError)
        raise InvalidTimeout(
            f"timeout {timeout} is larger than threading.TIMEOUT_MAX; use None for no limit"
        )
    return seconds


def check_naming(naming: object) -> NodeNaming:
    """Return ``naming`` if it is a :class:`~zklock.NodeNaming`, else raise :class:`UsageError`."""
    if not isinstance(naming, NodeNaming):
        choices = ", ".join(f"NodeNaming.{member.name}" for member in NodeNaming)
        raise UsageError(f"naming must be one of {choices}, not {naming!r}")
    return naming


def check_client(client: object) -> Any:
    """Return ``client`` if it looks like a ``KazooClient``, else raise :class:`UsageError`.

    Checked by what the recipe calls, not by class, so a subclass or a wrapper still works.
    """
    if not all(hasattr(client, name) for name in ("client_state", "create_async", "add_listener")):
        raise UsageError(f"client must be a kazoo KazooClient, not {client!r}")
    return client


def check_retry(retry: object) -> RetryPolicy | None:
    """Return ``retry`` if it is a :class:`~zklock.RetryPolicy` or None, else raise UsageError."""
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise UsageError(
            f"retry must be a zklock.RetryPolicy (its stop, wait and retry are tenacity's "
            f"objects), not {retry!r}"
        )
    return retry


def check_decorated(func: object) -> None:
    """Refuse what a lock cannot protect as a locked function (:class:`UsageError`).

    Something not callable is refused at once, not after the lock was taken for its first
    call.  A coroutine or generator function is refused: its call only makes a coroutine or
    generator object, so the lock would be released before any of its body ran, and the
    body would run unprotected.  A ``staticmethod`` or
    ``classmethod`` object is refused too: the lock's wrapper would not bind a classmethod,
    and would hide what a staticmethod wraps from this very check.
    """
    if isinstance(func, (staticmethod, classmethod)):
        kind = type(func).__name__
        raise UsageError(
            f"a lock cannot decorate a {kind} object: put the lock's decorator below "
            f"@{kind}, next to the function"
        )
    if not callable(func):
        raise UsageError(f"a lock decorates a function, not {type(func).__name__} {func!r}")
    # An object called through an ``async def __call__`` (or a generator one) returns before
    # its body runs just the same.
    # A functools.partial is looked through first: of such an object, it hides the call.
    inner: object = func
    while isinstance(inner, functools.partial):
        inner = inner.func
    call = inner if inspect.isroutine(inner) or inspect.isclass(inner) else type(inner).__call__
    if any(
        check(target)
        for target in (func, inner, call)
        for check in (
            inspect.iscoroutinefunction, inspect.isgeneratorfunction, inspect.isasyncgenfunction
        )
    ):
        raise UsageError(
            f"{getattr(func, '__qualname__', func)!r} is a coroutine or generator function: "
            "a lock around its call would be released before its body runs; take the lock "
            "inside it instead"
        )
