"""Throwaway TLS certificates for tests: a CA, a server certificate and a client certificate.

Made at test time with the ``cryptography`` package (part of ``zklock[testing]``), valid for a
day, EC P-256 keys, never encrypted. The server certificate names ``127.0.0.1`` and
``localhost`` (and any other names asked for), so clients may check host names. The files are
PEM; ZooKeeper (3.6 and later) reads them with ``ssl.keyStore.type=PEM``, and
:attr:`TlsCertificates.server_keystore` holds the server's key and certificate chain in the one
file ZooKeeper's PEM key store wants.

The directory and its files are world-readable on purpose: a container's ZooKeeper may run
as another user (the official image runs as ``zookeeper``) and reads them through a bind
mount. They protect nothing but a throwaway test server.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["TlsCertificates"]

_VALID_FOR = datetime.timedelta(days=1)
_CLOCK_SKEW = datetime.timedelta(minutes=5)  # valid a little before "now", for a skewed clock


@dataclass(frozen=True)
class TlsCertificates:
    """Paths of a CA, a server and a client certificate with their keys, all PEM files.

    ::

        certs = TlsCertificates.create(tmp_path)          # or tempfile.mkdtemp()
        client = KazooClient(hosts, **certs.kazoo_options())

    ``other_ca`` is a second, unrelated CA (nothing is signed by it): a client that trusts
    only it cannot verify the server.
    """

    directory: str
    """Where the files are."""
    ca: str
    """The CA's certificate (what clients and the server trust)."""
    server_cert: str
    """The server's certificate, signed by the CA (SAN: the names given to :meth:`create`)."""
    server_key: str
    """The server's private key (PKCS#8, not encrypted)."""
    server_keystore: str
    """The server's key followed by its certificate and the CA's: ZooKeeper's PEM key store."""
    client_cert: str
    """A client certificate signed by the CA (for servers that require client certificates)."""
    client_key: str
    """The client's private key (PKCS#8, not encrypted)."""
    other_ca: str
    """The certificate of an unrelated CA, which signed nothing here."""

    @classmethod
    def create(
        cls,
        directory: Union[str, os.PathLike[str]],
        *,
        server_names: Sequence[str] = ("127.0.0.1", "localhost"),
    ) -> TlsCertificates:
        """Make a CA and the certificates in ``directory`` (created if missing) and return them.

        ``server_names`` are the server certificate's subject alternative names: IP addresses
        become IP entries, anything else DNS names.
        """
        if not server_names:
            raise ValueError("the server certificate needs at least one name")
        from cryptography.hazmat.primitives.asymmetric import ec

        root = os.fspath(directory)
        os.makedirs(root, exist_ok=True)
        os.chmod(root, 0o755)  # a container's ZooKeeper user must be able to read the files
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key, "zklock test CA")
        other_key = ec.generate_private_key(ec.SECP256R1())
        other_ca = _ca_certificate(other_key, "zklock unrelated test CA")
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_cert = _leaf_certificate(
            server_key, ca_key, ca_cert, "zklock test server", server_names, server=True
        )
        client_key = ec.generate_private_key(ec.SECP256R1())
        client_cert = _leaf_certificate(
            client_key, ca_key, ca_cert, "zklock test client", (), server=False
        )

        def path(name: str) -> str:
            return os.path.join(root, name)

        certs = cls(
            directory=root,
            ca=path("ca.pem"),
            server_cert=path("server.pem"),
            server_key=path("server-key.pem"),
            server_keystore=path("server-keystore.pem"),
            client_cert=path("client.pem"),
            client_key=path("client-key.pem"),
            other_ca=path("other-ca.pem"),
        )
        _write(certs.ca, _cert_pem(ca_cert))
        _write(certs.other_ca, _cert_pem(other_ca))
        _write(certs.server_cert, _cert_pem(server_cert))
        _write(certs.server_key, _key_pem(server_key))
        _write(certs.server_keystore, _key_pem(server_key) + _cert_pem(server_cert) + _cert_pem(ca_cert))
        _write(certs.client_cert, _cert_pem(client_cert))
        _write(certs.client_key, _key_pem(client_key))
        return certs

    def kazoo_options(self, *, client_certificate: bool = True) -> dict[str, Any]:
        """``KazooClient`` keyword arguments for TLS that trusts the CA (and presents the client cert)."""
        options: dict[str, Any] = {"use_ssl": True, "verify_certs": True, "ca": self.ca}
        if client_certificate:
            options.update(certfile=self.client_cert, keyfile=self.client_key)
        return options


def _name(common_name: str) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zklock.testing"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    from cryptography import x509

    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + _VALID_FOR)
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """Digital signatures (ECDSA keys), plus certificate and CRL signing for a CA."""
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=signs_certificates,
        crl_sign=signs_certificates, encipher_only=False, decipher_only=False,
    )


def _ca_certificate(key: ec.EllipticCurvePrivateKey, common_name: str) -> x509.Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    name = _name(common_name)
    return (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    names: Sequence[str],
    *,
    server: bool,
) -> x509.Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    builder = (
        _builder(_name(common_name), ca_cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256())


def _general_name(name: str) -> x509.GeneralName:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _cert_pem(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)
    os.chmod(path, 0o644)
