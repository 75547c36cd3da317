"""benchmarks.run's verdicts on mutual exclusion and on the scale suite, and the table that
reports them, from results (no server)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.report import render
from benchmarks.run import exclusion_failures, scale_failures


def contended(overlaps: dict[str, int], inversions: dict[str, int]) -> dict:
    return {"contended": {"by_n": {"8": {"overlaps": overlaps, "token_inversions": inversions}}}}


def test_no_overlap_and_no_inversion_is_no_failure():
    assert exclusion_failures(contended({"zklock": 0, "kazoo": 0}, {"zklock": 0, "kazoo": 0})) == []
    assert exclusion_failures({}) == []  # the contended suite did not run


def test_an_overlap_or_a_token_inversion_is_a_failure_named_by_implementation():
    found = exclusion_failures(contended({"zklock": 0, "kazoo": 2}, {"zklock": 1, "kazoo": 0}))
    assert found == ["N=8 kazoo: 2 overlaps", "N=8 zklock: 1 token inversions"]


def waiters(**changes: object) -> dict:
    chain = {"waiters": 1000, "queued": 1000, "watching_at_start": 1000, "completed": 1000,
             "errors": []}
    chain.update(changes)
    return {"scale": {"hold": {"zklock": {"sampled_nodes_ok": True}}, "waiters": {"zklock": chain}}}


def test_a_scale_run_done_in_full_is_no_failure():
    assert scale_failures(waiters()) == []
    assert scale_failures({}) == []  # the scale suite did not run


def test_a_scale_run_not_done_in_full_is_a_failure():
    assert scale_failures(waiters(completed=998, errors=["Traceback ..."])) == [
        "waiters zklock: completed 998 of 1000",
        "waiters zklock: 1 errors, the first: Traceback ...",
    ]
    assert scale_failures(waiters(queued=999)) == ["waiters zklock: queued 999 of 1000"]
    missing = waiters()
    missing["scale"]["hold"]["zklock"]["sampled_nodes_ok"] = False
    assert scale_failures(missing) == ["hold zklock: a sampled lock path did not have its one node"]


def test_the_contended_table_shows_each_implementations_token_inversions():
    reference = Path(__file__).parents[2] / "docs" / "performance-standalone.json"
    document = json.loads(reference.read_text())
    by_n = document["contended"]["by_n"]
    n, data = next(iter(by_n.items()))
    impls = list(data["median"])
    data["token_inversions"] = {impl: 0 for impl in impls} | {impls[-1]: 7}
    table = render({"meta": document["meta"], "contended": document["contended"]})
    header = next(line for line in table.splitlines() if line.startswith("N impl"))
    assert header.split()[-2:] == ["token", "inv."]
    row = next(line for line in table.splitlines() if line.startswith(f"N={n} {impls[-1]} "))
    assert row.split()[-1] == "7"
