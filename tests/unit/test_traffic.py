"""KazooTraffic reads kazoo's log lines: fed here the records kazoo's connection logs."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from kazoo.protocol.serialization import Create2, Exists, GetChildren, Ping

from zklock.testing import KazooTraffic


def record(message: str, *args: object, thread: int = 1) -> logging.LogRecord:
    entry = logging.LogRecord("kazoo.client", logging.DEBUG, __file__, 0, message, args, None)
    entry.thread = thread
    return entry


def test_requests_replies_errors_and_events_in_order_without_pings():
    traffic = KazooTraffic()
    create = Create2("/l/n", b"", None, 3)
    for entry in (
        record("Sending request(xid=%s): %s", 1, create),
        record("Sending request(xid=%s): %s", 2, GetChildren("/l", None)),
        record("Sending request(xid=%s): %s", -2, Ping),
        record("Received response(xid=%s): %r", 1, ("/l/n", None)),
        record("Received error(xid=%s) %r", 2, "NoNodeError()"),
        record("Received EVENT: %s", SimpleNamespace(type=2, path="/l/n")),
        record("Connecting to %s(%s):%s", "127.0.0.1", "127.0.0.1", 2181),  # not traffic
    ):
        traffic.handle(entry)
    assert traffic.seen == [("send", "Create2"), ("send", "GetChildren"), ("reply", "Create2"),
                            ("error", "GetChildren"), ("event", "deleted")]
    assert traffic.sent() == ["Create2", "GetChildren"]
    assert traffic.requests() == {"Create2": 1, "GetChildren": 1}
    assert traffic.events() == 1
    assert traffic.take() and traffic.seen == []


def test_replies_are_matched_per_connection_thread():
    # Two clients on one logger both number their requests from 1.
    traffic = KazooTraffic()
    traffic.handle(record("Sending request(xid=%s): %s", 1, GetChildren("/a", None), thread=10))
    traffic.handle(record("Sending request(xid=%s): %s", 1, Create2("/b", b"", None, 3), thread=20))
    traffic.handle(record("Received response(xid=%s): %r", 1, [], thread=10))
    traffic.handle(record("Received response(xid=%s): %r", 1, ("/b", None), thread=20))
    assert [name for what, name in traffic.seen if what == "reply"] == ["GetChildren", "Create2"]


def test_recording_sets_the_logger_up_and_restores_it():
    logger = logging.getLogger("zklock-test-traffic")
    logger.setLevel(logging.WARNING)
    with KazooTraffic.recording(logger) as traffic:
        assert logger.level == logging.DEBUG and not logger.propagate
        logger.debug("Sending request(xid=%s): %s", 1, GetChildren("/a", None))
    logger.debug("Sending request(xid=%s): %s", 2, GetChildren("/a", None))
    assert traffic.sent() == ["GetChildren"]
    assert logger.level == logging.WARNING and logger.propagate
    assert traffic not in logger.handlers


def test_an_exists_finding_no_node_gets_its_reply_before_the_next_one():
    # kazoo logs no line for that answer; the connection's next reply settles it.
    traffic = KazooTraffic()
    for entry in (
        record("Sending request(xid=%s): %s", 1, Exists("/l/gone", None)),
        record("Sending request(xid=%s): %s", 2, GetChildren("/l", None)),
        record("Received response(xid=%s): %r", 2, []),
        record("Sending request(xid=%s): %s", 3, Exists("/l/gone", None)),
        record("Sending request(xid=%s): %s", 4, GetChildren("/m", None)),
        record("Received error(xid=%s) %r", 4, "NoNodeError()"),
    ):
        traffic.handle(entry)
    assert traffic.seen == [
        ("send", "Exists"), ("send", "GetChildren"), ("reply", "Exists"), ("reply", "GetChildren"),
        ("send", "Exists"), ("send", "GetChildren"), ("reply", "Exists"), ("error", "GetChildren"),
    ]
    assert traffic._sent == {}  # nothing left waiting for a line that will never come
