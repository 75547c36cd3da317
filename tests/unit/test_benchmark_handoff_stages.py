"""How ``benchmarks.handoff`` pairs each woken acquisition with the release that woke it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hand_off_stages():
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.handoff import hand_off_stages
    finally:
        sys.path.remove(str(ROOT))
    return hand_off_stages


def test_a_listed_hand_off_has_six_stages_and_its_total(hand_off_stages):
    releases = [(1.0, 1.1, 1.2), (5.0, 5.1, 5.3)]
    woken = {"watch callback": 5.6, "listing sent": 5.7, "listing's reply": 6.0, "acquired": 6.4}
    [row] = hand_off_stages(releases, [woken])
    assert row == pytest.approx([0.1, 0.2, 0.3, 0.1, 0.3, 0.4, 1.4])


def test_without_a_listing_the_two_listing_stages_are_absent(hand_off_stages):
    [row] = hand_off_stages([(1.0, 1.1, 1.2)], [{"watch callback": 1.5, "acquired": 1.7}])
    assert row[3:5] == [None, None]
    assert row[:3] + row[5:] == pytest.approx([0.1, 0.1, 0.3, 0.2, 0.7])


def test_unwoken_and_out_of_order_acquisitions_are_left_out(hand_off_stages):
    releases = [(1.0, 1.1, 1.2)]
    first_in_queue = {"acquired": 2.0}  # never watched anything
    before_any_release = {"watch callback": 0.5, "acquired": 0.9}
    woken_by_another = {"watch callback": 1.15, "acquired": 2.0}  # before this delete was sent
    assert hand_off_stages(releases, [first_in_queue, before_any_release, woken_by_another]) == []
