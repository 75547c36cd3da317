"""Property-based tests (hypothesis) of lock-node names: parsing, queue order, the decision.

ZooKeeper names a sequential node by appending ``"%010d"`` of the parent's signed 32-bit
counter, which wraps from 2147483647 to -2147483648.  Example-based tests of the same code:
test_names.py, test_naming.py, test_kinds.py.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from zklock import NodeNaming
from zklock._kinds import EXCLUSIVE, EXCLUSIVE_MARKER, SHARED_MARKER, Decision
from zklock._names import NodeName, created_after, later_names_key, parse_node_name, queue_order

# Reproducible in CI: the same examples on every run, no example database on disk.
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MARKERS = EXCLUSIVE.queued_behind  # every marker kazoo and Curator write


class Marked(NamedTuple):
    """A kind's markers as NodeNaming.prefix reads them (kazoo's, Curator's)."""

    marker: str
    curator_marker: str


# Every kind zklock can name its nodes after: a mutex / write node, a read node.
KINDS = [Marked(EXCLUSIVE_MARKER, "lock-"), Marked(SHARED_MARKER, "__READ__")]
SUFFIX = re.compile(r"-?[0-9]{1,10}")  # [0-9] is ASCII only, unlike \d

sequences = st.one_of(
    st.integers(INT32_MIN, INT32_MAX),
    st.sampled_from([INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX - 1, INT32_MAX]),
)


def zookeeper_suffix(sequence: int) -> str:
    return f"{sequence:010d}"


def wrap32(value: int) -> int:
    """The signed 32-bit value a counter incremented to ``value`` holds."""
    return (value - INT32_MIN) % 2**32 + INT32_MIN


@st.composite
def attempt_ids(draw: st.DrawFn, naming: NodeNaming) -> str:
    if draw(st.booleans()):
        return naming.new_attempt_id()
    fresh = draw(st.uuids())
    return fresh.hex if naming is NodeNaming.KAZOO else str(fresh)


# ---------------------------------------------------------------- built names parse back
@PROPERTY
@given(
    st.sampled_from(list(NodeNaming)),
    st.sampled_from(KINDS),
    sequences,
    st.data(),
)
def test_every_built_name_parses_back(naming, kind, sequence, data):
    attempt = data.draw(attempt_ids(naming))
    name = naming.prefix(attempt, kind) + zookeeper_suffix(sequence)
    marker = kind.marker if naming is NodeNaming.KAZOO else kind.curator_marker

    parsed = parse_node_name(name, MARKERS)

    assert parsed == NodeName(name, marker, sequence)
    assert attempt in name  # how a create whose reply was lost is found again


@PROPERTY
@given(st.text(max_size=30), st.sampled_from(MARKERS), sequences)
def test_a_foreign_prefix_before_the_marker_still_parses(prefix, marker, sequence):
    name = prefix + marker + zookeeper_suffix(sequence)
    assert parse_node_name(name, MARKERS) == NodeName(name, marker, sequence)


# ---------------------------------------------------------------- foreign children
_SUFFIXES = st.one_of(
    sequences.map(zookeeper_suffix),
    st.integers(-(10**12), 10**12).map(zookeeper_suffix),  # outside the 32-bit range
    st.integers(0, 10**12).map(lambda n: f"-{n:010d}"),  # a minus sign and 10 digits
    st.text(alphabet="0123456789-+ ", max_size=13),
    st.text(alphabet=st.characters(whitelist_categories=["Nd"]), min_size=1, max_size=10),
    st.sampled_from(["\u0663", "000000000\u0663", "\uff10" * 10, "0000000001\n", "1_000", "+000000001"]),
    sequences.map(zookeeper_suffix).map(lambda s: s + "x"),
    st.text(max_size=12),
)


@st.composite
def children(draw: st.DrawFn) -> str:
    """Any child name: random text, or something-marker-something with a doubtful suffix."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.text(max_size=40))
    head = draw(st.text(max_size=12))
    marker = draw(st.sampled_from([*MARKERS, "__lock_", "lock", "__rlock", "__sem__", "__WRIT"]))
    return head + marker + draw(_SUFFIXES)


@PROPERTY
@given(children())
def test_any_child_parses_to_a_literal_suffix_or_to_none(name):
    parsed = parse_node_name(name, MARKERS)  # never raises
    if parsed is None:
        return
    assert parsed.name == name
    assert parsed.marker in MARKERS
    suffix = name.rpartition(parsed.marker)[2]
    assert SUFFIX.fullmatch(suffix), name  # ASCII digits, at most ten, ending the name
    assert int(suffix) == parsed.sequence
    assert INT32_MIN <= parsed.sequence <= INT32_MAX


@PROPERTY
@given(children())
def test_a_child_parses_iff_it_ends_in_a_marker_and_a_suffix_as_zookeeper_writes_it(name):
    def plausible(marker: str) -> bool:
        _head, found, suffix = name.rpartition(marker)
        if not found or not SUFFIX.fullmatch(suffix):
            return False
        value = int(suffix)
        return INT32_MIN <= value <= INT32_MAX and suffix == zookeeper_suffix(value)

    assert (parse_node_name(name, MARKERS) is not None) == any(plausible(m) for m in MARKERS)


@PROPERTY
@given(children(), st.lists(st.sampled_from(MARKERS), unique=True))
def test_only_the_markers_asked_for_are_recognised(name, markers):
    parsed = parse_node_name(name, markers)
    assert parsed is None or parsed.marker in markers


# ---------------------------------------------------------------- queue order across the wrap
@st.composite
def live_queues(draw: st.DrawFn) -> tuple[list[NodeName], list[int]]:
    """Contenders in creation order, all within 2**31 creations; also each one's true distance.

    The counter starts anywhere (often just before the wrap) and advances by the gaps drawn,
    wrapping at 2**31.  A gap of 0 gives two nodes the same sequence (only possible under
    different parents, but the order must stay total).
    """
    start = draw(
        st.one_of(
            st.integers(INT32_MIN, INT32_MAX),
            st.integers(INT32_MAX - 20, INT32_MAX),
            st.integers(-20, 0),
        )
    )
    gaps = draw(st.lists(st.one_of(st.integers(0, 3), st.integers(0, 2**30)), min_size=0, max_size=8))
    distances = [0]
    for gap in gaps:
        if distances[-1] + gap > INT32_MAX:  # the live window must span less than 2**31
            break
        distances.append(distances[-1] + gap)
    nodes = []
    for distance in distances:
        naming = draw(st.sampled_from(list(NodeNaming)))
        kind = draw(st.sampled_from(KINDS))
        fresh = draw(st.uuids())  # drawn, not uuid4(): a failing example replays exactly
        attempt = fresh.hex if naming is NodeNaming.KAZOO else str(fresh)
        name = naming.prefix(attempt, kind) + zookeeper_suffix(wrap32(start + distance))
        parsed = parse_node_name(name, MARKERS)
        assert parsed is not None
        nodes.append(parsed)
    return nodes, distances


def _creation_order(nodes: list[NodeName], distances: list[int]) -> list[NodeName]:
    by_distance = sorted(zip(distances, nodes), key=lambda pair: (pair[0], pair[1].name))
    return [node for _, node in by_distance]


@PROPERTY
@given(live_queues(), st.data())
def test_queue_order_is_creation_order_whatever_the_input_order_and_pivot(queue, data):
    nodes, distances = queue
    given_order = data.draw(st.permutations(nodes))
    # The pivot: none (the first node given), a member, or any sequence inside the live window.
    pivot = data.draw(
        st.one_of(
            st.none(),
            st.sampled_from([node.sequence for node in nodes]),
            st.integers(0, distances[-1]).map(lambda d: wrap32(nodes[0].sequence + d)),
        )
    )
    assert queue_order(given_order, pivot=pivot) == _creation_order(nodes, distances)


@PROPERTY
@given(live_queues(), st.data())
def test_queue_order_is_a_permutation_and_leaves_its_input_alone(queue, data):
    nodes, _ = queue
    given_order = data.draw(st.permutations(nodes))
    before = list(given_order)
    ordered = queue_order(given_order)
    assert sorted(ordered) == sorted(given_order)
    assert given_order == before


@PROPERTY
@given(sequences, st.lists(st.uuids(), min_size=1, max_size=6, unique=True), st.data())
def test_equal_sequences_are_ordered_by_name(sequence, attempts, data):
    nodes = [
        NodeName(f"{attempt.hex}{EXCLUSIVE_MARKER}{zookeeper_suffix(sequence)}", EXCLUSIVE_MARKER, sequence)
        for attempt in attempts
    ]
    given_order = data.draw(st.permutations(nodes))
    assert queue_order(given_order) == sorted(nodes, key=lambda node: node.name)


# ---------------------------------------------------------------- the exclusive decision
@PROPERTY
@given(live_queues(), st.data())
def test_only_the_first_holds_and_each_waiter_watches_its_predecessor(queue, data):
    nodes, distances = queue
    ordered = _creation_order(nodes, distances)
    index = data.draw(st.integers(0, len(ordered) - 1))

    decision = EXCLUSIVE.decide(ordered, ordered[index])

    if index == 0:
        assert decision == Decision(holds=True)
    else:
        assert decision == Decision(holds=False, watch=ordered[index - 1].name)


@PROPERTY
@given(live_queues())
def test_no_herd_each_node_is_watched_by_at_most_one_waiter(queue):
    nodes, distances = queue
    ordered = _creation_order(nodes, distances)

    decisions = [EXCLUSIVE.decide(ordered, me) for me in ordered]

    holders = [me for me, decision in zip(ordered, decisions) if decision.holds]
    assert holders == ordered[:1]
    watched = [decision.watch for decision in decisions if not decision.holds]
    assert len(watched) == len(set(watched))  # one release wakes one waiter
    assert set(watched) == {node.name for node in ordered[:-1]}


@PROPERTY
@given(live_queues(), st.lists(st.text(max_size=20), max_size=4), st.data())
def test_from_children_to_decision_the_oldest_contender_holds(queue, foreign, data):
    # The recipe's whole pipeline on one listing: parse, drop the foreign, order, decide.
    nodes, distances = queue
    foreign = [name for name in foreign if parse_node_name(name, MARKERS) is None]
    listing = data.draw(st.permutations([node.name for node in nodes] + foreign))
    me = data.draw(st.sampled_from(nodes))

    contenders = [parsed for parsed in (parse_node_name(child, MARKERS) for child in listing) if parsed]
    ordered = queue_order(contenders, pivot=me.sequence)
    decision = EXCLUSIVE.decide(ordered, me)

    oldest = _creation_order(nodes, distances)[0]
    assert decision.holds == (me == oldest)
    if not decision.holds:
        assert decision.watch in {node.name for node in nodes}


@PROPERTY
@given(live_queues(), st.data())
def test_only_nodes_created_later_are_skipped(queue, data):
    """A waiter leaves the names ``created_after`` its own unparsed: each must be a node
    created after its own, whatever the counter's wrap did."""
    nodes, distances = queue
    mine = data.draw(st.integers(0, len(nodes) - 1))
    key = later_names_key(nodes[mine])
    if key is None:
        assert nodes[mine].sequence < 0  # only a negative sequence disables the skip
        return
    for node, distance in zip(nodes, distances):
        if created_after(node.name, key):
            assert distance > distances[mine], (node, nodes[mine])


@PROPERTY
@given(children(), st.integers(0, INT32_MAX))
def test_a_child_skipped_as_created_later_parses_to_a_greater_sequence_or_not_at_all(name, own):
    """Whatever a child's name, skipping it unparsed loses no contender ahead of ours."""
    if created_after(name, f"{own:010d}"):
        parsed = parse_node_name(name, MARKERS)
        assert parsed is None or parsed.sequence > own
