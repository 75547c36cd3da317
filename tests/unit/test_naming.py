"""zklock.NodeNaming: the names zklock gives its own nodes, for kazoo or for Curator."""

from __future__ import annotations

import re

import pytest

from zklock import NodeNaming
from zklock._kinds import EXCLUSIVE
from zklock._names import NodeName, parse_node_name, queue_order

UUID36 = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def test_kazoo_attempt_ids_are_fresh_32_hex_digits():
    ids = {NodeNaming.KAZOO.new_attempt_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", attempt) for attempt in ids)


def test_curator_attempt_ids_are_fresh_dashed_uuids():
    ids = {NodeNaming.CURATOR.new_attempt_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(UUID36, attempt) for attempt in ids)


def test_kazoo_prefix_is_attempt_then_marker():
    attempt = NodeNaming.KAZOO.new_attempt_id()
    assert NodeNaming.KAZOO.prefix(attempt, EXCLUSIVE) == f"{attempt}__lock__"


def test_curator_prefix_is_a_protected_mutex_name():
    # Curator's InterProcessMutex: "_c_" + UUID + "-" (protection), then the node name "lock-".
    attempt = NodeNaming.CURATOR.new_attempt_id()
    prefix = NodeNaming.CURATOR.prefix(attempt, EXCLUSIVE)
    assert prefix == f"_c_{attempt}-lock-"
    assert re.fullmatch(rf"_c_{UUID36}-lock-", prefix)


@pytest.mark.parametrize("naming", list(NodeNaming))
@pytest.mark.parametrize("suffix, sequence", [("0000000042", 42), ("-000000007", -7)])
def test_a_built_name_parses_back_and_holds_its_attempt_id(naming, suffix, sequence):
    attempt = naming.new_attempt_id()
    name = naming.prefix(attempt, EXCLUSIVE) + suffix
    parsed = parse_node_name(name, EXCLUSIVE.queued_behind)
    assert parsed is not None
    assert (parsed.name, parsed.sequence) == (name, sequence)
    assert attempt in name  # how a create whose reply was lost is found again


def test_kazoo_curator_and_zklock_names_queue_together_by_sequence():
    kazoo_name = "5f0c2a9de1b34f8c9a7d6e5b4c3a2f10__lock__0000000003"
    curator_name = "_c_1b4e28ba-2fa1-11d2-883f-0016d3cca427-lock-0000000001"
    curator_write = "_c_1b4e28ba-2fa1-11d2-883f-0016d3cca428-__WRIT__0000000004"
    zklock_curator = NodeNaming.CURATOR.prefix(NodeNaming.CURATOR.new_attempt_id(), EXCLUSIVE)
    children = [kazoo_name, f"{zklock_curator}0000000002", curator_write, "leases"]
    children.append(curator_name)
    parsed = [p for p in (parse_node_name(c, EXCLUSIVE.queued_behind) for c in children) if p]
    assert [node.sequence for node in queue_order(parsed)] == [1, 2, 3, 4]
    assert all(isinstance(node, NodeName) for node in parsed)


def test_lock_dash_marker_does_not_match_kazoo_names():
    # "__lock__" holds "lock" but never "lock-": a kazoo name is parsed by its own marker.
    parsed = parse_node_name("5f0c2a9de1b34f8c9a7d6e5b4c3a2f10__lock__0000000003", ("lock-",))
    assert parsed is None
