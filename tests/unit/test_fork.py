"""ForkGuard: the shared guard of a process, and a new one in a forked child (a real fork)."""

from __future__ import annotations

import json
import os

from zklock._fork import ForkGuard
from zklock.errors import UsedAfterFork


def test_objects_made_in_one_process_share_one_guard():
    assert ForkGuard.shared() is ForkGuard.shared()
    assert not ForkGuard.shared().forked


def test_a_forked_child_gets_a_guard_of_its_own_and_the_parents_refuses():
    parents = ForkGuard.shared()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, and leave without running the parent's clean-up
        os.close(read_end)
        own = ForkGuard.shared()
        try:
            parents.check("the parent's object")
            refused = False
        except UsedAfterFork:
            refused = True
        report = {"parents_forked": parents.forked, "refused": refused,
                  "own_is_new": own is not parents, "own_forked": own.forked,
                  "own_shared": ForkGuard.shared() is own}
        os.write(write_end, json.dumps(report).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = json.loads(pipe.read())
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report == {"parents_forked": True, "refused": True, "own_is_new": True,
                      "own_forked": False, "own_shared": True}
    assert ForkGuard.shared() is parents and not parents.forked  # the parent is unchanged
