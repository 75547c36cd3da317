"""``zklock exec``: run a command while holding a lock, as ``flock(1)`` does with a file.

The main thread connects, acquires (one blocking ``Lock.acquire``, so the node keeps its place
in the queue), runs the command as a child, waits for it *and every process it started*
(``_command``: on Linux zklock is a child subreaper, so orphans stay its children), releases
and exits with the command's status.  Two helper threads, each alive for one phase only:

* while waiting, ``_display.Waiting`` shows who holds the lock (polling ``Lock.contenders``
  twice a second) and turns a SIGINT/SIGTERM/SIGHUP into ``Lock.cancel()``;
* while the command (or a process it left running) runs, ``_monitor.LeaseMonitor`` watches
  the lease and, once it is LOST, stops all of them: SIGTERM, then SIGKILL after ``--grace``.

Signal handlers (``_signals.SignalRouter``) only record, write one byte to a pipe, or forward
the signal to the command and all it started: nothing in them takes a lock.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from typing import TYPE_CHECKING

from ..naming import NodeNaming
from ._command import Command, exit_statuses_kept
from ._common import (
    add_connection_options,
    add_verbosity_options,
    connect,
    non_negative_seconds,
    say,
)
from ._display import Display, Waiting
from ._errors import (
    CannotExecute,
    CommandLineError,
    CommandNotFound,
    Conflict,
    Interrupted,
    LockLostWhileRunning,
)
from ._exit import EXIT_STATUS_HELP, signal_status
from ._monitor import LeaseMonitor
from ._proctree import child_subreaper
from ._signals import Mode, SignalRouter, in_terminal_foreground

if TYPE_CHECKING:
    from kazoo.client import KazooClient

    from ..lease import Lease, LeaseState
    from ..lock import Lock

__all__ = ["configure", "run"]

DEFAULT_GRACE = 5.0

_ENVIRONMENT_HELP = """\
environment of COMMAND:
  ZKLOCK_TOKEN   the fencing token (the lock node's czxid, a decimal integer);
                 strictly increasing across holders: let resources refuse lower ones
  ZKLOCK_PATH    the lock's path
  ZKLOCK_NODE    the full path of the lock node held for the command

signals: SIGINT, SIGTERM and SIGHUP sent to zklock are passed to COMMAND and every
process it started, once each (in the terminal's foreground COMMAND shares zklock's
process group, and a SIGINT or SIGHUP from the terminal, which already reached it, is not
sent twice; elsewhere COMMAND has a process group of its own).  Before COMMAND starts
they stop the wait: 128+N.

processes left running: the lock is released once COMMAND and every process it started
have exited (on Linux, orphans included), as flock(1) holds it while a background child
keeps the descriptor: a COMMAND that leaves a daemon behind keeps the lock until it exits.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``zklock exec``."""
    parser.usage = "zklock exec [OPTIONS] PATH [--] COMMAND [ARGS...]"
    parser.description = (
        "Acquire the lock PATH, run COMMAND while holding it, release it when COMMAND "
        "exits, and exit with COMMAND's status.  Options go before PATH; everything "
        "after PATH is the command."
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = f"{_ENVIRONMENT_HELP}\n{EXIT_STATUS_HELP}"
    parser.add_argument("path", metavar="PATH", help="the lock, a ZooKeeper path such as /locks/backup")
    parser.add_argument(
        "command", metavar="COMMAND", nargs=argparse.REMAINDER, help="the command and its arguments"
    )
    waiting = parser.add_mutually_exclusive_group()
    waiting.add_argument(
        "-w",
        "--timeout",
        metavar="SECONDS",
        type=non_negative_seconds,
        default=None,
        help="give up when the lock is not had within SECONDS (0: as --no-wait)",
    )
    waiting.add_argument(
        "-n", "--no-wait", action="store_true", help="give up at once if the lock is held"
    )
    parser.add_argument(
        "-E",
        "--conflict-exit-code",
        metavar="CODE",
        type=_exit_code,
        default=1,
        help="exit status when the lock is not had (default: 1)",
    )
    parser.add_argument(
        "--identifier",
        metavar="TEXT",
        default=None,
        help="who is holding, as others see it (default: HOSTNAME:PID)",
    )
    parser.add_argument(
        "--naming",
        choices=[naming.value for naming in NodeNaming],
        default=NodeNaming.KAZOO.value,
        help="how the lock node is named: as kazoo's Lock (default) or as Curator's "
        "InterProcessMutex, for paths shared with Java services using Curator",
    )
    parser.add_argument(
        "--grace",
        metavar="SECONDS",
        type=non_negative_seconds,
        default=DEFAULT_GRACE,
        help="if the lock is lost, seconds between SIGTERM and SIGKILL to COMMAND "
        f"(default: {DEFAULT_GRACE:g})",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="show nothing while waiting, nor on conflict"
    )
    add_connection_options(parser)
    add_verbosity_options(parser)


def _exit_code(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"must be 0-255: {text!r}")
    return value


# ---------------------------------------------------------------------- entry point
def run(args: argparse.Namespace) -> int:
    """Run ``zklock exec``; return the command's status (errors are raised, see ``main``)."""
    from .._validate import check_identifier, check_lock_path

    command = _command(args.command)
    path = check_lock_path(args.path)
    if args.identifier is not None:
        if not args.identifier.strip():  # as --hosts: an unset shell variable, say
            raise CommandLineError("--identifier is empty", "zklock exec")
        check_identifier(args.identifier)
    _check_executable(command[0])
    with SignalRouter() as router, connect(args) as client:
        lock = _make_lock(client, path, args)
        if not _acquire(lock, client, args, router):
            raise Conflict(_conflict_message(lock, args))
        return _hold_and_run(lock, command, args, router)


def _command(command: list[str]) -> list[str]:
    if command and command[0] == "--":  # argparse keeps a '--' that follows a REMAINDER start
        command = command[1:]
    if not command:
        raise CommandLineError("no COMMAND given", "zklock exec")
    if command[0].startswith("-"):
        raise CommandLineError(
            f"options go before PATH: {command[0]!r} came after it "
            "(write 'zklock exec [OPTIONS] PATH -- COMMAND')",
            "zklock exec",
        )
    return command


def _check_executable(name: str) -> None:
    """Fail before connecting when the command cannot run (statuses 127 / 126)."""
    if "/" in name:
        if not os.path.exists(name):
            raise CommandNotFound(f"{name}: no such file")
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            raise CannotExecute(f"{name}: not an executable file")
    elif shutil.which(name) is None:
        raise CommandNotFound(f"{name}: command not found")


def _make_lock(client: KazooClient, path: str, args: argparse.Namespace) -> Lock:
    from ..lease import LeaseState
    from ..lock import Lock

    def on_state(lease: Lease, state: LeaseState) -> None:
        # Shown even with -q, which quiets only waiting and conflicts: this is about safety.
        if state is LeaseState.SUSPENDED:
            say(
                f"connection to ZooKeeper lost; the lock {lease.path} is in doubt "
                f"(lost in {lease.time_left():.1f} s unless ZooKeeper is heard from)"
            )
        elif state is LeaseState.HELD:
            say(f"connection to ZooKeeper back; the lock {lease.path} is still held")

    return Lock(client, path, args.identifier, listener=on_state, naming=NodeNaming(args.naming))


# ---------------------------------------------------------------------- waiting
def _acquire(
    lock: Lock, client: KazooClient, args: argparse.Namespace, router: SignalRouter
) -> bool:
    """Acquire as the options say; True once held.  A signal while waiting raises Interrupted."""
    from ..errors import AcquireCancelled

    if args.no_wait or args.timeout == 0:
        try:
            return lock.acquire(blocking=False)  # one round trip; a signal raises Interrupted
        finally:
            router.mode = Mode.RECORD
    display = Display.for_stream(sys.stderr, quiet=args.quiet)
    waiting = Waiting(lock, client, router, display)
    router.mode = Mode.WAIT
    router.check()
    waiting.start()
    started = time.monotonic()
    try:
        acquired = lock.acquire(timeout=args.timeout)
    except AcquireCancelled:
        if router.received:
            raise Interrupted(router.received[0]) from None
        raise
    finally:
        waiting.stop()
        router.mode = Mode.RECORD  # held now: a signal is dealt with by _hold_and_run
    if acquired and display.shown:
        lease = lock.lease
        token = f" (token {lease.token})" if lease else ""
        display.line(f"acquired {lock.path}{token} after {time.monotonic() - started:.1f} s")
    return acquired  # a signal that came meanwhile is seen by _hold_and_run, which releases


def _conflict_message(lock: Lock, args: argparse.Namespace) -> str:
    holder = ""
    if not args.quiet:
        with contextlib.suppress(Exception):
            contenders = lock.contenders(timeout=1.0)
            if contenders:
                holder = f"; held by {contenders[0].identifier!r} (token {contenders[0].token})"
    if args.no_wait or args.timeout == 0:
        return f"{lock.path} is locked{holder}; not waiting (--no-wait)"
    return f"gave up waiting for {lock.path} after {args.timeout:g} s{holder}"


# ---------------------------------------------------------------------- running the command
def _hold_and_run(
    lock: Lock, argv: list[str], args: argparse.Namespace, router: SignalRouter
) -> int:
    from ..lease import LeaseState

    lease = lock.lease
    assert lease is not None
    try:
        router.mode = Mode.FORWARD  # from here a signal is kept for the child, or passed on
        router.check()
        # Never start COMMAND without the lock: a lease may be granted already in doubt (the
        # connection dropped right after the reply), or lost (the session with it).
        while (state := lease.state) is LeaseState.SUSPENDED:  # turns LOST at the bound
            time.sleep(0.05)
            router.check()
        if state is LeaseState.LOST:
            raise LockLostWhileRunning(
                f"the lock {lease.path} was lost before the command started ({lease.reason}); "
                "it was not started"
            )
        env = dict(
            os.environ,
            ZKLOCK_TOKEN=str(lease.token),
            ZKLOCK_PATH=lease.path,
            ZKLOCK_NODE=lease.node,
        )
        # Orphans of the command stay zklock's, to be waited for; exit statuses are kept.
        with child_subreaper(), exit_statuses_kept():
            command = _start(argv, env)
            monitor = LeaseMonitor(lease, command, args.grace)
            try:
                router.attach(command)
                monitor.start()
                returncode = command.wait(
                    lambda code: _command_exited(command, code, args, lease.state is LeaseState.LOST)
                )
            except BaseException:
                command.kill()  # zklock itself failed: nothing may run on without the lock
                raise
            finally:
                if monitor.is_alive():
                    monitor.finish()
        status = signal_status(-returncode) if returncode < 0 else returncode
        if monitor.stopped_with:
            raise LockLostWhileRunning(
                f"the lock {lease.path} was lost while the command ran ({monitor.reason}); "
                f"the command was stopped with {monitor.stopped_with}"
            )
        if lease.state is LeaseState.LOST:
            raise LockLostWhileRunning(
                f"the lock {lease.path} was lost before the command finished ({lease.reason}); "
                f"its exit status {status} is not passed on"
            )
        return status
    finally:
        router.mode = Mode.RECORD
        _release(lock)


def _start(argv: list[str], env: dict[str, str]) -> Command:
    """Start the command: in a process group of its own unless zklock has the terminal.

    In the terminal's foreground the command shares zklock's group, so that Ctrl-C reaches it
    directly (and zklock does not pass it on).  Anywhere else it gets a group of its own: a
    signal sent to zklock's whole group then reaches it once, passed on by zklock, and what
    zklock passes on reaches the script's children too (``kill`` of the group).
    """
    try:
        return Command.start(argv, env, own_group=not in_terminal_foreground())
    except FileNotFoundError as error:
        raise CommandNotFound(f"{argv[0]}: {error.strerror}") from None
    except OSError as error:
        raise CannotExecute(f"{argv[0]}: {error.strerror or error}") from None


def _command_exited(
    command: Command, returncode: int, args: argparse.Namespace, lost: bool
) -> None:
    """Say that zklock waits for the processes the command left behind.

    It holds the lock meanwhile, unless the lock was ``lost`` already: they are then being
    stopped, and saying "holding the lock" would be wrong.
    """
    left = command.processes() or []
    if not left or args.quiet:
        return
    status = signal_status(-returncode) if returncode < 0 else returncode
    pids = " ".join(str(process.pid) for process in left[:5]) + (" ..." if len(left) > 5 else "")
    one = len(left) == 1
    if one:
        running = f"1 process it started still runs (pid {pids})"
    else:
        running = f"{len(left)} processes it started still run (pids {pids})"
    if lost:
        running += ": waiting for " + ("it" if one else "them") + " to be stopped"
    else:
        running += ": holding the lock until " + ("it exits" if one else "they exit")
    say(f"the command exited with status {status}; {running}")


def _release(lock: Lock) -> None:
    """Release, never raising: a failure is reported; the node goes with the session anyway."""
    from ..errors import LockLost, ZkLockError

    lease = lock.lease
    try:
        lock.release()
    except LockLost:
        if lease is not None and not lease.lost.is_set():
            say(f"warning: the lock {lock.path} was lost after the command finished")
    except ZkLockError as error:
        say(f"warning: could not release {lock.path} ({error}); it goes when the session closes")
