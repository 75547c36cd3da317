"""Fixtures shared by the integration test modules (the zklock.testing plugin has the rest)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from zklock.testing import ZooKeeperTlsServer, assert_no_znodes

TLS_ADMIN_DIGEST = "alice:secret"
"""The digest identity of the clean-up client: tests that lock as it may leave owner-only ACLs."""


@pytest.fixture
def tls_path(zookeeper_tls: ZooKeeperTlsServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh path on the TLS server; no ephemeral node may be left under it, then it is removed.

    The clean-up client uses the same server's plain port, authenticated as
    ``TLS_ADMIN_DIGEST`` so that it may delete what a test created with those credentials.
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:60]
    root = f"/zklock-test-tls/{name}-{uuid.uuid4().hex[:8]}"
    admin = KazooClient(
        hosts=zookeeper_tls.plain_connect_string, auth_data=[("digest", TLS_ADMIN_DIGEST)]
    )
    admin.start(timeout=15)
    try:
        yield root
        try:
            assert_no_znodes(admin, root, ephemeral_only=True)
        finally:
            if admin.exists(root):
                admin.delete(root, recursive=True)
    finally:
        admin.stop()
        admin.close()


@pytest.fixture
def tls_env(zookeeper_tls: ZooKeeperTlsServer) -> dict[str, str]:
    """The ``ZKLOCK_*`` variables that point the CLI and the examples at the TLS server."""
    certs = zookeeper_tls.certificates
    return {
        "ZKLOCK_HOSTS": zookeeper_tls.connect_string,
        "ZKLOCK_TLS_CA": certs.ca,
        "ZKLOCK_TLS_CERT": certs.client_cert,
        "ZKLOCK_TLS_KEY": certs.client_key,
    }
