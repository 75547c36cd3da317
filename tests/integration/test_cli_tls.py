"""The ``zklock`` command over TLS (``--tls-ca``, ``--tls-cert``, ``--tls-key`` and their
``ZKLOCK_TLS_*`` variables) against the harness's TLS-enabled ZooKeeper, run as subprocesses.

``exec`` and ``status`` work over TLS, with digest authentication on top; an untrusted server
(a CA other than ``--tls-ca``'s, even one of the system's; a certificate not naming the host)
or a plain connection to the TLS port is "unreachable" (69) with kazoo's reason; bad TLS
options are usage errors (64) before any connection is tried.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization

from zklock.testing import TcpProxy, TlsCertificates, ZooKeeperTlsServer

CLI = [sys.executable, "-m", "zklock.cli"]
SHOW_TOKEN = "import os; print('token', os.environ['ZKLOCK_TOKEN'])"
ALICE = "alice:secret"  # the identity tls_path (conftest.py) cleans up as
_CLEARED = ("ZKLOCK_HOSTS", "ZKLOCK_AUTH", "ZKLOCK_TLS_CA", "ZKLOCK_TLS_CERT", "ZKLOCK_TLS_KEY")


def zklock_run(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(extra_env)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env)


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def tls_args(server: ZooKeeperTlsServer) -> list[str]:
    certs = server.certificates
    return [
        "--hosts", server.connect_string,
        "--tls-ca", certs.ca, "--tls-cert", certs.client_cert, "--tls-key", certs.client_key,
    ]


def test_exec_over_tls(zookeeper_tls, tls_path):
    lock = f"{tls_path}/job"
    first = zklock_run("exec", *tls_args(zookeeper_tls), lock, "--", sys.executable, "-c", SHOW_TOKEN)
    assert first.returncode == 0, explain(first)
    second = zklock_run("exec", *tls_args(zookeeper_tls), lock, "--", sys.executable, "-c", SHOW_TOKEN)
    assert second.returncode == 0, explain(second)
    tokens = [int(re.search(r"token (\d+)", r.stdout).group(1)) for r in (first, second)]  # type: ignore[union-attr]
    assert 0 < tokens[0] < tokens[1]


def test_exec_and_status_with_the_environment_and_digest_auth(tls_env, tls_path):
    lock = f"{tls_path}/job"
    ran = zklock_run("exec", "--auth", f"digest:{ALICE}", lock, "--", "true", **tls_env)
    assert ran.returncode == 0, explain(ran)
    status = zklock_run("status", "--json", lock, **tls_env)
    assert status.returncode == 0, explain(status)
    assert json.loads(status.stdout)["holder"] is None


def test_a_certificate_not_naming_the_host_is_refused_unless_the_check_is_off(zookeeper_tls, tls_path):
    # The server's certificate names 127.0.0.1 and localhost; through 127.0.0.2 the same
    # server is reached by an address it does not name.
    with TcpProxy(zookeeper_tls.connect_string, listen_host="127.0.0.2") as proxy:
        certs = zookeeper_tls.certificates
        options = [
            "--hosts", proxy.connect_string, "--connect-timeout", "2",
            "--tls-ca", certs.ca, "--tls-cert", certs.client_cert, "--tls-key", certs.client_key,
        ]
        refused = zklock_run("exec", *options, f"{tls_path}/job", "--", "true")
        assert refused.returncode == 69, explain(refused)
        assert re.search(r"CERTIFICATE_VERIFY_FAILED.*(?i:mismatch|match)", refused.stderr), explain(refused)

        ran = zklock_run("exec", *options, "--tls-no-hostname-check", f"{tls_path}/job", "--", "true")
        assert ran.returncode == 0, explain(ran)


def test_tls_ca_is_the_only_ca_trusted(zookeeper_tls, tls_path, tmp_path):
    # The server's CA made a CA of the system's (the store SSL_CERT_FILE names), and --tls-ca
    # naming another: the server must be refused, as if no public CA existed.
    other = TlsCertificates.create(str(tmp_path / "other"))
    certs = zookeeper_tls.certificates
    options = [
        "--hosts", zookeeper_tls.connect_string, "--connect-timeout", "2",
        "--tls-ca", other.ca, "--tls-cert", certs.client_cert, "--tls-key", certs.client_key,
    ]
    system = {"SSL_CERT_FILE": certs.ca, "SSL_CERT_DIR": str(tmp_path)}
    refused = zklock_run("exec", *options, f"{tls_path}/job", "--", "true", **system)
    assert refused.returncode == 69, explain(refused)
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr, explain(refused)

    # With no --tls-ca, the system's CAs are the ones trusted.
    system_only = [o for o in options if o not in ("--tls-ca", other.ca)]
    ran = zklock_run("exec", *system_only, f"{tls_path}/job", "--", "true", **system)
    assert ran.returncode == 0, explain(ran)


@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        ("system CAs only", r"CERTIFICATE_VERIFY_FAILED"),
        ("no TLS", r"(?i)connection broken|reset|eof|closed"),
    ],
)
def test_an_untrusted_or_plain_connection_is_unreachable(zookeeper_tls, tls_path, refusal, reason):
    hosts = ["--hosts", zookeeper_tls.connect_string, "--connect-timeout", "2"]
    tls = ["--tls"] if refusal == "system CAs only" else []
    result = zklock_run("exec", *hosts, *tls, f"{tls_path}/job", "--", "true")
    assert result.returncode == 69, explain(result)
    assert "could not connect to ZooKeeper" in result.stderr
    assert re.search(reason, result.stderr), explain(result)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TlsCertificates:
    return TlsCertificates.create(tmp_path_factory.mktemp("cli-tls"))


def _bad_options(certs: TlsCertificates, tmp: str) -> list[tuple[list[str], str]]:
    not_pem = os.path.join(tmp, "not-pem.txt")
    with open(not_pem, "w") as file:
        file.write("hello\n")
    encrypted = os.path.join(tmp, "encrypted-key.pem")
    with open(certs.client_key, "rb") as file:
        key = serialization.load_pem_private_key(file.read(), password=None)
    with open(encrypted, "wb") as file:
        file.write(key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        ))
    return [
        (["--tls-ca", os.path.join(tmp, "missing.pem")], r"--tls-ca '.*missing\.pem': No such file"),
        (["--tls-ca", not_pem], r"--tls-ca '.*': not a PEM CA certificate"),
        (["--tls-ca", ""], r"--tls-ca: an empty file name"),
        (["--tls-cert", certs.client_cert], r"--tls-cert without --tls-key or \$ZKLOCK_TLS_KEY"),
        (["--tls-key", certs.client_key], r"--tls-key without --tls-cert or \$ZKLOCK_TLS_CERT"),
        (
            ["--tls-cert", certs.client_cert, "--tls-key", certs.server_key],
            r"not a PEM certificate and its matching private key",
        ),
        (["--tls-cert", certs.client_cert, "--tls-key", encrypted], r"the key is encrypted"),
        (["--tls-no-hostname-check"], r"--tls-no-hostname-check needs TLS"),
        (["--auth", "nocolon"], r"SCHEME:CREDENTIAL"),
    ]


def test_bad_tls_options_are_usage_errors(certs, tmp_path):
    # Checked before connecting: the port need not even be open.
    for options, message in _bad_options(certs, str(tmp_path)):
        result = zklock_run("exec", "--hosts", "127.0.0.1:1", *options, "/l", "--", "true")
        assert result.returncode == 64, f"{options}: {explain(result)}"
        assert re.search(message, result.stderr), f"{options}: {explain(result)}"


def test_a_missing_file_named_by_the_environment_is_a_usage_error(tmp_path):
    missing = str(tmp_path / "ca.pem")
    result = zklock_run("status", "--hosts", "127.0.0.1:1", "/l", ZKLOCK_TLS_CA=missing)
    assert result.returncode == 64, explain(result)
    assert "$ZKLOCK_TLS_CA" in result.stderr and "No such file" in result.stderr
