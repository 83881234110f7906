"""Extended attributes in a node (SPEC.md section 9), POSIX ACLs among them.

A file or directory node read from a filesystem that has extended attributes carries them in
`extra` as `"xattrs": [[name, value], ...]`: both msgpack `bin`, sorted by name, names as the
kernel spells them (`user.comment`, `security.selinux`, and the ACLs `system.posix_acl_access`
and `system.posix_acl_default`, whose values are the kernel's binary ACL format). A node
without attributes has no such key. Restoring them is best effort: `security.*` and
`trusted.*` only when restoring owners (as root), and a filesystem that refuses one is a
warning, not an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: The `extra` key holding the attributes.
XATTRS = "xattrs"
#: Name prefixes only a privileged process may set (and that mean nothing elsewhere).
PRIVILEGED = (b"security.", b"trusted.")


def encode_xattrs(pairs: Iterable[tuple[bytes, bytes]]) -> list[list[bytes]]:
    """The `extra` value for these attributes, sorted by name."""
    return [[name, value] for name, value in sorted(pairs)]


def decode_xattrs(extra: Mapping[str, object]) -> list[tuple[bytes, bytes]]:
    """The attributes a node records (malformed entries are left out)."""
    raw = extra.get(XATTRS)
    if not isinstance(raw, list):
        return []
    pairs = []
    for item in raw:
        if (isinstance(item, list) and len(item) == 2
                and isinstance(item[0], bytes) and isinstance(item[1], bytes) and item[0]):  # fmt: skip
            pairs.append((item[0], item[1]))
    return pairs
