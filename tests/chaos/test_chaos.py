"""The chaos suite: 5 worker processes on one lock, a 3-node ensemble, one fault kind per run.

Run it alone with ``pytest -s tests/chaos`` to see each run's figures (``CHAOS`` lines);
``-m "not chaos"`` leaves the runs out (the checker's unit tests still run). The module starts
its own ensemble, so killing and freezing its nodes disturbs no other test. See docs/chaos.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zklock.testing import FaultsUnavailableError, Settings, ZooKeeperEnsemble

from .checker import check
from .history import FAULT_KINDS
from .runner import ChaosRun, RunSettings

SETTINGS = RunSettings()
#: Stall allowance on top of the session timeout: no worker may go longer than
#: ``T + STALL_ALLOWANCE`` (13 s) without completing a critical section, over the whole run. A
#: worker may wait behind a holder whose session must first expire (one more session timeout),
#: then for a leader election and its client's reconnect (backoff capped at 1 s), on a shared
#: 2-core machine where a container restart competes with the workers: 5 s covers that with
#: room. A default run lasts only 8 to 15 s, so this bound is for longer runs (raised
#: ``warm_up`` / ``cool_down``); in a default run RECOVERY_ALLOWANCE is what demands progress.
STALL_ALLOWANCE = SETTINGS.session_timeout + 5.0
#: Once the nemesis has healed the fault (the ensemble settled again, a frozen worker
#: continued), the lock must be handed over again, and every alive worker must complete a
#: critical section acquired after the healing, within this. What may legitimately remain by
#: then: a client's reconnect (backoff capped at 1 s, +40 % jitter), a new session for one
#: whose session expired, and a turn in a queue of five (each section holds 50 ms). It must
#: fit in the cool-down, or the rule could not fire (the checker fails a run that stops
#: sooner). docs/chaos.md explains both bounds.
RECOVERY_ALLOWANCE = 4.0
assert RECOVERY_ALLOWANCE <= SETTINGS.cool_down, "the cool-down must cover the recovery allowance"

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def chaos_ensemble() -> Iterator[ZooKeeperEnsemble]:
    """This module's own 3-node ensemble (never the shared one: the nemesis hurts it)."""
    settings = Settings.from_env()
    if settings.external:
        raise FaultsUnavailableError(
            "the chaos suite kills and freezes ZooKeeper servers, so it needs its own container "
            "ensemble; unset ZKLOCK_ZOOKEEPER_HOSTS or deselect it with -m 'not chaos'"
        )
    with ZooKeeperEnsemble(3, settings.image, pull=settings.pull) as ensemble:
        yield ensemble


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_chaos(kind: str, chaos_ensemble: ZooKeeperEnsemble, tmp_path: Path) -> None:
    chaos_ensemble.recover()  # start healthy even if an earlier run failed half-way
    run = ChaosRun(chaos_ensemble, tmp_path, kind, SETTINGS)
    try:
        history = run.run()
    finally:
        chaos_ensemble.recover()
    report = check(
        history,
        session_timeout=SETTINGS.session_timeout,
        stall_allowance=STALL_ALLOWANCE,
        recovery_allowance=RECOVERY_ALLOWANCE,
    )
    print("\n" + report.summary())
    assert report.ok, "\n".join([report.summary(), *report.violations, run.worker_output()])
