"""``zklock server``: a throwaway ZooKeeper for development, until SIGINT, SIGTERM or SIGHUP.

Two backends, tried in this order by ``--backend auto``:

``docker``
    Containers through :mod:`zklock.testing` (needs ``zklock[testing]`` and a reachable Docker
    engine).  The image is ``--image``, else ``$ZKLOCK_ZOOKEEPER_IMAGE``, else
    ``zookeeper:3.9``; ``ZKLOCK_ZOOKEEPER_PULL=never`` forbids pulling it.
``java``
    A local ZooKeeper installation run as Java processes, through
    :class:`zklock.testing.LocalZooKeeper` (no Docker, no ``zklock[testing]``):
    ``$ZKLOCK_ZOOKEEPER_CLASSPATH``, else ``$ZOOKEEPER_HOME/lib/*``, else Debian's
    ``/usr/share/java/zookeeper.jar`` (package ``zookeeper``), with ``java`` from
    ``$ZKLOCK_JAVA``, ``$JAVA_HOME`` or ``PATH``.

Both are adapters in ``_backends.py``; this module chooses one and runs the foreground loop.

The connect string is the first line on stdout (flushed at once); everything else goes to
stderr.  Every server listens on 127.0.0.1 only, with development settings: ``tickTime`` 200 ms
(a dead client's locks go within about a second of its session timeout), sessions of 0.4 to
60 s.  On SIGINT/SIGTERM/SIGHUP (SIGHUP not when started under ``nohup``) all servers are
stopped and their data deleted; the Java processes are also killed by the kernel if zklock
itself is killed (Linux).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from types import FrameType
from typing import Any

from ._backends import DEFAULT_PORT, Backend, ContainerBackend, JavaBackend
from ._common import add_verbosity_options, say
from ._errors import BackendUnavailable, CommandLineError, ServerFailed
from ._exit import signal_status

__all__ = ["ContainerBackend", "JavaBackend", "configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``zklock server``."""
    parser.description = (
        "Start a throwaway ZooKeeper on 127.0.0.1 for development, print its connect string "
        "on stdout, and keep it running until SIGINT (Ctrl-C), SIGTERM or SIGHUP (not under nohup); "
        "then stop it and "
        "delete its data.  By default uses containers when a Docker engine is reachable and the "
        "image is present locally, else a local Java ZooKeeper.  Exit status: 0 after a clean "
        "stop; 64 bad arguments; 69 no backend, or the server failed to start or died; 128 + N "
        "when stopped by signal N before it served."
    )
    parser.add_argument(
        "--ensemble",
        metavar="N",
        type=int,
        default=1,
        help="number of servers (default: 1, standalone; 3 or 5 for a quorum)",
    )
    parser.add_argument(
        "--port",
        metavar="PORT",
        type=int,
        default=None,
        help=f"client port of the first server, the others follow (default: {DEFAULT_PORT}, "
        "the default of --hosts; 0: free ports; a container ensemble always uses free ports)",
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "docker", "java"),
        default="auto",
        help="auto (default): docker if an engine is reachable and the image is present "
        "locally, else java",
    )
    parser.add_argument(
        "--image",
        metavar="IMAGE",
        default=None,
        help="container image (default: $ZKLOCK_ZOOKEEPER_IMAGE, else zookeeper:3.9)",
    )
    add_verbosity_options(parser)


# ---------------------------------------------------------------------- entry point
def check_arguments(args: argparse.Namespace) -> None:
    """Refuse an ensemble size or a first port that cannot work (:class:`CommandLineError`)."""
    if not 1 <= args.ensemble <= 9:
        raise CommandLineError("--ensemble must be between 1 and 9", "zklock server")
    # The servers take ports PORT to PORT + N - 1; 0 means free ports.
    if args.port is not None and not 0 <= args.port <= 65536 - args.ensemble:
        raise CommandLineError(f"--port {args.port} is not a usable port", "zklock server")


def run(args: argparse.Namespace) -> int:
    """Run ``zklock server`` until a stop signal; return 0 after a clean stop."""
    check_arguments(args)
    with _StopSignals() as stopping:
        tried: list[Backend] = []  # every backend whose start began: each is stopped at the end
        serving = False
        try:
            backend, connect_string = _start(args, stopping, tried)
            serving = True
            # AttributeError: started with stdout closed (>&-), sys.stdout is None.  The server
            # is still of use (its address is on stderr too): serve on.
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stdout.write(connect_string + "\n")
                sys.stdout.flush()
            say(
                f"ZooKeeper ({backend.description}) serving on {connect_string}; "
                f"{stopping.described()} stops it"
            )
            while True:
                time.sleep(0.5)  # a stop signal raises _Stop in here
                backend.check()
        except _Stop as stop:
            if not serving:
                say(f"signal {stop.signum} before ZooKeeper served; stopped")
                return signal_status(stop.signum)
            say(f"signal {stop.signum}: stopping ZooKeeper")
            return 0
        finally:
            stopping.ignore()
            for started in tried:
                started.stop()


def _start(
    args: argparse.Namespace, stopping: _StopSignals, tried: list[Backend]
) -> tuple[Backend, str]:
    """Start the chosen backend (``auto``: docker, else java), noting each in ``tried``.

    A backend that fails is stopped at once, with stop signals held back meanwhile (a
    removal cut short would leave its containers behind); one that came then raises
    :class:`_Stop` before the next backend is tried.
    """
    candidates: list[Backend] = []
    problems: list[str] = []
    if args.backend in ("auto", "docker"):
        reason = ContainerBackend.unavailable(args.image, must_be_local=args.backend == "auto")
        if reason is None:
            candidates.append(ContainerBackend(args.ensemble, args.port, args.image))
        else:
            problems.append(f"docker: {reason}")
            if args.backend == "auto":
                say(f"not using docker: {reason}")
    if args.backend in ("auto", "java"):
        reason = JavaBackend.unavailable()
        if reason is None:
            candidates.append(JavaBackend(args.ensemble, args.port))
        else:
            problems.append(f"java: {reason}")
    for backend in candidates:
        tried.append(backend)
        try:
            return backend, backend.start()
        except ServerFailed as error:
            stopping.ignore()
            backend.stop()
            problems.append(f"{backend.description}: {error}")
            if backend is not candidates[-1]:
                say(f"{backend.description} did not start ({error}); trying the next backend")
            stopping.arm()  # a stop signal that came meanwhile raises _Stop here
    raise BackendUnavailable("no ZooKeeper could be started: " + "; ".join(problems))


# ---------------------------------------------------------------------- signals
class _Stop(BaseException):
    """Raised in the main thread by the first SIGINT/SIGTERM/SIGHUP (like KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signum)


class _StopSignals:
    """The first stop signal raises :class:`_Stop`; one that comes while disarmed is kept.

    A SIGHUP the process was started with ignored (``nohup``) stays ignored. SIGINT is
    handled even when ignored: a shell without job control starts a background command
    (``zklock server &`` in a script) with it ignored, and stops it with ``kill -INT``.
    """

    def __init__(self) -> None:
        self._armed = True
        self._pending: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if signum == signal.SIGHUP and signal.getsignal(signum) is signal.SIG_IGN:
                continue
            self._old[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, old in self._old.items():
            signal.signal(signum, signal.SIG_DFL if old is None else old)

    def ignore(self) -> None:
        """From now on raise nothing (a cleanup must finish); a signal is kept for :meth:`arm`."""
        self._armed = False

    def arm(self) -> None:
        """Arm again; raise :class:`_Stop` for a signal kept while disarmed."""
        self._armed = True  # first: a signal from here on raises by itself
        if self._pending is not None:
            self._armed = False
            signum, self._pending = self._pending, None
            raise _Stop(signum)

    def described(self) -> str:
        """The signals that stop the server, for its message (SIGHUP not under ``nohup``)."""
        return "Ctrl-C, SIGTERM or SIGHUP" if signal.SIGHUP in self._old else "Ctrl-C or SIGTERM"

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._armed:
            self._armed = False
            raise _Stop(signum)
        if self._pending is None:
            self._pending = signum
