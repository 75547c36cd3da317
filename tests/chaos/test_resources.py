"""The chaos suite's resources, alone: the store fences, the counter loses updates when raced."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from .eventlog import EventLog, read_jsonl
from .resources import FencedStore, UnsafeCounter


def test_the_store_refuses_lower_tokens_and_accepts_the_current_one(tmp_path: Path) -> None:
    store = FencedStore(tmp_path / "store")
    store.create()
    assert store.write(10, 0, "begin")
    assert store.write(10, 0, "commit")  # the same holder again
    assert store.write(12, 1, "begin")
    assert not store.write(11, 2, "commit")  # stale
    records = read_jsonl(store.log_path)
    assert [(r["token"], r["accepted"], r["highest"]) for r in records] == [
        (10, True, 0), (10, True, 10), (12, True, 10), (11, False, 12)
    ]
    assert all(r["start"] <= r["end"] for r in records)


def _offer(path: str, token: int) -> None:
    FencedStore(Path(path)).write(token, token, "commit")


def test_the_store_decides_one_writer_at_a_time_across_processes(tmp_path: Path) -> None:
    store = FencedStore(tmp_path / "store")
    store.create()
    context = multiprocessing.get_context("spawn")
    path = str(tmp_path / "store")
    processes = [context.Process(target=_offer, args=(path, token)) for token in range(1, 9)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    records = read_jsonl(store.log_path)
    assert len(records) == 8
    for before, after in zip(records, records[1:]):
        assert after["start"] >= before["end"]  # the decisions never overlapped
        assert after["highest"] == max(before["highest"], before["token"] if before["accepted"] else 0)


def test_the_counter_round_trips(tmp_path: Path) -> None:
    counter = UnsafeCounter(tmp_path / "counter")
    counter.create()
    counter.write(counter.read() + 1)
    assert counter.read() == 1


def test_an_event_log_keeps_whole_lines_only(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "w.jsonl", worker=4)
    at = log.record("enter", token=7)
    log.close()
    with (tmp_path / "w.jsonl").open("a") as torn:
        torn.write('{"event": "exit", "wor')  # a writer killed mid-line
    assert read_jsonl(tmp_path / "w.jsonl") == [{"event": "enter", "worker": 4, "at": at, "token": 7}]
