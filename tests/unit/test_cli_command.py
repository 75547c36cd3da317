"""zklock exec's start of COMMAND: which file runs, and /bin/sh for one the kernel cannot run.

A script without #! is run through the whole CLI in tests/integration/test_cli.py; here the
choice of file on PATH, and what cannot be arranged there: no /bin/sh at all (Popen is then a
stand-in that fails as the system would).
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


def test_the_first_executable_on_path_runs_even_without_interpreter_as_execvp_runs_it(tmp_path):
    # execvp(3), and flock(1) with it, stop at the first executable file of the name on PATH
    # and run it with /bin/sh when the kernel cannot; Python's own search would go on and run
    # the next directory's program of the same name instead.
    first, second, out = tmp_path / "first", tmp_path / "second", tmp_path / "out"
    for directory, text in ((first, 'echo first "$@" > "$OUT"\n'),
                            (second, '#!/bin/sh\necho second "$@" > "$OUT"\n')):
        directory.mkdir()
        (directory / "prog").write_text(text)
        (directory / "prog").chmod(0o755)
    env = {"PATH": f"{first}:{second}", "OUT": str(out)}
    command = Command.start(["prog", "one"], env, own_group=False)
    assert command.wait() == 0
    assert out.read_text() == "first one\n"


def test_a_program_on_no_path_entry_is_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        Command.start(["no-such-program-here"], {"PATH": str(tmp_path)}, own_group=False)


def test_without_proc_the_wait_is_for_the_command_alone(monkeypatch):
    # Where /proc cannot tell zklock's earlier children (a sidecar) from COMMAND's, the wait
    # is for COMMAND by its pid: the sidecar's exit status is not taken, nor waited for.
    import subprocess

    from zklock.cli import _proctree

    sidecar = subprocess.Popen(["sleep", "30"])
    try:
        monkeypatch.setattr(_proctree, "_PROC", "/no-proc-here")
        command = Command.start(["sh", "-c", "exit 4"], {"PATH": "/usr/bin:/bin"}, own_group=True)
        assert command.wait() == 4
        assert sidecar.poll() is None  # still running (not waited for), and still ours to reap
    finally:
        sidecar.kill()
        assert sidecar.wait(5) == -9  # its status was left to its owner
