"""A ZooKeeper container with a TLS client port, for tests of clients that connect over TLS.

The server runs ZooKeeper's Netty connection factory (the NIO one has no TLS) with two client
ports: the usual plain one, which the harness uses to see that the server is up and to clean
up, and ``secureClientPort`` 2281, which speaks only TLS. Its key store and trust store are the
PEM files of a :class:`TlsCertificates` (ZooKeeper >= 3.6 reads PEM), bind-mounted read-only,
and by default it requires a client certificate signed by the test CA (``ssl.clientAuth=need``).
The configuration goes through ``ZOO_CFG_EXTRA``, so it works with the official ``zookeeper``
image and with ``zklock-zookeeper`` alike.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from ._container import ZooKeeperContainer
from ._errors import ZooKeeperStartError
from ._settings import LOOPBACK
from ._tls import TlsCertificates

if TYPE_CHECKING:
    from typing import Self

__all__ = [
    "CLIENT_AUTH_MODES",
    "SECURE_CLIENT_PORT",
    "TLS_DIRECTORY",
    "ZooKeeperTlsContainer",
    "ZooKeeperTlsServer",
    "tls_server_config",
    "tls_server_mode",
]

#: The TLS client port inside the container.
SECURE_CLIENT_PORT = 2281
#: Where the certificate directory is mounted inside the container.
TLS_DIRECTORY = "/zklock-tls"
#: ``ssl.clientAuth``: whether the server requires (``need``), asks for (``want``) or ignores
#: (``none``) client certificates.
CLIENT_AUTH_MODES = ("need", "want", "none")
_POLL = 0.1


def tls_server_config(
    certificates: TlsCertificates, directory: str = TLS_DIRECTORY, *, client_auth: str = "need"
) -> dict[str, str]:
    """The zoo.cfg entries of a TLS client port whose PEM files are in ``directory``.

    ``certificates`` names the files (their directory on this machine is mounted at
    ``directory`` in the server's file system).
    """
    if client_auth not in CLIENT_AUTH_MODES:
        raise ValueError(f"client_auth must be one of {CLIENT_AUTH_MODES}, not {client_auth!r}")

    def there(path: str) -> str:
        return f"{directory}/{os.path.basename(path)}"

    return {
        "secureClientPort": str(SECURE_CLIENT_PORT),
        # Only the Netty factory speaks TLS; it serves the plain port as well.
        "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
        # The secure port authenticates each client by its certificate through this provider.
        "authProvider.x509": "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
        "ssl.keyStore.location": there(certificates.server_keystore),
        "ssl.keyStore.type": "PEM",
        "ssl.trustStore.location": there(certificates.ca),
        "ssl.trustStore.type": "PEM",
        "ssl.clientAuth": client_auth,
    }


def tls_server_mode(
    host: str, port: int, certificates: TlsCertificates, timeout: float = 2.0
) -> Optional[str]:
    """``srvr``'s ``Mode:`` asked over TLS (trusting the CA, with the client certificate).

    ``None`` when no TLS connection is made or the server does not answer.
    """
    context = ssl.create_default_context(cafile=certificates.ca)
    context.load_cert_chain(certificates.client_cert, certificates.client_key)
    chunks: list[bytes] = []
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(b"srvr")
                while sum(map(len, chunks)) < 65536:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    chunks.append(chunk)
    except (OSError, ValueError):  # ssl.SSLError is an OSError
        return None
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        if line.startswith("Mode:"):
            return line.partition(":")[2].strip()
    return None


class ZooKeeperTlsContainer(ZooKeeperContainer):
    """A standalone ZooKeeper container with a TLS client port besides the plain one.

    ::

        certs = TlsCertificates.create(directory)
        with ZooKeeperTlsContainer(certs) as zk:
            client = KazooClient(zk.secure_connect_string, **certs.kazoo_options())

    The certificate directory is bind-mounted, so the Docker daemon must be local (as for the
    loopback ports). :meth:`start` returns once the server answers ``srvr`` over TLS.
    Other arguments are :class:`ZooKeeperContainer`'s.
    """

    def __init__(
        self,
        certificates: TlsCertificates,
        image: Optional[str] = None,
        *,
        client_auth: str = "need",
        secure_host_port: Optional[int] = None,
        startup_timeout: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(image, startup_timeout=startup_timeout, **kwargs)
        self.certificates = certificates
        """The certificates the server uses (and that clients need)."""
        self._tls_startup_timeout = startup_timeout
        # docker-py takes (host_ip, host_port) here; testcontainers types the value as a port.
        self.ports[f"{SECURE_CLIENT_PORT}/tcp"] = (LOOPBACK, secure_host_port)  # type: ignore[assignment]
        self.with_volume_mapping(certificates.directory, TLS_DIRECTORY, "ro")
        for key, value in tls_server_config(certificates, client_auth=client_auth).items():
            self.with_config(key, value)

    def start(self) -> Self:
        """Start the container; return once ZooKeeper serves on the TLS port too.

        Raises :class:`ZooKeeperStartError` (with the container's last log lines, after
        removing it) when the TLS port does not answer within the startup timeout.
        """
        super().start()
        try:
            host, port = self.secure_address
            deadline = time.monotonic() + self._tls_startup_timeout
            while tls_server_mode(host, port, self.certificates) is None:
                if time.monotonic() > deadline:
                    raise ZooKeeperStartError(
                        f"ZooKeeper from image {self.image!r} serves its plain port but no TLS on "
                        f"port {SECURE_CLIENT_PORT} within {self._tls_startup_timeout:g} s (does the "
                        f"image have ZooKeeper >= 3.6 with Netty's codec jar on the class path?)",
                        self.logs_tail(),
                    )
                time.sleep(_POLL)
        except BaseException:
            # A timeout, an interrupt or a bad certificate: the caller gets no server to stop.
            self.stop()
            raise
        return self

    @property
    def secure_address(self) -> tuple[str, int]:
        """``(host, port)`` of the TLS client port on the loopback interface."""
        port = self.get_docker_client().port(self.get_wrapped_container().id, SECURE_CLIENT_PORT)
        return LOOPBACK, int(port)

    @property
    def secure_connect_string(self) -> str:
        """The kazoo ``hosts`` string of the TLS port, ``127.0.0.1:<port>``."""
        host, port = self.secure_address
        return f"{host}:{port}"


@dataclass(frozen=True)
class ZooKeeperTlsServer:
    """What the ``zookeeper_tls`` fixture gives: a TLS-only address, its certificates, the rest.

    ``connect_string`` is the TLS port; ``plain_connect_string`` the same server's plain port
    (for setup and clean-up without TLS).
    """

    connect_string: str
    """``127.0.0.1:<port>`` of the TLS client port."""
    plain_connect_string: str
    """``127.0.0.1:<port>`` of the plain client port of the same server."""
    certificates: TlsCertificates
    """CA, client certificate and key (and the server's) as PEM files."""
    container: ZooKeeperTlsContainer
    """The container."""

    def kazoo_options(self, *, client_certificate: bool = True) -> dict[str, Any]:
        """``KazooClient`` keyword arguments that connect to :attr:`connect_string`."""
        return self.certificates.kazoo_options(client_certificate=client_certificate)
