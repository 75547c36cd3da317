"""ZooKeeper as local Java processes: no Docker, only a JRE and a ZooKeeper installation.

The installation is ``$ZKLOCK_ZOOKEEPER_CLASSPATH``, else ``$ZOOKEEPER_HOME/lib/*``, else
Debian's ``/usr/share/java/zookeeper.jar`` (package ``zookeeper``); ``java`` comes from
``$ZKLOCK_JAVA``, ``$JAVA_HOME/bin`` or ``PATH``. Each server's configuration, data and log live
in a temporary directory, deleted by :meth:`LocalZooKeeper.stop`. The processes run in their own
session (a Ctrl-C reaches only this process, which stops them in order). On Linux the kernel
kills them when the *thread* that started them exits (``PR_SET_PDEATHSIG`` follows the creating
thread, not the process): started from the main thread, that is when this process dies; started
from a worker thread, they die with that thread, so start them from a thread that outlives
their use.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from types import TracebackType
from typing import TYPE_CHECKING, Optional

from .._parent_death import killed_with_this_thread
from ._errors import HarnessError, ZooKeeperStartError
from ._fourletter import server_mode
from ._ports import free_loopback_ports, loopback_ports
from ._settings import (
    DEFAULT_JVMFLAGS,
    DEFAULT_MAX_SESSION_TIMEOUT,
    DEFAULT_MIN_SESSION_TIMEOUT,
    DEFAULT_TICK_TIME,
    LOOPBACK,
)

if TYPE_CHECKING:
    from typing import Self

__all__ = ["ENV_CLASSPATH", "ENV_JAVA", "LocalZooKeeper"]

ENV_JAVA = "ZKLOCK_JAVA"
ENV_CLASSPATH = "ZKLOCK_ZOOKEEPER_CLASSPATH"
DEBIAN_CLASSPATH = ("/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar")
JVM_FLAGS = (*DEFAULT_JVMFLAGS.split(), "-Dzookeeper.jmx.log4j.disable=true")
STOP_TIMEOUT = 10.0
_POLL = 0.05


class LocalZooKeeper:
    """``size`` ZooKeeper servers run as local Java processes (standalone when ``size`` is 1).

    ::

        if LocalZooKeeper.unavailable() is None:
            with LocalZooKeeper() as zk:
                client = KazooClient(hosts=zk.connect_string)

    ``first_port`` fixes the client ports (``first_port``, ``first_port + 1`` ...; each must be
    free, else :class:`PortInUseError`); None or 0 picks free ones. The servers listen on
    127.0.0.1 only, with the harness's test settings (see :data:`DEFAULT_TICK_TIME`) unless the
    keyword arguments say otherwise.
    """

    def __init__(
        self,
        size: int = 1,
        first_port: Optional[int] = None,
        *,
        tick_time: int = DEFAULT_TICK_TIME,
        min_session_timeout: int = DEFAULT_MIN_SESSION_TIMEOUT,
        max_session_timeout: int = DEFAULT_MAX_SESSION_TIMEOUT,
        startup_timeout: float = 60.0,
    ) -> None:
        if size < 1:
            raise ValueError(f"ZooKeeper needs at least one server, not {size}")
        self.size = size
        self.first_port = first_port
        self.tick_time = tick_time
        self.startup_timeout = startup_timeout
        self._sessions = (min_session_timeout, max_session_timeout)
        self._dir: Optional[str] = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._ports: list[int] = []

    # ---------------------------------------------------------------------------- installation
    @staticmethod
    def java() -> Optional[str]:
        """The ``java`` executable to use, or None."""
        configured = os.environ.get(ENV_JAVA)
        if configured:
            # A name is looked up on PATH; a path must be an executable file.
            found = shutil.which(configured)
            return found if found and os.access(found, os.X_OK) else None
        home = os.environ.get("JAVA_HOME")
        if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
            return os.path.join(home, "bin", "java")
        return shutil.which("java")

    @staticmethod
    def classpath() -> Optional[str]:
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
    def unavailable(cls) -> Optional[str]:
        """Why local Java servers cannot run here, or None if they can."""
        if cls.java() is None:
            if os.environ.get(ENV_JAVA):
                return f"${ENV_JAVA}={os.environ[ENV_JAVA]!r} is not an executable java"
            return f"no java (install a JRE, or set ${ENV_JAVA} or $JAVA_HOME)"
        if cls.classpath() is None:
            return (
                "no ZooKeeper installation (Debian: apt-get install zookeeper; or set "
                f"$ZOOKEEPER_HOME or ${ENV_CLASSPATH})"
            )
        return None

    # ---------------------------------------------------------------------------- lifecycle
    def start(self) -> str:
        """Write each server's configuration, start them, wait until they serve.

        Returns the connect string. Raises :class:`PortInUseError`, or
        :class:`ZooKeeperStartError` (its message ends with the server's last log lines) after
        stopping whatever it started.
        """
        if self._procs:
            raise HarnessError("LocalZooKeeper already started")
        java, classpath = self.java(), self.classpath()
        if java is None or classpath is None:
            raise HarnessError(str(self.unavailable()))
        try:
            self._ports = loopback_ports(self.size, self.first_port)
            peers = free_loopback_ports(2 * self.size) if self.size > 1 else []
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
                            start_new_session=True,  # a Ctrl-C reaches only us, who stop them
                            preexec_fn=killed_with_this_thread(signal.SIGKILL),
                        )
                    )
            self._wait_serving()
        except BaseException:
            self.stop()
            raise
        return self.connect_string

    def check(self) -> None:
        """Raise :class:`HarnessError` if a server process has exited."""
        exited = self._exited()
        if exited is not None:
            raise HarnessError(exited)

    def stop(self) -> None:
        """SIGTERM every server, SIGKILL those still running after a while; delete the data.

        Safe to call more than once.
        """
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

    def __enter__(self) -> Self:
        """Start the servers (:meth:`start`); leaving the block stops them."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------------------- inspection
    @property
    def connect_string(self) -> str:
        """The kazoo ``hosts`` string of the servers, ``127.0.0.1:<port>,...``."""
        return ",".join(f"{LOOPBACK}:{port}" for port in self._ports)

    # ---------------------------------------------------------------------------- internals
    def _write_config(self, workdir: str, myid: int, port: int, peers: list[int]) -> str:
        data = os.path.join(workdir, "data")
        os.makedirs(data)
        lines = [
            f"tickTime={self.tick_time}",
            "initLimit=50",
            "syncLimit=10",
            f"dataDir={data}",
            f"clientPort={port}",
            f"clientPortAddress={LOOPBACK}",
            f"minSessionTimeout={self._sessions[0]}",
            f"maxSessionTimeout={self._sessions[1]}",
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
        deadline = time.monotonic() + self.startup_timeout
        while True:
            exited = self._exited()
            if exited is not None:
                raise ZooKeeperStartError(exited)
            if _settled([server_mode(LOOPBACK, port, timeout=0.5) for port in self._ports]):
                return
            if time.monotonic() > deadline:
                raise ZooKeeperStartError(
                    f"not serving after {self.startup_timeout:g} s{self._log_tail()}"
                )
            time.sleep(_POLL)

    def _exited(self) -> Optional[str]:
        """What went wrong if a server process has exited, else None."""
        for i, proc in enumerate(self._procs, start=1):
            if proc.poll() is not None:
                return f"ZooKeeper server {i} exited with status {proc.returncode}{self._log_tail(i)}"
        return None

    def _log_tail(self, server: int = 1, lines: int = 15) -> str:
        if self._dir is None:
            return ""
        try:
            with open(os.path.join(self._dir, f"zk{server}", "zookeeper.log"), errors="replace") as log:
                tail = log.readlines()[-lines:]
        except OSError:
            return ""
        return "\n--- last lines of its log ---\n" + "".join(tail).rstrip()


def _settled(modes: list[Optional[str]]) -> bool:
    """True when one server is standalone, or one of several leads and the others follow."""
    if len(modes) == 1:
        return modes[0] == "standalone"
    return sorted(str(m) for m in modes) == ["follower"] * (len(modes) - 1) + ["leader"]

