"""Who may touch a lock's nodes: the ACL zklock gives lock nodes and the parents it creates.

In ZooKeeper, deleting a node takes DELETE permission on its *parent*, and joining a lock's
queue takes CREATE permission there.  So the parent's ACL decides who can contend for a lock,
and who could delete (steal) a holder's node; the node's own ACL decides who can change it.

zklock's default (:func:`default_acl`) is safe as soon as the client authenticates (for
example ``KazooClient(auth_data=[("digest", "locks:secret")])``): the nodes it creates get
:func:`owner_with_world_read`, so every client with the same credentials can contend, and
everyone else can read the queue (see who holds the lock) but neither join it nor delete a
holder's node.  Without credentials ZooKeeper cannot tell clients apart, and the default is
kazoo's: the client's ``default_acl``, else open.  Nodes that already exist keep their ACL.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from kazoo.client import KazooClient
from kazoo.security import ACL, Id, Permissions

from .errors import InvalidAcl

__all__ = ["default_acl", "owner_with_world_read"]

_AUTH_SCHEME = "auth"  # ZooKeeper's "whoever creates the node": every id its session authenticated


def owner_with_world_read() -> list[ACL]:
    """The creator's authenticated identities may do everything; anyone may read.

    Needs an authenticated client (ZooKeeper refuses the ``auth`` scheme otherwise).
    """
    return [ACL(Permissions.ALL, Id(_AUTH_SCHEME, "")), ACL(Permissions.READ, Id("world", "anyone"))]


def default_acl(client: KazooClient) -> list[ACL] | None:
    """The ACL zklock uses when none is given; ``None`` means kazoo's default.

    :func:`owner_with_world_read` when the client has credentials (``auth_data``) and no
    ``default_acl`` of its own; otherwise ``None``, so kazoo applies the client's
    ``default_acl``, or an open ACL.
    """
    if client.default_acl or not client.auth_data:
        return None
    return owner_with_world_read()


def check_acl(acl: object, client: KazooClient) -> list[ACL] | None:
    """Return ``acl`` as a list if it is usable by ``client``, else raise :class:`InvalidAcl`."""
    if acl is None:
        return None
    if isinstance(acl, ACL) or not isinstance(acl, Sequence) or isinstance(acl, (str, bytes)):
        raise InvalidAcl(f"acl must be a list of kazoo.security.ACL, not {type(acl).__name__}")
    entries = list(acl)
    if not entries:
        raise InvalidAcl("acl must not be empty: nobody could use, read or delete the nodes")
    for entry in entries:
        if not isinstance(entry, ACL):
            raise InvalidAcl(f"acl entries must be kazoo.security.ACL, not {type(entry).__name__}")
        perms, ident = entry.perms, entry.id
        if (
            isinstance(perms, bool)
            or not isinstance(perms, int)
            or not perms & Permissions.ALL
            or perms & ~Permissions.ALL
        ):
            # Not {entry!r}: kazoo's ACL.__repr__ fails on permissions that are not an int.
            raise InvalidAcl(f"acl entry with id {ident!r} has invalid permissions {perms!r}")
        if not (isinstance(ident, Id) and isinstance(ident.scheme, str) and isinstance(ident.id, str)):
            raise InvalidAcl(f"acl entry id {ident!r} must be a kazoo.security.Id of two strings")
        _check_id(ident)
    if any(entry.id.scheme == _AUTH_SCHEME for entry in entries) and not client.auth_data:
        raise InvalidAcl(
            "an ACL with the 'auth' scheme needs an authenticated client "
            "(KazooClient(auth_data=...) or client.add_auth())"
        )
    # Waiting takes READ on every contender node (the watch on the node ahead is a getData)
    # and on the parents this lock creates (the listing); releasing takes DELETE there.
    # CREATE is not asked for: on a lock path made beforehand (the way to restrict who may
    # contend) the ACL reaches only the contender nodes, where CREATE means nothing.
    for permission, name, why in _NEEDED:
        if not any(entry.perms & permission for entry in entries):
            raise InvalidAcl(f"acl grants {name} to nobody: {why}")
    return entries


def _check_id(ident: Id) -> None:
    """Refuse the ids of ZooKeeper's own schemes that every server refuses (``InvalidACL``).

    Other schemes (``ip``, ``x509``, ``sasl``, a server's own plug-ins) are the server's to
    judge: a refusal comes back from the create as :class:`InvalidAcl` too.
    """
    if ident.scheme == "world" and ident.id != "anyone":
        raise InvalidAcl(f"acl entry id {ident!r}: the 'world' scheme has the one id 'anyone'")
    if ident.scheme == "digest" and not _is_digest_id(ident.id):
        raise InvalidAcl(
            f"acl entry id {ident!r}: a 'digest' id is 'user:base64-digest' (as "
            "kazoo.security.make_digest_acl_credential makes it), not a password"
        )


#: Sizes in bytes of the digests a server may be set to use (``digestAlg``): SHA-1 by
#: default, SHA-224/SHA3-224, SHA-256/SHA3-256, SHA-384/SHA3-384, SHA-512/SHA3-512.
_DIGEST_SIZES = frozenset({20, 28, 32, 48, 64})


def _is_digest_id(ident: str) -> bool:
    """``user:digest`` where the digest is the base64 of a hash, not a password.

    ZooKeeper itself only counts the parts, so an entry with a password where its digest
    belongs would be stored and match nobody: a lock path nobody but the super user could use.
    """
    _user, colon, digest = ident.partition(":")
    if not colon or ":" in digest:
        return False
    try:
        return len(base64.b64decode(digest, validate=True)) in _DIGEST_SIZES
    except binascii.Error:
        return False


_NEEDED = (
    (Permissions.DELETE, "DELETE", "no holder could release the lock"),
    (Permissions.READ, "READ", "no waiter could list the queue or watch the node ahead"),
)
