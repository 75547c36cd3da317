"""Retry policies for transient ZooKeeper errors, made of tenacity's own pieces.

A :class:`RetryPolicy` holds three tenacity objects: ``stop`` (when to give up), ``wait``
(how long to sleep between tries) and ``retry`` (which errors are worth another try).  They
compose as in tenacity::

    from tenacity import stop_after_attempt, stop_after_delay, wait_fixed
    policy = RetryPolicy(stop=stop_after_attempt(5) | stop_after_delay(10), wait=wait_fixed(0.1))
    lock = zklock.Lock(client, "/locks/report", retry=policy)

Whatever the user's ``stop`` says, each run is also bounded by the acquire's deadline: the
policy's stop is joined with ``|`` to :class:`stop_at_deadline`, which (like tenacity's
``stop_before_delay``) gives up *before* a sleep that would overrun the deadline.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, TypeVar

import tenacity
from tenacity import RetryCallState
from tenacity.retry import retry_base, retry_if_exception
from tenacity.stop import stop_base, stop_never
from tenacity.wait import wait_base, wait_random_exponential

from ._deadline import Deadline
from .errors import (
    AcquireCancelled,
    ClientNotConnected,
    InvalidTimeout,
    UsageError,
    UsedAfterFork,
    is_transient,
)

__all__ = ["DEFAULT_RETRY", "RetryPolicy", "stop_at_deadline"]

log = logging.getLogger("zklock.retry")

T = TypeVar("T")


class stop_at_deadline(stop_base):
    """Stop when the next sleep would end at or past ``deadline``."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        """Return True to give up now."""
        remaining = self.deadline.remaining()
        return remaining is not None and remaining <= retry_state.upcoming_sleep


# Errors no policy retries, whatever its ``retry`` says (``retry_always`` would say yes): the
# caller asked to stop, or another try cannot help and would spin until the deadline, or for
# ever without one.
_NEVER_RETRIED = (AcquireCancelled, UsageError, ClientNotConnected, UsedAfterFork)


def _unless_never_retried(
    retry: Callable[[RetryCallState], bool],
) -> Callable[[RetryCallState], bool]:
    def decide(state: RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            # A try that succeeded is done: retry_always, retry_unless_exception_type and their
            # unions say yes to a success too, which would send the request again and again
            # (a held lock's acquire never returned) and end in tenacity's RetryError.
            return False
        error = outcome.exception()
        # Past the bare first try, tenacity records any BaseException as a try's outcome:
        # Ctrl-C or sys.exit() in a wait must end it, whatever the predicate says.
        if not isinstance(error, Exception) or isinstance(error, _NEVER_RETRIED):
            return False
        return bool(retry(state))

    return decide


@dataclass(frozen=True, eq=False)
class RetryPolicy:
    """How zklock retries a ZooKeeper request that failed transiently.

    ``stop``, ``wait`` and ``retry`` are tenacity objects (or plain callables of the same
    shape).  ``request_timeout`` bounds how long one request may go unanswered before it counts
    as a connection loss; ``None`` means the client's session timeout.  Bad values are refused
    when the policy is made: :class:`~zklock.errors.InvalidTimeout` for ``request_timeout``,
    :class:`~zklock.errors.UsageError` for a part that cannot be called.
    """

    stop: stop_base | Callable[[RetryCallState], bool] = stop_never
    wait: wait_base | Callable[[RetryCallState], float] = field(
        default_factory=lambda: wait_random_exponential(multiplier=0.05, max=2.0)
    )
    retry: retry_base | Callable[[RetryCallState], bool] = field(
        default_factory=lambda: retry_if_exception(is_transient)
    )
    request_timeout: float | None = None

    def __post_init__(self) -> None:
        # Refused here, not at the first request: a zero or negative bound would time out
        # every request on a healthy server, and acquire() with no timeout would retry forever.
        # A part that cannot be called with tenacity's one argument would fail only at the
        # first retry, after the first connection loss.
        for name in ("stop", "wait", "retry"):
            for part in _parts(getattr(self, name)):  # each part of a | & + combination too
                if inspect.isclass(part):  # stop_after_attempt for stop_after_attempt(3)
                    raise UsageError(
                        f"RetryPolicy.{name} must be a tenacity {name} object, not the class "
                        f"{part.__name__}: make one, e.g. {part.__name__}(...)"
                    )
                if not callable(part) or not _takes_one_argument(part):
                    raise UsageError(
                        f"RetryPolicy.{name} must be a tenacity {name} object or a callable "
                        f"taking tenacity's RetryCallState, not {part!r}"
                    )
        timeout = self.request_timeout
        if timeout is None:
            return
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise InvalidTimeout(
                f"request_timeout must be a number of seconds or None, not {type(timeout).__name__}"
            )
        if not 0 < timeout <= threading.TIMEOUT_MAX:  # NaN fails this too
            raise InvalidTimeout(
                f"request_timeout must be > 0 and at most threading.TIMEOUT_MAX, not {timeout}"
            )

    def copy(self, **changes: Any) -> RetryPolicy:
        """A new policy with some fields replaced (policies are immutable)."""
        unknown = sorted(set(changes) - {part.name for part in fields(self)})
        if unknown:
            raise UsageError(f"RetryPolicy has no field {', '.join(map(repr, unknown))}")
        return replace(self, **changes)

    def run(
        self,
        operation: Callable[[], T],
        deadline: Deadline,
        sleep: Callable[[float], None],
        context: Callable[[], str],
    ) -> T:
        """Run ``operation``, retrying it under this policy.

        The first try runs bare: building tenacity's controller costs more than a whole
        uncontended acquire's own work, and most runs never fail.  A first failure then
        counts as tenacity's attempt 1, started when the first try started, so
        ``stop_after_attempt(n)`` still means n tries and ``stop_after_delay(s)`` counts the
        first try's time.
        """
        started = time.monotonic()  # tenacity's own clock for start_time
        try:
            return operation()
        except Exception as error:
            first: Exception | None = error
        result: T
        for attempt in self.controller(deadline, sleep, context):
            with attempt:
                if first is not None:
                    attempt.retry_state.start_time = started
                    failed, first = first, None
                    raise failed
                result = operation()
        return result

    def controller(
        self,
        deadline: Deadline,
        sleep: Callable[[float], None],
        context: Callable[[], str],
    ) -> tenacity.Retrying:
        """A tenacity ``Retrying`` bound to ``deadline``, sleeping with ``sleep``.

        ``context`` describes the operation for the log line written before each retry.
        """

        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.info(
                "%s: retry %d in %.3f s after %r", context(), state.attempt_number,
                state.upcoming_sleep, error,
            )

        return tenacity.Retrying(
            stop=self.stop | stop_at_deadline(deadline)
            if isinstance(self.stop, stop_base)
            else _stop_either(self.stop, stop_at_deadline(deadline)),
            wait=_checked_wait(self.wait),
            retry=_unless_never_retried(self.retry),
            sleep=sleep,
            before_sleep=log_retry,
            reraise=True,
        )


# Where tenacity's combinations keep their parts: stop_any/stop_all (|, &), retry_any/retry_all
# (|, &), wait_combine (+) and wait_chain.
_COMBINED_PARTS = ("stops", "retries", "wait_funcs", "strategies")


def _parts(policy: object) -> list[object]:
    """``policy`` itself, or the parts a tenacity combination is made of, however deep."""
    if inspect.isclass(policy):
        return [policy]
    for attribute in _COMBINED_PARTS:
        parts = getattr(policy, attribute, None)
        if isinstance(parts, tuple):
            return [leaf for part in parts for leaf in _parts(part)]
    return [policy]


def _takes_one_argument(part: Callable[..., Any]) -> bool:
    """Whether ``part`` can be called with one positional argument (True when unknowable)."""
    try:
        inspect.signature(part).bind(None)
    except TypeError:
        return False
    except ValueError:  # no signature to read (some built-ins): let the call tell
        return True
    return True


def _checked_wait(
    wait: Callable[[RetryCallState], float],
) -> Callable[[RetryCallState], float]:
    """``wait``, refusing an answer that is no sleep (:class:`UsageError`).

    A sleep must be a number of seconds, at least 0; one beyond ``threading.TIMEOUT_MAX``
    is cut to it (no wait can be longer).
    """

    def checked(state: RetryCallState) -> float:
        seconds = wait(state)
        # Any number float() takes will do (a Decimal, a Fraction, a numpy float), but text.
        value = float("nan")
        if not isinstance(seconds, (bool, str, bytes)):
            with contextlib.suppress(TypeError, ValueError, OverflowError):
                value = float(seconds)
        if not value >= 0:  # NaN fails this too
            raise UsageError(
                f"RetryPolicy.wait must give a number of seconds >= 0, and gave {seconds!r}"
            )
        return min(value, threading.TIMEOUT_MAX)

    return checked


def _stop_either(
    first: Callable[[RetryCallState], bool], second: stop_base
) -> Callable[[RetryCallState], bool]:
    return lambda state: first(state) or second(state)


#: The policy of a lock made without ``retry=``: transient errors retried until the call's deadline
#: (for ever without one), with jittered exponential back-off up to 2 s; a request unanswered for
#: the session timeout counts as a lost connection.
DEFAULT_RETRY = RetryPolicy()
