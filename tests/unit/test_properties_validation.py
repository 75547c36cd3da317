"""Property-based tests (hypothesis) of zklock._validate: lock paths, identifiers, timeouts.

The lock-path properties compare ``check_lock_path`` with an independent model of the rules the
ZooKeeper server applies to every path (``org.apache.zookeeper.common.PathUtils.validatePath``),
plus zklock's own stricter policy (no root, at most ``MAX_PATH_CHARS`` characters, nothing
under ``/zookeeper``).  Example-based tests of the same functions: test_validate.py.
"""

from __future__ import annotations

import math
import threading
import unicodedata
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zklock import NodeNaming
from zklock._kinds import CURATOR_READ_MARKER, EXCLUSIVE, SHARED_MARKER
from zklock._validate import (
    MAX_IDENTIFIER_BYTES,
    MAX_PATH_CHARS,
    check_identifier,
    check_lock_path,
    check_timeout,
)
from zklock.errors import InvalidIdentifier, InvalidPath, InvalidTimeout

# Reproducible in CI: the same examples on every run, no example database on disk.
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)


# ---------------------------------------------------------------- the ZooKeeper model
def _utf16_units(text: str) -> list[int]:
    # The server holds paths as Java strings: UTF-16 code units, so a character beyond the
    # BMP is two surrogate units there.
    raw = text.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(raw[i : i + 2], "little") for i in range(0, len(raw), 2)]


def _unit_refused_by_zookeeper(unit: int) -> bool:
    return (
        unit <= 0x1F  # NUL and the C0 controls
        or 0x7F <= unit <= 0x9F  # DEL and the C1 controls
        or 0xD800 <= unit <= 0xF8FF  # surrogates and the private use area
        or 0xFFF0 <= unit <= 0xFFFF  # the specials block
    )


def zookeeper_accepts(path: str) -> bool:
    """Would a ZooKeeper server accept ``path`` as a znode path (PathUtils.validatePath)?"""
    if not path.startswith("/"):
        return False
    if path == "/":
        return True
    if path.endswith("/"):
        return False
    if any(_unit_refused_by_zookeeper(unit) for unit in _utf16_units(path)):
        return False
    return all(part not in ("", ".", "..") for part in path[1:].split("/"))


def zklock_policy_allows(path: str) -> bool:
    """zklock's extra rules on a lock path, on top of ZooKeeper's."""
    reserved = path == "/zookeeper" or path.startswith("/zookeeper/")
    return path != "/" and len(path) <= MAX_PATH_CHARS and not reserved


def test_the_model_agrees_with_known_server_answers():
    # PathUtils' rules on a few paths; the create() of the first three and of both characters
    # beyond the BMP was also tried on a ZooKeeper 3.8 server, which answered the same.
    for path in ("/plain", "/\u00e9t\u00e9", "/\uffef", "/a.b/...", "/x/..y"):
        assert zookeeper_accepts(path), path
    for path in ("/\U0001f512", "/a\U00010000b", "/a/./b", "/a/..", "//a", "/a/", "a", "/a\x00"):
        assert not zookeeper_accepts(path), path


# ---------------------------------------------------------------- path strategies
# Any code point: beyond U+FFFF a character is two UTF-16 surrogates, which ZooKeeper refuses.
_BMP = st.characters()
_TRICKY_CHARS = st.sampled_from(
    [
        "/",
        ".",
        "\x00",
        "\x1f",
        " ",
        "\x7f",
        "\x9f",
        "\xa0",
        "\ud7ff",
        "\ud800",
        "\udfff",
        "\ue000",
        "\uf8ff",
        "\uf900",
        "\uffef",
        "\ufff0",
        "\ufffd",
        "\uffff",
        "z",
    ]
)
_COMPONENTS = st.one_of(
    st.sampled_from(["", ".", "..", "...", ".a", "a.", "zookeeper", "locks", "job-1", "\u9501"]),
    st.text(alphabet=st.one_of(_BMP, _TRICKY_CHARS), max_size=8),
    st.text(alphabet="abc.", min_size=1, max_size=4),
)


@st.composite
def paths(draw: st.DrawFn) -> str:
    """Candidate lock paths: mostly near-misses of valid ones, sometimes any BMP text."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(alphabet=st.one_of(_BMP, _TRICKY_CHARS), max_size=20))
    parts = draw(st.lists(_COMPONENTS, min_size=1, max_size=6))
    leading = draw(st.sampled_from(["/", "/", "/", "", "//"]))
    trailing = draw(st.sampled_from(["", "", "", "/"]))
    path = leading + "/".join(parts) + trailing
    if draw(st.integers(0, 19)) == 0:  # around the length limit
        path += "x" * draw(st.integers(MAX_PATH_CHARS - len(path) - 2, MAX_PATH_CHARS - len(path) + 2))
    return path


_VALID_COMPONENT = st.text(
    alphabet=st.characters(blacklist_characters="/"), min_size=1, max_size=10
).filter(lambda part: zookeeper_accepts("/" + part))


@st.composite
def valid_paths(draw: st.DrawFn) -> str:
    """Lock paths ZooKeeper and zklock both accept."""
    parts = draw(st.lists(_VALID_COMPONENT, min_size=1, max_size=5))
    path = "/" + "/".join(parts)
    if not zklock_policy_allows(path):
        path = "/locks" + path[: MAX_PATH_CHARS - 20]
    assert zookeeper_accepts(path) and zklock_policy_allows(path)
    return path


def _outcome(path: object) -> str | InvalidPath:
    # InvalidPath is the one exception allowed: anything else propagates and fails the test.
    try:
        return check_lock_path(path)
    except InvalidPath as refused:
        return refused


# ---------------------------------------------------------------- lock paths
@PROPERTY
@given(paths())
def test_lock_path_accepted_iff_zookeeper_and_policy_accept(path):
    result = _outcome(path)
    expected = zookeeper_accepts(path) and zklock_policy_allows(path)
    if expected:
        assert result is path  # returned as given, never normalised
    else:
        assert isinstance(result, InvalidPath), path


@PROPERTY
@given(valid_paths())
def test_lock_path_check_is_idempotent(path):
    once = check_lock_path(path)
    assert check_lock_path(once) is once is path


@PROPERTY
@given(
    valid_paths(),
    st.sampled_from(list(NodeNaming)),
    # The exclusive kind, and a read lock's markers: the longest kazoo writes ("__rlock__").
    st.sampled_from([EXCLUSIVE, SimpleNamespace(marker=SHARED_MARKER, curator_marker=CURATOR_READ_MARKER)]),
    st.integers(-(2**31), 2**31 - 1),
)
def test_contender_nodes_under_an_accepted_path_are_valid_znodes(path, naming, kind, sequence):
    prefix = naming.prefix(naming.new_attempt_id(), kind)
    # A sequential create is checked as the requested name plus one digit...
    assert zookeeper_accepts(f"{path}/{prefix}1")
    # ...and the node ZooKeeper makes is a valid path too.
    child = f"{path}/{prefix}{sequence:010d}"
    assert zookeeper_accepts(child)
    if len(child) <= MAX_PATH_CHARS:
        assert check_lock_path(child) is child


_NOT_TEXT = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=10),
    st.lists(st.text(max_size=3), max_size=2),
    st.tuples(st.text(max_size=3)),
)


@PROPERTY
@given(_NOT_TEXT)
def test_a_lock_path_that_is_not_a_str_is_refused(path):
    with pytest.raises(InvalidPath, match="must be a str"):
        check_lock_path(path)


# ---------------------------------------------------------------- identifiers
@st.composite
def identifiers(draw: st.DrawFn) -> str:
    """Text of any length up to past the byte limit, with a few control characters."""
    # Lone surrogates are covered by test_lone_surrogates_are_refused_as_identifiers.
    printable = st.characters(blacklist_categories=["Cc", "Cs"])
    unit = draw(st.text(alphabet=printable, min_size=1, max_size=4))
    count = draw(st.one_of(st.integers(0, 3), st.integers(0, MAX_IDENTIFIER_BYTES // 2 + 10)))
    tail = draw(st.text(alphabet=printable, max_size=8))
    if draw(st.integers(0, 4)) == 0:
        tail += draw(st.sampled_from(["\x00", "\n", "\t", "\x1b", "\x7f", "\x85", "\x9f"]))
    return unit * count + tail


def _has_control_character(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


@PROPERTY
@given(identifiers())
def test_identifier_accepted_iff_printable_and_within_the_byte_limit(identifier):
    try:
        result = check_identifier(identifier)
    except InvalidIdentifier:
        encoded = identifier.encode("utf-8")
        assert _has_control_character(identifier) or len(encoded) > MAX_IDENTIFIER_BYTES
        return
    assert result is identifier
    encoded = identifier.encode("utf-8")  # stored as the node's data, as UTF-8
    assert len(encoded) <= MAX_IDENTIFIER_BYTES
    assert encoded.decode("utf-8") == identifier
    assert not _has_control_character(identifier)


@PROPERTY
@given(st.text(alphabet=st.characters(blacklist_categories=["Cc", "Cs"]), max_size=40))
def test_short_printable_identifiers_are_all_accepted(identifier):
    assert check_identifier(identifier) is identifier


@PROPERTY
@given(_NOT_TEXT)
def test_an_identifier_that_is_not_a_str_is_refused(identifier):
    with pytest.raises(InvalidIdentifier, match="must be a str"):
        check_identifier(identifier)


# ---------------------------------------------------------------- timeouts
_NUMBERS = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-1, -1.0, 0, 0.0, -0.0, math.inf, -math.inf, math.nan]),
)
_NOT_NUMBERS = st.one_of(
    st.booleans(),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=1),
    st.builds(object),
    st.just(1j),
)


@PROPERTY
@given(st.one_of(st.none(), _NUMBERS, _NOT_NUMBERS), st.booleans())
def test_timeout_semantics(timeout, blocking):
    try:
        result = check_timeout(timeout, blocking)
    except InvalidTimeout:
        refused = True
    else:
        refused = False
        assert result is None or (type(result) is float and math.isfinite(result) and result >= 0)

    no_limit = timeout is None or (not isinstance(timeout, bool) and timeout == -1)
    if no_limit:
        assert not refused and result is None  # None and -1 mean "no limit", blocking or not
    elif isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        assert refused  # True/False, text and the rest are not numbers of seconds
    elif math.isnan(timeout) or timeout < 0 or not blocking:
        assert refused  # NaN, other negatives, and any timeout on a non-blocking call
    elif math.isinf(timeout):
        assert result is None
    elif timeout > threading.TIMEOUT_MAX:
        assert refused  # threading.Lock refuses these as well (OverflowError)
    else:
        assert result == timeout


@PROPERTY
@given(st.one_of(st.integers(-5, 5), st.floats(-5.0, 5.0)), st.booleans())
def test_timeout_refused_exactly_when_threading_lock_refuses(timeout, blocking):
    # threading.Lock.acquire is the model the API follows; an unheld lock answers at once.
    lock = threading.Lock()
    try:
        acquired = lock.acquire(blocking, timeout)
    except ValueError:
        with pytest.raises(InvalidTimeout):
            check_timeout(timeout, blocking)
    else:
        assert acquired
        lock.release()
        check_timeout(timeout, blocking)


@PROPERTY
@given(st.lists(st.text(min_size=1, max_size=6).filter(lambda p: "/" not in p), min_size=1, max_size=3))
def test_any_unicode_lock_path_is_accepted_iff_zookeeper_accepts_it(parts):
    path = "/" + "/".join(parts)
    result = _outcome(path)
    if zookeeper_accepts(path) and zklock_policy_allows(path):
        assert result is path
    else:
        assert isinstance(result, InvalidPath), path


@PROPERTY
@given(st.text(alphabet=st.characters(blacklist_categories=["Cc"]), max_size=10))
def test_accepted_identifiers_encode_to_utf8(identifier):
    try:
        check_identifier(identifier)
    except InvalidIdentifier:
        return
    assert len(identifier.encode("utf-8")) <= MAX_IDENTIFIER_BYTES


@PROPERTY
@given(st.text(max_size=4), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), st.text(max_size=4))
def test_lone_surrogates_are_refused_as_identifiers(before, surrogate, after):
    with pytest.raises(InvalidIdentifier):
        check_identifier(before + surrogate + after)


@PROPERTY
@given(st.one_of(st.integers(), st.floats(allow_nan=False)))
def test_any_number_gives_a_timeout_or_invalid_timeout_never_another_error(timeout):
    try:
        seconds = check_timeout(timeout)
    except InvalidTimeout:
        assert timeout < 0 or timeout > threading.TIMEOUT_MAX
        return
    # What is accepted can be waited on: threading accepts it too.
    assert seconds is None or 0 <= seconds <= threading.TIMEOUT_MAX
