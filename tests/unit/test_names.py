"""zklock._names: parsing and ordering contender node names (building: test_naming.py)."""

from __future__ import annotations

import itertools

import pytest

from zklock._names import NodeName, created_after, later_names_key, parse_node_name, queue_order

LOCK = "__lock__"
RLOCK = "__rlock__"
MARKERS = (LOCK, RLOCK)
ATTEMPT = "0123456789abcdef0123456789abcdef"


def node(sequence: int, marker: str = LOCK, attempt: str = ATTEMPT) -> NodeName:
    # The sequence suffix exactly as ZooKeeper prints it: "%010d" of a signed 32-bit counter.
    name = f"{attempt}{marker}{sequence:010d}"
    parsed = parse_node_name(name, MARKERS)
    assert parsed is not None, name
    return parsed


# ---------------------------------------------------------------- parsing
def test_parses_a_kazoo_lock_name():
    name = "5f0c2a9de1b34f8c9a7d6e5b4c3a2f10__lock__0000000007"
    parsed = parse_node_name(name, MARKERS)
    assert parsed == NodeName(name, LOCK, 7)


def test_parses_a_kazoo_read_lock_name():
    name = f"{ATTEMPT}__rlock__0000000012"
    parsed = parse_node_name(name, MARKERS)
    assert parsed is not None
    assert (parsed.marker, parsed.sequence) == (RLOCK, 12)


def test_lock_marker_does_not_match_inside_rlock():
    # "__rlock__" contains "lock__" but not "__lock__": a read node is never taken for a lock node.
    parsed = parse_node_name(f"{ATTEMPT}__rlock__0000000003", (LOCK,))
    assert parsed is None


@pytest.mark.parametrize(
    "name",
    [
        "_c_" + ATTEMPT + "-__lock__0000000001",  # a prefix before the attempt id
        "worker-7__lock__0000000001",  # no attempt id at all
        "__lock__0000000001",  # nothing before the marker
        "x__lock____lock__0000000001",  # the marker twice: the last one counts
    ],
)
def test_names_with_other_prefixes_parse(name):
    parsed = parse_node_name(name, MARKERS)
    assert parsed is not None
    assert parsed.marker == LOCK
    assert parsed.sequence == 1
    assert parsed.name == name


@pytest.mark.parametrize(
    "name",
    [
        "leases",  # a plain child
        "config",
        f"{ATTEMPT}__lock__",  # no sequence
        f"{ATTEMPT}__lock__abc",  # not a number
        f"{ATTEMPT}__lock__0000000001x",  # trailing garbage
        f"{ATTEMPT}__lock__00000000001",  # 11 digits: more than ZooKeeper writes
        f"{ATTEMPT}__sem__0000000001",  # another marker than those asked for
        f"{ATTEMPT}__lock__2147483648",  # past the signed 32-bit range
        f"{ATTEMPT}__lock__--00000001",
        "",
        # Not as ZooKeeper writes a sequence ("%010d"): other children that end alike.
        "clock-1",
        "deadlock-7",
        "config-lock-42",
        "unlock-2024",
        "backup__lock__3",
        f"{ATTEMPT}__lock__000000001",  # nine digits
        f"{ATTEMPT}__lock__-0000000001",  # a sign and ten digits for a small negative
    ],
)
def test_non_lock_children_are_ignored(name):
    assert parse_node_name(name, MARKERS) is None


def test_no_markers_means_nothing_parses():
    assert parse_node_name(f"{ATTEMPT}__lock__0000000001", ()) is None


@pytest.mark.parametrize(
    "suffix, sequence",
    [
        ("0000000000", 0),
        ("0000000007", 7),
        ("2147483647", 2**31 - 1),
        ("-000000001", -1),  # "%010d" of -1
        ("-000000002", -2),
        ("-2147483647", -(2**31) + 1),
        ("-2147483648", -(2**31)),  # the counter right after it wraps
    ],
)
def test_sequences_including_negative_ones(suffix, sequence):
    parsed = parse_node_name(f"{ATTEMPT}__lock__{suffix}", MARKERS)
    assert parsed is not None
    assert parsed.sequence == sequence


def test_printf_format_round_trips_over_the_whole_range():
    for sequence in (-(2**31), -(2**31) + 1, -1000, -1, 0, 1, 999, 2**31 - 2, 2**31 - 1):
        assert node(sequence).sequence == sequence


# ---------------------------------------------------------------- ordering
def test_empty_queue():
    assert queue_order([]) == []


def test_orders_by_integer_not_by_text():
    nodes = [node(10), node(9), node(100), node(1)]
    assert [n.sequence for n in queue_order(nodes)] == [1, 9, 10, 100]


def test_order_ignores_the_attempt_id_prefix():
    # kazoo compares whole names as text, so a random prefix can jump the queue; zklock must not.
    late = node(5, attempt="0" * 32)
    early = node(4, attempt="f" * 32)
    assert queue_order([late, early]) == [early, late]


def test_mixed_markers_order_by_sequence_only():
    nodes = [node(3, RLOCK), node(1, LOCK), node(2, RLOCK)]
    assert [(n.marker, n.sequence) for n in queue_order(nodes)] == [(LOCK, 1), (RLOCK, 2), (RLOCK, 3)]


WRAP = [2147483646, 2147483647, -2147483648, -2147483647]  # creation order across the wrap


@pytest.mark.parametrize("pivot", [None, *WRAP])
def test_wrap_keeps_creation_order_whatever_the_pivot(pivot):
    created = [node(s) for s in WRAP]
    for shuffled in itertools.permutations(created):
        assert queue_order(list(shuffled), pivot=pivot) == created


@pytest.mark.parametrize("first", range(4))
def test_default_pivot_is_any_member(first):
    created = [node(s) for s in WRAP]
    given = created[first:] + created[:first]
    assert queue_order(given) == created


def test_wide_window_across_the_wrap():
    # Live nodes spread over almost half the counter, straddling the wrap.
    created = [node(s) for s in (2**31 - 2**30, 2**31 - 1, -(2**31), -(2**31) + 2**30 - 2)]
    for pivot in (n.sequence for n in created):
        assert queue_order(list(reversed(created)), pivot=pivot) == created


def test_wrap_from_minus_one_to_zero_is_ordinary():
    created = [node(s) for s in (-2, -1, 0, 1)]
    assert queue_order(list(reversed(created))) == created


def test_equal_sequences_fall_back_to_name():
    # Cannot happen under one parent, but the order must still be total and stable.
    a, b = node(7, attempt="a" * 32), node(7, attempt="b" * 32)
    assert queue_order([b, a]) == [a, b]


@pytest.mark.parametrize("suffix", ["\u0660" * 9 + "\u0667", "00000000\uff11"])
def test_only_ascii_digits_are_a_sequence(suffix):
    # ZooKeeper writes ASCII digits only; a child named otherwise is not a contender.
    assert parse_node_name(f"{ATTEMPT}__lock__{suffix}", MARKERS) is None


@pytest.mark.parametrize(
    ("sequence", "key"),
    [(42, "0000000042"), (2**31 - 1, "2147483647"), (0, "0000000000"), (-1, None), (-(2**31), None)],
)
def test_later_names_key(sequence, key):
    assert later_names_key(NodeName("n", "__lock__", sequence)) == key


@pytest.mark.parametrize(
    ("name", "later"),
    [
        ("y__lock__0000000101", True),
        ("_c_0f8fad5b-d9cb-469f-a165-70867728950e-lock-0000000101", True),  # the marker's "-"
        ("_c_0f8fad5b-d9cb-469f-a165-70867728950e-lock-0000000100", False),
        ("_c_0f8fad5b-d9cb-469f-a165-70867728950e-lock--1000000000", False),  # negative
        ("_c_0f8fad5b-d9cb-469f-a165-70867728950e-lock--000000007", False),
        ("y__rlock__-1000000000", False),  # a "-" after another marker is a sign
        ("y__lock__0000000100", False),  # our own sequence
        ("y__lock__0000000099", False),
        ("y__lock__-000000007", False),  # wrapped: parsed, placed by queue_order
        ("y__lock__-1000000000", False),  # 10 digits, but negative
        ("y__lock__-2147483648", False),
        ("lease_holder", False),
        ("9", True),  # shorter than a ZooKeeper suffix: not a contender either way
    ],
)
def test_created_after(name, later):
    assert created_after(name, "0000000100") is later
