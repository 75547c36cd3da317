"""zklock.retry: tenacity policies bound to one Deadline; sleeps recorded, never real."""

from __future__ import annotations

import dataclasses
import decimal
import fractions
import logging
import threading
import time

import pytest
import tenacity
from kazoo import exceptions as kazoo_errors
from kazoo.handlers.threading import KazooTimeoutError
from tenacity import RetryCallState, stop_after_attempt, wait_fixed
from tenacity.stop import stop_base

from zklock import errors
from zklock._deadline import Deadline
from zklock.retry import DEFAULT_RETRY, RetryPolicy, stop_at_deadline


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def state_before_sleep(upcoming_sleep: float) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.upcoming_sleep = upcoming_sleep
    return state


def context() -> str:
    return "lock /test (session 0x1)"


def run(controller: tenacity.Retrying, outcomes: list[BaseException | str]) -> tuple[str, int]:
    """Run ``controller`` over a scripted list of outcomes; return the result and the attempts."""
    calls = 0

    def attempt() -> str:
        nonlocal calls
        outcome = outcomes[calls]
        calls += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return controller(attempt), calls


# ---------------------------------------------------------------- stop_at_deadline
def test_stop_at_deadline_is_a_tenacity_stop():
    assert isinstance(stop_at_deadline(Deadline(1.0)), stop_base)


def test_stop_at_deadline_stops_before_a_sleep_that_would_reach_the_deadline():
    clock = FakeClock()
    stop = stop_at_deadline(Deadline(10.0, clock=clock))
    assert stop(state_before_sleep(0.0)) is False
    assert stop(state_before_sleep(9.99)) is False
    assert stop(state_before_sleep(10.0)) is True  # would end exactly at the deadline
    assert stop(state_before_sleep(10.01)) is True
    clock.now += 8.0
    assert stop(state_before_sleep(1.5)) is False
    assert stop(state_before_sleep(2.5)) is True


def test_stop_at_deadline_once_expired():
    clock = FakeClock()
    stop = stop_at_deadline(Deadline(1.0, clock=clock))
    clock.now += 1.0
    assert stop(state_before_sleep(0.0)) is True


def test_stop_at_an_unbounded_deadline_never_stops():
    stop = stop_at_deadline(Deadline(None))
    assert stop(state_before_sleep(1e9)) is False


# ---------------------------------------------------------------- the controller
def test_default_policy():
    assert DEFAULT_RETRY.stop is tenacity.stop_never
    assert isinstance(DEFAULT_RETRY.wait, tenacity.wait_random_exponential)
    assert DEFAULT_RETRY.request_timeout is None


@pytest.mark.parametrize(
    "error",
    [
        kazoo_errors.ConnectionLoss(),
        kazoo_errors.OperationTimeoutError(),
        kazoo_errors.SessionExpiredError(),
        KazooTimeoutError(),
        errors.ConnectionLost("lost"),
        errors.SessionExpired("expired"),
    ],
    ids=type,
)
def test_transient_errors_are_retried(error):
    sleeps: list[float] = []
    policy = RetryPolicy(wait=wait_fixed(0.25))
    controller = policy.controller(Deadline(None), sleeps.append, context)
    result, calls = run(controller, [error, error, "done"])
    assert (result, calls) == ("done", 3)
    assert sleeps == [0.25, 0.25]


@pytest.mark.parametrize(
    "error",
    [
        kazoo_errors.NoNodeError(),
        kazoo_errors.NodeExistsError(),
        kazoo_errors.NoAuthError(),
        kazoo_errors.BadVersionError(),
        errors.NoAuthorization("no"),
        errors.AcquireCancelled("cancelled"),
        ValueError("bug"),
    ],
    ids=type,
)
def test_definite_errors_are_raised_at_once(error):
    sleeps: list[float] = []
    controller = RetryPolicy().controller(Deadline(None), sleeps.append, context)
    with pytest.raises(type(error)) as raised:
        run(controller, [error, "never reached"])
    assert raised.value is error  # the error itself, not a tenacity.RetryError
    assert sleeps == []


def test_user_stop_composes_with_the_deadline():
    sleeps: list[float] = []
    policy = RetryPolicy(stop=stop_after_attempt(3), wait=wait_fixed(0.1))
    controller = policy.controller(Deadline(None), sleeps.append, context)
    loss = kazoo_errors.ConnectionLoss()
    with pytest.raises(kazoo_errors.ConnectionLoss) as raised:
        run(controller, [loss, loss, loss, "never reached"])
    assert raised.value is loss
    assert sleeps == [0.1, 0.1]


def test_user_stop_joined_with_a_bar():
    policy = RetryPolicy(stop=stop_after_attempt(3))
    controller = policy.controller(Deadline(1.0), [].append, context)
    assert isinstance(controller.stop, tenacity.stop.stop_any)
    kinds = {type(stop) for stop in controller.stop.stops}
    assert kinds == {stop_after_attempt, stop_at_deadline}


def test_a_plain_callable_stop_is_accepted():
    seen: list[int] = []

    def stop_after_two(state: RetryCallState) -> bool:
        seen.append(state.attempt_number)
        return state.attempt_number >= 2

    sleeps: list[float] = []
    policy = RetryPolicy(stop=stop_after_two, wait=wait_fixed(0.5))
    controller = policy.controller(Deadline(None), sleeps.append, context)
    with pytest.raises(kazoo_errors.ConnectionLoss):
        run(controller, [kazoo_errors.ConnectionLoss()] * 5)
    assert seen == [1, 2]
    assert sleeps == [0.5]


def test_a_plain_callable_stop_is_still_bound_by_the_deadline():
    clock = FakeClock()
    sleeps: list[float] = []
    policy = RetryPolicy(stop=lambda state: False, wait=wait_fixed(0.4))
    controller = policy.controller(Deadline(1.0, clock=clock), advance(clock, sleeps), context)
    with pytest.raises(kazoo_errors.ConnectionLoss):
        run(controller, [kazoo_errors.ConnectionLoss()] * 10)
    assert sleeps == [0.4, 0.4]


def advance(clock: FakeClock, sleeps: list[float]):
    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds

    return sleep


def test_never_sleeps_past_the_deadline():
    clock = FakeClock()
    sleeps: list[float] = []
    policy = RetryPolicy(wait=wait_fixed(0.3))
    controller = policy.controller(Deadline(1.0, clock=clock), advance(clock, sleeps), context)
    loss = kazoo_errors.ConnectionLoss()
    with pytest.raises(kazoo_errors.ConnectionLoss) as raised:
        run(controller, [loss] * 10)
    assert raised.value is loss
    # 0.1 s would be left after a fourth sleep: not enough for it, so give up instead.
    assert sleeps == [0.3, 0.3, 0.3]
    assert sum(sleeps) <= 1.0


def test_never_sleeps_past_the_deadline_with_the_default_jittered_wait():
    for _ in range(50):
        clock = FakeClock()
        sleeps: list[float] = []
        controller = DEFAULT_RETRY.controller(Deadline(3.0, clock=clock), advance(clock, sleeps), context)
        with pytest.raises(kazoo_errors.ConnectionLoss):
            run(controller, [kazoo_errors.ConnectionLoss()] * 10_000)
        assert sum(sleeps) < 3.0
        assert all(0.0 <= s <= 2.0 for s in sleeps)  # wait_random_exponential(max=2.0)


def test_deadline_counts_time_spent_in_attempts_too():
    clock = FakeClock()
    sleeps: list[float] = []
    policy = RetryPolicy(wait=wait_fixed(0.1))
    controller = policy.controller(Deadline(1.0, clock=clock), advance(clock, sleeps), context)
    calls = 0

    def slow_attempt() -> None:
        nonlocal calls
        calls += 1
        clock.now += 0.45  # each request waits almost half the budget for an answer
        raise kazoo_errors.ConnectionLoss()

    with pytest.raises(kazoo_errors.ConnectionLoss):
        controller(slow_attempt)
    assert calls == 2  # 0.45 + 0.1 + 0.45 = 1.0: no time left for a third
    assert sleeps == [0.1]


def test_an_expired_deadline_still_makes_one_attempt():
    controller = RetryPolicy().controller(Deadline(0.0), [].append, context)
    assert run(controller, ["once"]) == ("once", 1)
    with pytest.raises(kazoo_errors.ConnectionLoss):
        run(RetryPolicy().controller(Deadline(0.0), [].append, context), [kazoo_errors.ConnectionLoss()])


def test_user_retry_predicate_replaces_the_default():
    policy = RetryPolicy(retry=tenacity.retry_if_exception_type(KeyError), wait=wait_fixed(0))
    controller = policy.controller(Deadline(None), [].append, context)
    assert run(controller, [KeyError(), KeyError(), "ok"]) == ("ok", 3)
    with pytest.raises(kazoo_errors.ConnectionLoss):
        run(policy.controller(Deadline(None), [].append, context), [kazoo_errors.ConnectionLoss(), "ok"])


def test_each_retry_is_logged_with_its_context(caplog):
    caplog.set_level(logging.INFO, logger="zklock.retry")
    policy = RetryPolicy(wait=wait_fixed(0.2))
    controller = policy.controller(Deadline(None), [].append, context)
    run(controller, [kazoo_errors.ConnectionLoss(), "ok"])
    [record] = [r for r in caplog.records if r.name == "zklock.retry"]
    message = record.getMessage()
    assert message.startswith("lock /test (session 0x1): retry 1 in 0.200 s after ConnectionLoss")


def test_policies_are_immutable_and_copied():
    policy = RetryPolicy(request_timeout=2.0)
    other = policy.copy(request_timeout=5.0)
    assert (policy.request_timeout, other.request_timeout) == (2.0, 5.0)
    assert other.wait is policy.wait
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.request_timeout = 1.0  # type: ignore[misc]


def test_each_controller_is_fresh():
    policy = RetryPolicy(stop=stop_after_attempt(2), wait=wait_fixed(0))
    for _ in range(3):  # a stop that counts attempts must not carry over between runs
        controller = policy.controller(Deadline(None), [].append, context)
        assert run(controller, [kazoo_errors.ConnectionLoss(), "ok"]) == ("ok", 2)


def test_run_makes_the_first_try_without_a_controller_and_counts_it_as_attempt_one():
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise kazoo_errors.ConnectionLoss()
        return "ok"

    policy = RetryPolicy(wait=wait_fixed(0.25))
    assert policy.run(flaky, Deadline(None), sleeps.append, lambda: "test") == "ok"
    assert len(calls) == 2 and sleeps == [0.25]


def test_run_honours_stop_after_attempt_including_the_bare_first_try():
    calls: list[int] = []

    def always_lost() -> None:
        calls.append(1)
        raise kazoo_errors.ConnectionLoss()

    policy = RetryPolicy(stop=stop_after_attempt(3), wait=wait_fixed(0))
    with pytest.raises(kazoo_errors.ConnectionLoss):
        policy.run(always_lost, Deadline(None), lambda _s: None, lambda: "test")
    assert len(calls) == 3


def test_run_does_not_retry_a_definite_answer():
    calls: list[int] = []

    def missing() -> None:
        calls.append(1)
        raise kazoo_errors.NoNodeError()

    with pytest.raises(kazoo_errors.NoNodeError):
        RetryPolicy().run(missing, Deadline(None), lambda _s: None, lambda: "test")
    assert len(calls) == 1


@pytest.mark.parametrize("timeout", [0, -1, 0.0, float("nan"), float("inf"), 1e300])
def test_a_request_timeout_that_would_time_out_every_request_is_refused(timeout):
    with pytest.raises(errors.InvalidTimeout):
        RetryPolicy(request_timeout=timeout)


@pytest.mark.parametrize("timeout", ["5", True, [1]], ids=repr)
def test_a_request_timeout_that_is_not_a_number_is_refused(timeout):
    with pytest.raises(errors.InvalidTimeout, match="number of seconds"):
        RetryPolicy(request_timeout=timeout)


@pytest.mark.parametrize("timeout", [None, 0.001, 2, 30.5])
def test_a_positive_request_timeout_or_none_is_kept(timeout):
    assert RetryPolicy(request_timeout=timeout).request_timeout == timeout


def test_copy_checks_its_changes_too():
    with pytest.raises(errors.InvalidTimeout):
        RetryPolicy().copy(request_timeout=0)


@pytest.mark.parametrize("field", ["stop", "wait", "retry"])
def test_a_policy_part_that_cannot_be_called_is_refused(field):
    with pytest.raises(errors.UsageError, match=f"RetryPolicy.{field}"):
        RetryPolicy(**{field: 3})


@pytest.mark.parametrize("field", ["stop", "wait", "retry"])
def test_a_policy_part_that_cannot_take_tenacitys_argument_is_refused(field):
    # Not at the first retry, after the first connection loss.
    with pytest.raises(errors.UsageError, match=f"RetryPolicy.{field}"):
        RetryPolicy(**{field: lambda: 1})
    with pytest.raises(errors.UsageError, match=f"RetryPolicy.{field}"):
        RetryPolicy(**{field: lambda state, more: 1})
    RetryPolicy(**{field: lambda state, more=None: 1})  # one argument is enough


@pytest.mark.parametrize(
    "part",
    [
        ("stop", tenacity.stop_after_attempt),
        ("wait", wait_fixed),
        ("retry", tenacity.retry_if_exception_type),
    ],
)
def test_a_tenacity_class_for_its_object_is_refused(part):
    # stop=stop_after_attempt would be made with the retry state at the first retry: a stop
    # that always says stop, or a raw TypeError for a wait.
    field, cls = part
    with pytest.raises(errors.UsageError, match=f"RetryPolicy.{field} .* not the class {cls.__name__}"):
        RetryPolicy(**{field: cls})


@pytest.mark.parametrize(
    "part",
    [
        ("wait", lambda: wait_fixed(0) + 0.5),  # tenacity would call the 0.5
        ("wait", lambda: tenacity.wait_chain(wait_fixed(1), wait_fixed)),
        ("stop", lambda: stop_after_attempt(3) | 3),
        ("stop", lambda: stop_after_attempt(3) & (tenacity.stop_after_delay(1) | tenacity.stop_after_delay)),
        ("retry", lambda: tenacity.retry_if_exception_type() | 3),
        ("retry", lambda: tenacity.retry_always & (lambda: True)),
    ],
)
def test_a_bad_part_of_a_combination_is_refused_when_the_policy_is_made(part):
    # Not at the first retry, after the first connection loss: a raw TypeError there.
    field, make = part
    with pytest.raises(errors.UsageError, match=f"RetryPolicy.{field}"):
        RetryPolicy(**{field: make()})


def test_good_combinations_are_accepted():
    RetryPolicy(
        stop=stop_after_attempt(3) | (tenacity.stop_after_delay(1) & stop_after_attempt(2)),
        wait=tenacity.wait_chain(wait_fixed(1) + tenacity.wait_random(0, 1), wait_fixed(2)),
        retry=tenacity.retry_if_exception_type() & tenacity.retry_always,
    )


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize(
    "predicate",
    [
        tenacity.retry_always,
        tenacity.retry_if_not_exception_type(errors.NoAuthorization),
        tenacity.retry_unless_exception_type(errors.NoAuthorization),
    ],
)
def test_an_interrupt_after_the_first_try_is_never_retried(predicate, interrupt):
    # The first try fails transiently; the second is interrupted (Ctrl-C in its wait).
    calls: list[int] = []

    def interrupted_on_the_retry() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise kazoo_errors.ConnectionLoss()
        if len(calls) == 2:
            raise interrupt()
        return "granted"

    policy = RetryPolicy(retry=predicate, stop=stop_after_attempt(5), wait=wait_fixed(0))
    with pytest.raises(interrupt):
        policy.run(interrupted_on_the_retry, Deadline(None), lambda _s: None, lambda: "test")
    assert len(calls) == 2


def test_copy_refuses_a_field_a_policy_does_not_have():
    with pytest.raises(errors.UsageError, match="'bogus'"):
        RetryPolicy().copy(bogus=3)


@pytest.mark.parametrize("answer", [float("nan"), -1.0, None, "1", True])
def test_a_wait_that_gives_no_sleep_is_refused_at_the_retry(answer):
    calls: list[int] = []

    def lost() -> None:
        calls.append(1)
        raise kazoo_errors.ConnectionLoss()

    policy = RetryPolicy(wait=lambda _state: answer, stop=stop_after_attempt(3))
    with pytest.raises(errors.UsageError, match=r"RetryPolicy\.wait must give"):
        policy.run(lost, Deadline(1.0), lambda _s: None, lambda: "test")
    assert len(calls) == 1


def slept_after_one_loss(wait: object) -> list[float]:
    """What a run under a policy with this ``wait`` slept, its first try lost, its second not."""
    calls: list[int] = []
    slept: list[float] = []

    def lost_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise kazoo_errors.ConnectionLoss()
        return "ok"

    policy = RetryPolicy(wait=wait)  # type: ignore[arg-type]
    assert policy.run(lost_once, Deadline(None), slept.append, lambda: "test") == "ok"
    return slept


@pytest.mark.parametrize("answer", [decimal.Decimal("0.01"), fractions.Fraction(1, 100), 0])
def test_a_wait_may_give_any_real_number(answer):
    assert slept_after_one_loss(lambda _state: answer) == [float(answer)]


def test_a_wait_longer_than_any_sleep_is_cut_to_the_longest():
    assert slept_after_one_loss(lambda _state: 1e300) == [threading.TIMEOUT_MAX]


@pytest.mark.parametrize(
    "error",
    [
        errors.AcquireCancelled("cancelled"),
        errors.UsageError("bad input"),
        errors.ClientNotConnected("stopped"),
        errors.UsedAfterFork("forked"),
    ],
)
def test_no_retry_predicate_retries_a_cancel_or_an_error_another_try_cannot_mend(error):
    calls: list[int] = []

    def fails() -> None:
        calls.append(1)
        raise error

    # tenacity's retry_always (and its default, every Exception) would spin until the deadline.
    for predicate in (tenacity.retry_always, tenacity.retry_if_exception_type()):
        calls.clear()
        policy = RetryPolicy(retry=predicate, wait=wait_fixed(0))
        with pytest.raises(type(error)):
            policy.run(fails, Deadline(None), lambda _s: None, lambda: "test")
        assert len(calls) == 1


@pytest.mark.parametrize(
    "predicate",
    [
        tenacity.retry_always,
        tenacity.retry_unless_exception_type(errors.NoAuthorization),
        tenacity.retry_if_exception_type(errors.ConnectionLost)
        | tenacity.retry_unless_exception_type(errors.NoAuthorization),
    ],
)
def test_a_predicate_that_says_yes_to_a_success_does_not_retry_it(predicate):
    # These predicates say "retry" to a try that returned: the success must still end the run.
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise kazoo_errors.ConnectionLoss()
        return "ok"

    policy = RetryPolicy(retry=predicate, stop=stop_after_attempt(4), wait=wait_fixed(0))
    assert policy.run(flaky, Deadline(None), lambda _s: None, lambda: "test") == "ok"
    assert len(calls) == 2


def test_run_counts_the_bare_first_try_in_a_time_based_stop(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(time, "monotonic", clock)  # tenacity's clock and ours
    calls: list[int] = []

    def slow_and_lost() -> None:
        calls.append(1)
        clock.now += 1.0  # one request timeout
        raise kazoo_errors.ConnectionLoss()

    policy = RetryPolicy(stop=tenacity.stop_after_delay(0.5), wait=wait_fixed(0))
    with pytest.raises(kazoo_errors.ConnectionLoss):
        policy.run(slow_and_lost, Deadline(None), lambda _s: None, lambda: "test")
    assert len(calls) == 1  # as tenacity would: the first try alone used up the delay
