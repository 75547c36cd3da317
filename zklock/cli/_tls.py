"""TLS options of the commands that connect to ZooKeeper: what they are and what kazoo gets.

``--tls-ca``, ``--tls-cert`` and ``--tls-key`` (or ``$ZKLOCK_TLS_CA``, ``$ZKLOCK_TLS_CERT``,
``$ZKLOCK_TLS_KEY``) name PEM files; any of them, or ``--tls``, makes the connection use TLS
(kazoo's ``use_ssl``). The server's certificate is always verified, against the given CA only
or else the system's, and must name the host in ``--hosts`` unless ``--tls-no-hostname-check``.
The files are checked before connecting, so a wrong path or a key that does not fit its
certificate is a usage error (exit 64) rather than a connection that never comes up.

The connection is made with the context built here (:class:`_ContextTlsHandler`), not with
the one kazoo builds from its ``ca`` option: kazoo's always trusts the system's CAs as well,
so any certificate a public CA signed would pass, which ``--tls-ca`` is there to prevent.
"""

from __future__ import annotations

import argparse
import os
import ssl
from typing import Any, NoReturn, Optional

from kazoo.handlers.threading import SequentialThreadingHandler

from ._errors import CommandLineError

__all__ = ["ENV_TLS_CA", "ENV_TLS_CERT", "ENV_TLS_KEY", "add_tls_options", "tls_options"]

ENV_TLS_CA = "ZKLOCK_TLS_CA"
ENV_TLS_CERT = "ZKLOCK_TLS_CERT"
ENV_TLS_KEY = "ZKLOCK_TLS_KEY"


def add_tls_options(group: argparse._ArgumentGroup) -> None:
    """Add ``--tls``, ``--tls-ca``, ``--tls-cert``, ``--tls-key``, ``--tls-no-hostname-check``."""
    group.add_argument(
        "--tls",
        action="store_true",
        help="connect over TLS (implied by the --tls-* file options), verifying the server "
        "against the system's CAs unless --tls-ca is given",
    )
    group.add_argument(
        "--tls-ca",
        metavar="FILE",
        default=None,
        help=f"PEM file of the CA(s) that signed the server's certificate (default: ${ENV_TLS_CA})",
    )
    group.add_argument(
        "--tls-cert",
        metavar="FILE",
        default=None,
        help="PEM file of the client certificate, for servers that require one "
        f"(with --tls-key; default: ${ENV_TLS_CERT})",
    )
    group.add_argument(
        "--tls-key",
        metavar="FILE",
        default=None,
        help=f"PEM file of the client certificate's private key, not encrypted (default: ${ENV_TLS_KEY})",
    )
    group.add_argument(
        "--tls-no-hostname-check",
        action="store_true",
        help="accept a server certificate that does not name the host in --hosts "
        "(it must still be signed by a trusted CA)",
    )


def tls_options(args: argparse.Namespace, prog: str = "zklock") -> dict[str, Any]:
    """``KazooClient`` keyword arguments for the TLS options (empty without TLS).

    Raises :class:`CommandLineError` when a file is missing or unreadable, is not what it
    should be, or a certificate comes without its key (or a key without its certificate).
    """
    ca, ca_name = _chosen(getattr(args, "tls_ca", None), "--tls-ca", ENV_TLS_CA, prog)
    cert, cert_name = _chosen(getattr(args, "tls_cert", None), "--tls-cert", ENV_TLS_CERT, prog)
    key, key_name = _chosen(getattr(args, "tls_key", None), "--tls-key", ENV_TLS_KEY, prog)
    if not (getattr(args, "tls", False) or ca or cert or key):
        if getattr(args, "tls_no_hostname_check", False):
            _usage("--tls-no-hostname-check needs TLS (--tls or a --tls-* file)", prog)
        return {}
    if bool(cert) != bool(key):
        missing = f"--tls-key or ${ENV_TLS_KEY}" if cert else f"--tls-cert or ${ENV_TLS_CERT}"
        _usage(
            f"{cert_name if cert else key_name} without {missing}: a client certificate "
            "and its key go together",
            prog,
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        _readable(ca_name, ca, prog)
        try:
            context.load_verify_locations(cafile=ca)
        except (ssl.SSLError, ValueError) as error:
            _usage(f"{ca_name} {ca!r}: not a PEM CA certificate ({_reason(error)})", prog)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if cert and key:
        _readable(cert_name, cert, prog)
        _readable(key_name, key, prog)
        try:
            # A password callback that refuses: an encrypted key fails here instead of
            # OpenSSL prompting on the terminal.
            context.load_cert_chain(cert, key, password=_no_password)
        except _EncryptedKey:
            _usage(f"{key_name} {key!r}: the key is encrypted; give an unencrypted key", prog)
        except (ssl.SSLError, ValueError) as error:
            _usage(
                f"{cert_name} {cert!r} / {key_name} {key!r}: not a PEM certificate and its "
                f"matching private key ({_reason(error)})",
                prog,
            )
    # PROTOCOL_TLS_CLIENT already requires a verified certificate and checks the name.
    context.check_hostname = not getattr(args, "tls_no_hostname_check", False)
    return {"use_ssl": True, "handler": _ContextTlsHandler(context)}


class _ContextTlsHandler(SequentialThreadingHandler):  # type: ignore[misc]  # kazoo is untyped
    """kazoo's stock handler, whose TLS connections use one given ``ssl.SSLContext``.

    kazoo's own ``create_connection`` builds a context per connection from the client's
    options, and always loads the system's CAs into it before the ``ca`` file: there is no
    way to trust one CA alone through those options.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._context = context

    def create_connection(
        self,
        address: tuple[str, int],
        hostname: Optional[str] = None,
        timeout: Optional[float] = None,
        use_ssl: bool = False,
        **_kazoo_tls_options: Any,  # ca, certfile...: already in the context
    ) -> Any:
        """Connect with kazoo's plain TCP path, then (``use_ssl``) shake hands with the context.

        The handshake is bounded by the same ``timeout`` as the connect, as in kazoo's.
        """
        sock = super().create_connection(address, timeout=timeout)
        if not use_ssl:
            return sock
        try:
            # The context checks the certificate against hostname, as kazoo's does when its
            # check_hostname is on: the name the client was given in its hosts.
            return self._context.wrap_socket(sock, server_hostname=hostname)
        except BaseException:
            sock.close()
            raise


class _EncryptedKey(Exception):
    """The private key asks for a password."""


def _no_password() -> str:
    raise _EncryptedKey


def _chosen(value: Optional[str], option: str, env: str, prog: str) -> tuple[Optional[str], str]:
    """The option's value, else the environment variable's; and the name to show in errors."""
    if value is not None:
        if not value.strip():
            _usage(f"{option}: an empty file name", prog)
        return value, option
    return os.environ.get(env, "").strip() or None, f"${env}"


def _readable(option: str, path: str, prog: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        _usage(f"{option} {path!r}: {error.strerror or error}", prog)


def _reason(error: BaseException) -> str:
    return str(getattr(error, "reason", None) or error)


def _usage(message: str, prog: str) -> NoReturn:
    raise CommandLineError(message, prog)
