"""The ``zklock`` command's own errors; ``zklock.cli.main`` turns each into an exit status.

::

    CliError                      a failure reported as one ``zklock: ...`` line on stderr
    ├── CommandLineError          bad arguments                          -> USAGE (64)
    ├── Unreachable               no connection to ZooKeeper in time     -> UNAVAILABLE (69)
    ├── BackendUnavailable        ``server``: no Docker nor Java backend -> UNAVAILABLE (69)
    ├── ServerFailed              ``server``: ZooKeeper failed or died   -> UNAVAILABLE (69)
    ├── Conflict                  the lock is held (no-wait / timeout)   -> the -E value (1)
    ├── CommandNotFound           the command does not exist             -> NOT_FOUND (127)
    ├── CannotExecute             the command could not be started       -> CANNOT_EXECUTE (126)
    ├── Interrupted               a signal before the command started    -> 128 + N
    ├── OutputFailed              ``status``: stdout closed or unwritable -> IO_ERROR (74)
    └── LockLostWhileRunning      the lease was lost, command stopped    -> LOCK_LOST (75)

Errors of the zklock library (``zklock.errors``) are mapped in the same place.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "CannotExecute",
    "CliError",
    "CommandLineError",
    "CommandNotFound",
    "Conflict",
    "Interrupted",
    "LockLostWhileRunning",
    "OutputFailed",
    "ServerFailed",
    "Unreachable",
]


class CliError(Exception):
    """A failure of the ``zklock`` command, printed as one line on stderr."""


class CommandLineError(CliError):
    """The command line is wrong; the message says how, ``usage`` (if any) how it should be."""

    def __init__(self, message: str, prog: str = "zklock", usage: str = "") -> None:
        self.prog = prog
        self.usage = usage
        super().__init__(message)


class Unreachable(CliError):
    """No connection to ZooKeeper could be made within ``--connect-timeout``."""


class BackendUnavailable(CliError):
    """``zklock server`` found neither a usable Docker engine nor a local Java ZooKeeper."""


class ServerFailed(CliError):
    """``zklock server``: a ZooKeeper server did not start serving, or stopped on its own."""


class Conflict(CliError):
    """The lock is held by someone else and ``--no-wait`` or ``--timeout`` said not to wait (more)."""


class CommandNotFound(CliError):
    """The command to run does not exist (or is not on ``PATH``)."""


class CannotExecute(CliError):
    """The command exists but could not be started (permissions, format)."""


class Interrupted(CliError):
    """zklock received ``signum`` before the command was started; nothing was run."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by signal {signum} before the command started")


class OutputFailed(CliError):
    """What was to be printed on stdout could not be written (stdout closed, disk full)."""


class LockLostWhileRunning(CliError):
    """The lease was lost while the command ran; the command was stopped."""
