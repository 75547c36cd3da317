"""zklock exec's start of COMMAND: the /bin/sh fallback for a file the kernel cannot run.

Run for real (a script without #!) in tests/integration/test_cli.py; here only what cannot
be arranged there: no /bin/sh at all.  Popen is a stand-in that fails as the system would.
"""

from __future__ import annotations

import errno

import pytest

from zklock.cli import _command
from zklock.cli._command import Command


def test_a_script_without_interpreter_and_no_bin_sh_says_so(monkeypatch):
    tried: list[list[str]] = []

    def popen(argv: list[str], **_options: object) -> None:
        tried.append(argv)
        if len(tried) == 1:
            raise OSError(errno.ENOEXEC, "Exec format error")
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", argv[0])

    monkeypatch.setattr(_command.subprocess, "Popen", popen)
    with pytest.raises(OSError, match="no /bin/sh") as raised:
        Command.start(["./no-shebang", "one"], {"PATH": "/usr/bin"}, own_group=False)
    assert raised.value.errno == errno.ENOEXEC  # reported as 126, not as 127 (not found)
    assert tried == [["./no-shebang", "one"], ["/bin/sh", "./no-shebang", "one"]]
