"""``zklock server``: a throwaway ZooKeeper for development, until SIGINT or SIGTERM.

Two backends, tried in this order by ``--backend auto``:

``docker``
    Containers through :mod:`zklock.testing` (needs ``zklock[testing]`` and a reachable Docker
    engine).  The image is ``--image``, else ``$ZKLOCK_ZOOKEEPER_IMAGE``, else
    ``zookeeper:3.9``; ``ZKLOCK_ZOOKEEPER_PULL=never`` forbids pulling it.
``java``
    A local ZooKeeper installation run as Java processes: ``$ZKLOCK_ZOOKEEPER_CLASSPATH``, else
    ``$ZOOKEEPER_HOME/lib/*``, else Debian's ``/usr/share/java/zookeeper.jar`` (package
    ``zookeeper``), with ``java`` from ``$ZKLOCK_JAVA``, ``$JAVA_HOME`` or ``PATH``.

The connect string is the first line on stdout (flushed at once); everything else goes to
stderr.  Every server listens on 127.0.0.1 only, with development settings: ``tickTime`` 200 ms
(a dead client's locks go within about a second of its session timeout), sessions of 0.4 to
60 s.  On SIGINT/SIGTERM/SIGHUP all servers are stopped and their data deleted; the Java
processes are also killed by the kernel if zklock itself is killed (Linux).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import FrameType
from typing import Any, Protocol

from ._common import add_verbosity_options, say
from ._errors import BackendUnavailable, CommandLineError, ServerFailed
from ._exit import signal_status

__all__ = ["ContainerBackend", "JavaBackend", "configure", "run"]

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 2181
TICK_TIME_MS = 200
MIN_SESSION_TIMEOUT_MS = 400
MAX_SESSION_TIMEOUT_MS = 60_000
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
DEBIAN_CLASSPATH = ("/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar")
ENV_JAVA = "ZKLOCK_JAVA"
ENV_CLASSPATH = "ZKLOCK_ZOOKEEPER_CLASSPATH"
# A small JVM that starts fast: about 60 MiB per server.
JVM_FLAGS = (
    "-Xms16m",
    "-Xmx128m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Dzookeeper.jmx.log4j.disable=true",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``zklock server``."""
    parser.description = (
        "Start a throwaway ZooKeeper on 127.0.0.1 for development, print its connect string "
        "on stdout, and keep it running until SIGINT (Ctrl-C) or SIGTERM; then stop it and "
        "delete its data.  Uses containers when a Docker engine is reachable, else a local "
        "Java ZooKeeper.  Exit status: 0 after a clean stop; 64 bad arguments; 69 no backend, "
        "or the server failed to start or died."
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
        help="auto (default): docker if an engine is reachable, else java",
    )
    parser.add_argument(
        "--image",
        metavar="IMAGE",
        default=None,
        help="container image (default: $ZKLOCK_ZOOKEEPER_IMAGE, else zookeeper:3.9)",
    )
    add_verbosity_options(parser)


class Backend(Protocol):
    """A way to run ZooKeeper: start (returning the connect string), check, stop."""

    description: str

    def start(self) -> str:
        """Start every server and wait until they serve; return the connect string."""

    def check(self) -> None:
        """Raise :class:`ServerFailed` if a server is no longer running."""

    def stop(self) -> None:
        """Stop everything started so far and delete its data; idempotent."""


# ---------------------------------------------------------------------- entry point
def run(args: argparse.Namespace) -> int:
    """Run ``zklock server`` until a stop signal; return 0 after a clean stop."""
    if not 1 <= args.ensemble <= 9:
        raise CommandLineError("--ensemble must be between 1 and 9", "zklock server")
    if args.port is not None and not 0 <= args.port <= 65535 - args.ensemble:
        raise CommandLineError(f"--port {args.port} is not a usable port", "zklock server")
    with _StopSignals() as stopping:
        try:
            backend, connect_string = _start(args, stopping)
        except _Stop as stop:
            say(f"signal {stop.signum} before ZooKeeper served; stopped")
            return signal_status(stop.signum)
        try:
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.write(connect_string + "\n")
                sys.stdout.flush()
            say(
                f"ZooKeeper ({backend.description}) serving on {connect_string}; "
                "Ctrl-C or SIGTERM stops it"
            )
            while True:
                time.sleep(0.5)  # a stop signal raises _Stop in here
                backend.check()
        except _Stop as stop:
            say(f"signal {stop.signum}: stopping ZooKeeper")
            return 0
        finally:
            stopping.ignore()
            backend.stop()


def _start(args: argparse.Namespace, stopping: _StopSignals) -> tuple[Backend, str]:
    """Start the chosen backend (``auto``: docker, else java); a stop signal cleans up."""
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
        try:
            return backend, backend.start()
        except _Stop:
            stopping.ignore()
            backend.stop()
            raise
        except ServerFailed as error:
            backend.stop()
            problems.append(f"{backend.description}: {error}")
            if backend is not candidates[-1]:
                say(f"{backend.description} did not start ({error}); trying the next backend")
        except BaseException:
            backend.stop()
            raise
    raise BackendUnavailable("no ZooKeeper could be started: " + "; ".join(problems))


# ---------------------------------------------------------------------- signals
class _Stop(BaseException):
    """Raised in the main thread by the first SIGINT/SIGTERM/SIGHUP (like KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signum)


class _StopSignals:
    """The first stop signal raises :class:`_Stop`; later ones are ignored while cleaning up."""

    def __init__(self) -> None:
        self._armed = True
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._old[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, old in self._old.items():
            signal.signal(signum, signal.SIG_DFL if old is None else old)

    def ignore(self) -> None:
        """From now on, record nothing and raise nothing: cleanup must finish."""
        self._armed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._armed:
            self._armed = False
            raise _Stop(signum)


# ---------------------------------------------------------------------- helpers
def _free_ports(count: int) -> list[int]:
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((LOOPBACK, 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as error:
            raise BackendUnavailable(
                f"port {port} on {LOOPBACK} is in use ({error.strerror}); "
                "is a ZooKeeper already running? --port 0 picks free ports"
            ) from None


def _client_ports(size: int, first: int | None) -> list[int]:
    if first == 0:
        return _free_ports(size)
    start = DEFAULT_PORT if first is None else first
    ports = list(range(start, start + size))
    for port in ports:
        _check_port_free(port)
    return ports


def _mode(port: int, timeout: float = 1.0) -> str | None:
    """The ``Mode:`` that ``srvr`` reports on ``port``, or None when not serving."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            sock.sendall(b"srvr")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
    except OSError:
        return None
    for line in reply.decode("utf-8", "replace").splitlines():
        if line.startswith("Mode:"):
            return line[len("Mode:") :].strip() or None
    return None


def _settled(modes: list[str | None]) -> bool:
    if len(modes) == 1:
        return modes[0] == "standalone"
    return sorted(str(m) for m in modes) == ["follower"] * (len(modes) - 1) + ["leader"]


# ---------------------------------------------------------------------- java backend
class JavaBackend:
    """ZooKeeper servers as local Java processes (a Debian package or a ZOOKEEPER_HOME)."""

    def __init__(self, size: int, first_port: int | None) -> None:
        self.size = size
        self.first_port = first_port
        kind = "standalone" if size == 1 else f"{size}-server ensemble"
        self.description = f"java, {kind}"
        self._dir: str | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._ports: list[int] = []

    @staticmethod
    def java() -> str | None:
        """The ``java`` executable to use, or None."""
        configured = os.environ.get(ENV_JAVA)
        if configured:
            return configured
        home = os.environ.get("JAVA_HOME")
        if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
            return os.path.join(home, "bin", "java")
        return shutil.which("java")

    @staticmethod
    def classpath() -> str | None:
        """The class path of a local ZooKeeper installation, or None."""
        configured = os.environ.get(ENV_CLASSPATH)
        if configured:
            return configured
        home = os.environ.get("ZOOKEEPER_HOME")
        if home and os.path.isdir(os.path.join(home, "lib")):
            return os.pathsep.join([os.path.join(home, "lib", "*"), os.path.join(home, "*")])
        if os.path.exists(DEBIAN_CLASSPATH[0]):
            return os.pathsep.join(p for p in DEBIAN_CLASSPATH if os.path.exists(p))
        return None

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this backend cannot run here, or None if it can."""
        if cls.java() is None:
            return f"no java (install a JRE, or set ${ENV_JAVA} or $JAVA_HOME)"
        if cls.classpath() is None:
            return (
                "no ZooKeeper installation (Debian: apt-get install zookeeper; or set "
                f"$ZOOKEEPER_HOME or ${ENV_CLASSPATH})"
            )
        return None

    def start(self) -> str:
        """Write each server's configuration, start them, wait until they serve."""
        java, classpath = self.java(), self.classpath()
        assert java is not None and classpath is not None
        self._ports = _client_ports(self.size, self.first_port)
        peers = _free_ports(2 * self.size) if self.size > 1 else []
        self._dir = tempfile.mkdtemp(prefix="zklock-server-")
        for i, port in enumerate(self._ports, start=1):
            workdir = os.path.join(self._dir, f"zk{i}")
            config = self._write_config(workdir, i, port, peers)
            with open(os.path.join(workdir, "zookeeper.log"), "ab") as log:
                self._procs.append(
                    subprocess.Popen(
                        [java, *JVM_FLAGS, f"-Djava.io.tmpdir={workdir}", "-cp", classpath,
                         "org.apache.zookeeper.server.quorum.QuorumPeerMain", config],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=workdir,
                        start_new_session=True,  # Ctrl-C reaches zklock only, which stops them
                        preexec_fn=_die_with_parent,
                    )
                )
        self._wait_serving()
        return ",".join(f"{LOOPBACK}:{port}" for port in self._ports)

    def _write_config(self, workdir: str, myid: int, port: int, peers: list[int]) -> str:
        data = os.path.join(workdir, "data")
        os.makedirs(data)
        lines = [
            f"tickTime={TICK_TIME_MS}",
            "initLimit=50",
            "syncLimit=10",
            f"dataDir={data}",
            f"clientPort={port}",
            f"clientPortAddress={LOOPBACK}",
            f"minSessionTimeout={MIN_SESSION_TIMEOUT_MS}",
            f"maxSessionTimeout={MAX_SESSION_TIMEOUT_MS}",
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,stat,ruok,mntr,cons,envi,conf",
            "maxClientCnxns=0",
        ]
        if self.size > 1:
            lines += [
                f"server.{i}={LOOPBACK}:{peers[2 * i - 2]}:{peers[2 * i - 1]}"
                for i in range(1, self.size + 1)
            ]
            with open(os.path.join(data, "myid"), "w") as myid_file:
                myid_file.write(f"{myid}\n")
        path = os.path.join(workdir, "zoo.cfg")
        with open(path, "w") as config:
            config.write("\n".join(lines) + "\n")
        return path

    def _wait_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self.check()
            if _settled([_mode(port, timeout=0.5) for port in self._ports]):
                return
            if time.monotonic() > deadline:
                raise ServerFailed(f"not serving after {START_TIMEOUT:g} s{self._log_tail()}")
            time.sleep(0.05)

    def check(self) -> None:
        """Raise :class:`ServerFailed` if a server process has exited."""
        for i, proc in enumerate(self._procs, start=1):
            if proc.poll() is not None:
                raise ServerFailed(
                    f"ZooKeeper server {i} exited with status {proc.returncode}"
                    f"{self._log_tail(i)}"
                )

    def _log_tail(self, server: int = 1, lines: int = 15) -> str:
        if self._dir is None:
            return ""
        try:
            with open(os.path.join(self._dir, f"zk{server}", "zookeeper.log"), errors="replace") as log:
                tail = log.readlines()[-lines:]
        except OSError:
            return ""
        return "\n--- last lines of its log ---\n" + "".join(tail).rstrip()

    def stop(self) -> None:
        """SIGTERM every server, SIGKILL those still running after a while; delete the data."""
        procs, self._procs = self._procs, []
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _die_with_parent() -> None:
    """In the child before exec: have the kernel SIGKILL it when zklock dies (Linux only)."""
    with contextlib.suppress(Exception):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))


# ---------------------------------------------------------------------- container backend
class ContainerBackend:
    """ZooKeeper in containers, through :mod:`zklock.testing` (``zklock[testing]``)."""

    def __init__(self, size: int, first_port: int | None, image: str | None) -> None:
        self.size = size
        self.first_port = first_port
        self.image = image
        kind = "standalone" if size == 1 else f"{size}-server ensemble"
        self.description = f"docker, {kind}"
        self._running: Any = None  # a ZooKeeperContainer or a ZooKeeperEnsemble

    @staticmethod
    def unavailable(image: str | None, must_be_local: bool) -> str | None:
        """Why containers cannot be used here, or None if they can.

        With ``must_be_local`` (``--backend auto``), an image that would have to be pulled
        counts as unavailable: auto never downloads.
        """
        try:
            # Through importlib: mypy would take the repository's docker/ directory for it.
            docker: Any = importlib.import_module("docker")
            from docker.errors import ImageNotFound

            from ..testing import HarnessError, Settings
        except ImportError as error:
            return f"zklock[testing] is not installed ({error})"
        try:
            image = image or Settings.from_env().image
        except HarnessError as error:
            return str(error)
        try:
            client = docker.from_env(timeout=3)
        except Exception as error:
            return f"no Docker engine reachable ({type(error).__name__})"
        try:
            client.ping()
            if must_be_local:
                client.images.get(image)
        except ImageNotFound:
            return (
                f"image {image} is not present locally (docker pull {image}, or "
                "--backend docker to let zklock pull it)"
            )
        except Exception as error:
            return f"no Docker engine reachable ({type(error).__name__})"
        finally:
            client.close()
        return None

    def start(self) -> str:
        """Start the container(s) and wait until ZooKeeper serves; return the connect string."""
        from ..testing import (
            HarnessError,
            Settings,
            ZooKeeperContainer,
            ZooKeeperEnsemble,
        )

        try:
            settings = Settings.from_env()
            image = self.image or settings.image
            self.description += f", {image}"
            if self.size == 1:
                port = None
                if self.first_port != 0:
                    port = _client_ports(1, self.first_port)[0]
                container = ZooKeeperContainer(image, host_port=port, pull=settings.pull)
                self._running = container
                container.with_session_timeouts(MIN_SESSION_TIMEOUT_MS, MAX_SESSION_TIMEOUT_MS)
                container.start()
                return str(container.get_connect_string())
            if self.first_port not in (None, 0):
                say("--port is ignored for a container ensemble: it gets free ports")
            ensemble = ZooKeeperEnsemble(
                self.size,
                image,
                pull=settings.pull,
                max_session_timeout=MAX_SESSION_TIMEOUT_MS,
            )
            self._running = ensemble
            ensemble.open()
            return str(ensemble.connect_string())
        except HarnessError as error:
            raise ServerFailed(str(error)) from None

    def check(self) -> None:
        """Raise :class:`ServerFailed` if a container stopped serving for good."""
        running = self._running
        if running is None:
            return
        containers = [running] if self.size == 1 else list(running.nodes.values())
        for container in containers:
            try:
                container.get_wrapped_container().reload()
                status = container.get_wrapped_container().status
            except Exception as error:
                raise ServerFailed(f"container gone: {error}") from None
            if status in ("exited", "dead"):
                raise ServerFailed(f"container {status}:\n{container.logs_tail(15)}")

    def stop(self) -> None:
        """Remove the container(s) (and the ensemble's network); idempotent."""
        running, self._running = self._running, None
        if running is None:
            return
        if self.size == 1:
            running.stop()
        else:
            running.close()
