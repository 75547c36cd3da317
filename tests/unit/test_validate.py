"""zklock._validate: lock paths, identifiers and timeouts are checked before any request."""

from __future__ import annotations

import math
import re

import pytest

from zklock._validate import (
    MAX_IDENTIFIER_BYTES,
    check_identifier,
    check_lock_path,
    check_timeout,
)
from zklock.errors import InvalidIdentifier, InvalidPath, InvalidTimeout, UsageError


# ---------------------------------------------------------------- lock paths
@pytest.mark.parametrize(
    "path",
    [
        "/a",
        "/locks/report",
        "/zookeeperish",  # only /zookeeper itself and below are reserved
        "/app/zookeeper",
        "/a.b/..c/...",  # dots inside a name, or three of them, are fine
        "/with space/and-dash_under",
        "/ünïcödé/锁",
        "/" + "x" * 1000,
    ],
)
def test_good_paths_are_returned_unchanged(path):
    assert check_lock_path(path) == path


@pytest.mark.parametrize(
    "path, why",
    [
        ("locks/a", "relative"),
        ("", "empty"),
        ("/", "root"),
        ("/locks/", "trailing slash"),
        ("/locks//a", "double slash"),
        ("//locks", "double slash at the start"),
        ("/locks/./a", "dot"),
        ("/locks/../a", "dot-dot"),
        ("/.", "dot"),
        ("/..", "dot-dot"),
        ("/zookeeper", "reserved"),
        ("/zookeeper/quota", "under reserved"),
        ("/zookeeper/config/x", "under reserved"),
        ("/locks/a\x00b", "NUL"),
        ("/locks/a\nb", "newline"),
        ("/locks/a\tb", "tab"),
        ("/locks/a\x7fb", "DEL"),
        ("/locks/a\x85b", "C1 control"),
        ("/locks/a\ud800b", "surrogate"),
        ("/locks/a\ue000b", "private use"),
        ("/locks/a\ufff0b", "specials block"),
        ("/" + "x" * 1024, "too long"),
    ],
)
def test_bad_paths_are_refused(path, why):
    with pytest.raises(InvalidPath):
        check_lock_path(path)


@pytest.mark.parametrize("path", [None, b"/locks/a", 42, ["/a"], object()])
def test_a_path_must_be_a_str(path):
    with pytest.raises(InvalidPath, match="must be a str"):
        check_lock_path(path)


def test_invalid_path_is_a_usage_error_and_a_value_error():
    with pytest.raises(ValueError):
        check_lock_path("relative")
    with pytest.raises(UsageError):
        check_lock_path("relative")


# ---------------------------------------------------------------- identifiers
@pytest.mark.parametrize(
    "identifier",
    ["", "host:1234", "worker 7", "ünïcödé 锁 🔒", "x" * MAX_IDENTIFIER_BYTES],
)
def test_good_identifiers(identifier):
    assert check_identifier(identifier) == identifier


@pytest.mark.parametrize("identifier", [None, b"host:1", 7, 1.5, ("a",)])
def test_an_identifier_must_be_a_str(identifier):
    with pytest.raises(InvalidIdentifier, match="must be a str"):
        check_identifier(identifier)


@pytest.mark.parametrize("identifier", ["a\x00b", "line\n", "\r", "tab\there", "del\x7f", "c1\x9b"])
def test_identifiers_with_control_characters_are_refused(identifier):
    with pytest.raises(InvalidIdentifier, match="control"):
        check_identifier(identifier)


def test_identifier_limit_counts_utf8_bytes_not_characters():
    assert check_identifier("é" * (MAX_IDENTIFIER_BYTES // 2))  # exactly at the limit
    with pytest.raises(InvalidIdentifier, match="bytes"):
        check_identifier("é" * (MAX_IDENTIFIER_BYTES // 2 + 1))  # fewer characters, too many bytes
    with pytest.raises(InvalidIdentifier, match="bytes"):
        check_identifier("x" * (MAX_IDENTIFIER_BYTES + 1))


# ---------------------------------------------------------------- timeouts (as threading.Lock)
@pytest.mark.parametrize("timeout", [None, -1, -1.0, math.inf])
def test_no_limit(timeout):
    assert check_timeout(timeout) is None


@pytest.mark.parametrize("timeout, seconds", [(0, 0.0), (0.0, 0.0), (1, 1.0), (2.5, 2.5), (1e-9, 1e-9)])
def test_finite_timeouts_become_floats(timeout, seconds):
    result = check_timeout(timeout)
    assert result == seconds
    assert type(result) is float


@pytest.mark.parametrize("timeout", [-0.5, -2, -1.000001, -math.inf])
def test_negative_timeouts_other_than_minus_one_are_refused(timeout):
    with pytest.raises(InvalidTimeout, match=">= 0"):
        check_timeout(timeout)


def test_nan_is_refused():
    with pytest.raises(InvalidTimeout, match="NaN"):
        check_timeout(math.nan)


@pytest.mark.parametrize("timeout", [True, False, "1", b"1", [1], object()])
def test_a_timeout_must_be_a_number(timeout):
    with pytest.raises(InvalidTimeout, match="number"):
        check_timeout(timeout)


@pytest.mark.parametrize("timeout", [0, 0.0, 1, 2.5, math.inf])
def test_non_blocking_refuses_a_timeout(timeout):
    with pytest.raises(InvalidTimeout, match="non-blocking"):
        check_timeout(timeout, blocking=False)


@pytest.mark.parametrize("timeout", [None, -1])
def test_non_blocking_accepts_no_timeout(timeout):
    assert check_timeout(timeout, blocking=False) is None


def test_same_rules_as_threading_lock():
    # Each refusal here mirrors a ValueError from the standard library's lock.
    import threading

    lock = threading.Lock()
    for blocking, timeout in [(True, -2), (False, 1), (False, 0)]:
        with pytest.raises(ValueError):
            lock.acquire(blocking, timeout)
        with pytest.raises(ValueError):
            check_timeout(timeout, blocking)
    for blocking, timeout in [(True, -1), (False, -1), (True, 0), (True, 0.01)]:
        assert lock.acquire(blocking, timeout)
        lock.release()
        check_timeout(timeout, blocking)


def test_invalid_timeout_is_a_value_error():
    with pytest.raises(ValueError):
        check_timeout(-3)


@pytest.mark.parametrize(
    "path, says",
    [
        ("locks/a", "must be absolute"),
        ("/locks/", "must not end with '/'"),
        ("/locks//a", "empty component"),
        ("/locks/../a", "'.' or '..'"),
        ("/locks/a\nb", "control or reserved character"),
        ("/zookeeper/quota", "belong to ZooKeeper itself"),
    ],
)
def test_a_refusal_says_what_is_wrong_with_the_path(path, says):
    # "/locks/" also has an empty last component: the message must name the slash the user
    # typed, not the component it leaves.
    with pytest.raises(InvalidPath, match=re.escape(says)):
        check_lock_path(path)
