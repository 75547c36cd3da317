"""How ``benchmarks.handoff`` pairs each woken acquisition with the release that woke it,
and sums up the stages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def handoff():
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import handoff
    finally:
        sys.path.remove(str(ROOT))
    return handoff


@pytest.fixture(scope="module")
def hand_off_stages(handoff):
    return handoff.hand_off_stages


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


def test_the_summary_splits_each_hand_off_into_the_servers_and_the_clients_stages(handoff):
    listed = [0.1, 0.2, 0.3, 0.1, 0.3, 0.4, 1.4]
    unlisted = [0.1, 0.1, 0.3, None, None, 0.2, 0.7]
    third = [0.1, 0.1, 0.5, 0.1, 0.1, 0.1, 1.0]
    result = handoff.summary(5, [listed, unlisted, third], flushes=9)
    assert result["acquisitions"] == 5 and result["hand_offs"] == 3
    assert result["flushes_per_acquisition"] == pytest.approx(1.8)
    # Each stage's median over the hand-offs that had it; stages 4 and 5 over two.
    assert result["stage_p50_us"] == pytest.approx([1e5, 1e5, 3e5, 1e5, 2e5, 2e5])
    # Per hand-off: server 0.6, 0.3, 0.6 and client 0.8, 0.4, 0.4 (an absent stage counts 0).
    assert result["server_p50_us"] == pytest.approx(6e5)
    assert result["client_p50_us"] == pytest.approx(4e5)
    assert result["total_p50_us"] == pytest.approx(1e6)
    assert result["total_p90_us"] == pytest.approx(1.4e6)
    assert result["total_mean_us"] == pytest.approx(1.0333333e6)


def test_a_summary_of_no_hand_off_has_no_medians(handoff):
    result = handoff.summary(1, [])
    assert result["hand_offs"] == 0 and result["flushes_per_acquisition"] is None
    assert result["stage_p50_us"] == [None] * 6
    assert result["total_p50_us"] is result["total_p90_us"] is result["total_mean_us"] is None
