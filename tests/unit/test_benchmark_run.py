"""benchmarks.run's verdict on mutual exclusion, from a contended suite's results (no server)."""

from __future__ import annotations

from benchmarks.run import exclusion_failures


def contended(overlaps: dict[str, int], inversions: dict[str, int]) -> dict:
    return {"contended": {"by_n": {"8": {"overlaps": overlaps, "token_inversions": inversions}}}}


def test_no_overlap_and_no_inversion_is_no_failure():
    assert exclusion_failures(contended({"zklock": 0, "kazoo": 0}, {"zklock": 0, "kazoo": 0})) == []
    assert exclusion_failures({}) == []  # the contended suite did not run


def test_an_overlap_or_a_token_inversion_is_a_failure_named_by_implementation():
    found = exclusion_failures(contended({"zklock": 0, "kazoo": 2}, {"zklock": 1, "kazoo": 0}))
    assert found == ["N=8 kazoo: 2 overlaps", "N=8 zklock: 1 token inversions"]
