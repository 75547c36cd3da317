"""The ``zklock`` command: run a command under a lock, inspect a lock, start a dev ZooKeeper.

::

    zklock exec [OPTIONS] PATH [--] COMMAND [ARGS...]   hold the lock while COMMAND runs
    zklock status [OPTIONS] PATH                        who holds the lock, who waits
    zklock server [OPTIONS]                             a throwaway ZooKeeper for development

Each subcommand is one module (``exec.py``, ``status.py``, ``server.py``) with ``configure(parser)``
and ``run(args) -> int``; only the one named on the command line is imported.  :func:`main` is the
one place where exceptions become exit statuses (named in ``_exit.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn, Protocol, cast

from ._common import configure_logging, say
from ._errors import (
    BackendUnavailable,
    CannotExecute,
    CliError,
    CommandLineError,
    CommandNotFound,
    Conflict,
    Interrupted,
    LockLostWhileRunning,
    OutputFailed,
    ServerFailed,
    Unreachable,
)
from ._exit import ExitCode, signal_status

__all__ = ["main"]

_COMMANDS: dict[str, tuple[str, str]] = {
    "exec": ("zklock.cli.exec", "run a command while holding a lock (as flock(1))"),
    "status": ("zklock.cli.status", "show who holds a lock and who waits for it"),
    "server": ("zklock.cli.server", "run a throwaway ZooKeeper for development"),
}


class _Subcommand(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are exceptions, so that ``main`` picks the status."""

    def error(self, message: str) -> NoReturn:
        raise CommandLineError(message, self.prog, self.format_usage())


def _version() -> str:
    from .. import __version__

    return __version__


def _build_parser(chosen: str | None) -> tuple[argparse.ArgumentParser, _Subcommand | None]:
    parser = _Parser(
        prog="zklock",
        description="Distributed locks on Apache ZooKeeper, from the shell.",
        epilog="Run 'zklock COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"zklock {_version()}")
    subparsers = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    module: _Subcommand | None = None
    for name, (module_path, summary) in _COMMANDS.items():
        sub = subparsers.add_parser(name, help=summary, description=summary)
        if name == chosen:
            module = cast(_Subcommand, importlib.import_module(module_path))
            module.configure(sub)
    return parser, module


def _chosen(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in _COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``zklock`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args: argparse.Namespace | None = None
    try:
        parser, module = _build_parser(_chosen(argv))
        try:
            args = parser.parse_args(argv)
        except SystemExit as done:  # --help, --version
            return done.code if isinstance(done.code, int) else ExitCode.OK
        configure_logging(int(getattr(args, "verbose", 0)))
        if module is None:
            raise CommandLineError("a command is needed", "zklock", parser.format_usage())
        return module.run(args)
    except BaseException as error:  # the one place where errors become statuses
        return _report(error, args)


def _report(error: BaseException, args: argparse.Namespace | None) -> int:
    """Print what went wrong (one line, or a traceback for a bug) and return the exit status."""
    from .. import errors as lib  # the library's errors; cheap, imports kazoo's exceptions only

    quiet = bool(getattr(args, "quiet", False))
    if isinstance(error, CommandLineError):
        # AttributeError: started with stderr closed (2>&-), Python sets sys.stderr to None.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.write(f"{error.usage}{error.prog}: error: {error}\n")
        return ExitCode.USAGE
    if isinstance(error, Conflict):
        if not quiet:
            say(str(error))
        return int(getattr(args, "conflict_exit_code", ExitCode.CONFLICT))
    if isinstance(error, Interrupted):
        return signal_status(error.signum)
    statuses: tuple[tuple[type[BaseException], int], ...] = (
        (OutputFailed, ExitCode.IO_ERROR),
        (Unreachable, ExitCode.UNAVAILABLE),
        (BackendUnavailable, ExitCode.UNAVAILABLE),
        (ServerFailed, ExitCode.UNAVAILABLE),
        (CommandNotFound, ExitCode.NOT_FOUND),
        (CannotExecute, ExitCode.CANNOT_EXECUTE),
        (LockLostWhileRunning, ExitCode.LOCK_LOST),
        (lib.UsageError, ExitCode.USAGE),
        (lib.NoAuthorization, ExitCode.NO_PERMISSION),
        (lib.LeaseError, ExitCode.LOCK_LOST),
        (lib.ZooKeeperError, ExitCode.UNAVAILABLE),
        (lib.ClientNotConnected, ExitCode.UNAVAILABLE),
        (CliError, ExitCode.SOFTWARE),
    )
    for kind, status in statuses:
        if isinstance(error, kind):
            say(str(error))
            return int(status)
    if isinstance(error, KeyboardInterrupt):
        return signal_status(signal.SIGINT)
    if isinstance(error, BrokenPipeError):  # e.g. `zklock status ... | head -1`
        return signal_status(signal.SIGPIPE)
    if isinstance(error, SystemExit):
        return error.code if isinstance(error.code, int) else ExitCode.SOFTWARE
    say("internal error, please report it:")
    with contextlib.suppress(OSError, ValueError, AttributeError):  # stderr closed, see above
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    return ExitCode.SOFTWARE
