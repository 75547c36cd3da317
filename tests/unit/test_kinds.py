"""zklock._kinds: the pure decision each contender makes on the sorted queue."""

from __future__ import annotations

import dataclasses

import pytest

from zklock._kinds import EXCLUSIVE, EXCLUSIVE_MARKER, SHARED_MARKER, Decision, ExclusiveKind, LockKind
from zklock._names import NodeName, parse_node_name, queue_order


def queue(*sequences: int, marker: str = EXCLUSIVE_MARKER) -> list[NodeName]:
    nodes = []
    for i, sequence in enumerate(sequences):
        parsed = parse_node_name(f"{i:032x}{marker}{sequence:010d}", (marker,))
        assert parsed is not None
        nodes.append(parsed)
    return queue_order(nodes)


def test_exclusive_defaults_match_kazoo():
    assert EXCLUSIVE.marker == "__lock__"
    assert EXCLUSIVE.curator_marker == "lock-"  # Curator's InterProcessMutex
    # An exclusive lock queues behind kazoo's and Curator's write and read nodes alike.
    assert set(EXCLUSIVE.queued_behind) == {
        EXCLUSIVE_MARKER, SHARED_MARKER, "lock-", "__WRIT__", "__READ__"
    }
    assert EXCLUSIVE_MARKER in EXCLUSIVE.queued_behind


def test_exclusive_kind_satisfies_the_protocol():
    kind: LockKind = EXCLUSIVE
    assert kind.decide(queue(1), queue(1)[0]) == Decision(holds=True)


def test_first_in_queue_holds():
    q = queue(4, 5, 6)
    assert EXCLUSIVE.decide(q, q[0]) == Decision(holds=True, watch=None)


def test_alone_holds():
    q = queue(0)
    assert EXCLUSIVE.decide(q, q[0]).holds


@pytest.mark.parametrize("position", [1, 2, 3, 4])
def test_each_waiter_watches_its_immediate_predecessor(position):
    q = queue(10, 11, 13, 20, 21)
    decision = EXCLUSIVE.decide(q, q[position])
    assert decision == Decision(holds=False, watch=q[position - 1].name)


def test_no_herd_every_node_is_watched_by_at_most_one_waiter():
    q = queue(*range(50))
    watched = [EXCLUSIVE.decide(q, me).watch for me in q[1:]]
    assert len(watched) == len(set(watched)) == 49
    assert q[-1].name not in watched  # the last in line is watched by nobody


def test_decision_follows_queue_order_not_listing_order():
    # Across the 32-bit wrap: -2147483648 was created after 2147483647.
    q = queue(-(2**31), 2**31 - 1)
    assert [n.sequence for n in q] == [2**31 - 1, -(2**31)]
    assert EXCLUSIVE.decide(q, q[0]).holds
    assert EXCLUSIVE.decide(q, q[1]) == Decision(holds=False, watch=q[0].name)


def test_a_read_node_ahead_blocks_an_exclusive_lock():
    reader = parse_node_name(f"{'a' * 32}{SHARED_MARKER}0000000001", EXCLUSIVE.queued_behind)
    writer = parse_node_name(f"{'b' * 32}{EXCLUSIVE_MARKER}0000000002", EXCLUSIVE.queued_behind)
    assert reader is not None and writer is not None
    q = queue_order([writer, reader])
    assert EXCLUSIVE.decide(q, writer) == Decision(holds=False, watch=reader.name)


def test_me_must_be_in_the_queue():
    q = queue(1, 2)
    stranger = queue(3)[0]
    with pytest.raises(ValueError):
        EXCLUSIVE.decide(q, stranger)


def test_kinds_are_immutable_values():
    with pytest.raises(dataclasses.FrozenInstanceError):
        EXCLUSIVE.marker = "__other__"  # type: ignore[misc]
    assert ExclusiveKind() == EXCLUSIVE
    with pytest.raises(dataclasses.FrozenInstanceError):
        Decision(holds=True).holds = False  # type: ignore[misc]


def test_a_kind_that_does_not_queue_behind_its_own_nodes_is_refused():
    # Such a kind would never find its own node in a listing: every try would queue again,
    # leaving one node behind per try.
    from kazoo.client import KazooClient

    from zklock._recipe import LockRecipe
    from zklock.errors import UsageError
    from zklock.retry import DEFAULT_RETRY

    readers_only = dataclasses.replace(EXCLUSIVE, queued_behind=(SHARED_MARKER,))
    client = KazooClient(hosts="127.0.0.1:1")  # never started: nothing is sent
    with pytest.raises(UsageError, match="must queue behind its own nodes"):
        LockRecipe(client, "/lock", readers_only, "me", DEFAULT_RETRY)
    LockRecipe(client, "/lock", EXCLUSIVE, "me", DEFAULT_RETRY)
