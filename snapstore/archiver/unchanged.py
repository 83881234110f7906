"""Unchanged files: a file that looks as it did in the parent snapshot is not read again.

The files source records what `lstat` said of each file in its node's `extra` (SPEC.md
section 9): `inode`, `device` and `ctime_ns`. A file is *unchanged* when its size, mtime_ns,
ctime_ns, inode and device all equal those of the node at the same path in the parent
snapshot; its new node then takes the parent's content (chunk ids or chunk lists) and the
file is never opened, as restic's `fileChanged` and borg's files cache decide. When nothing
else differs either (mode, owner, names, every `extra` fact: `keeps_node`), the new node is
the parent's node object itself, and the directory's tree comes out byte for byte the same.

Why each fact: size and mtime are what a program usually changes, but mtime can be set back
(`touch -d`, `tar -x`, `rsync -t`); ctime cannot be set by a program (any write, chmod or
rename sets it to now); inode and device tell a file replaced by another one (a
save-to-temporary-and-rename, `rsync` without `--inplace`) that kept size and times.

Filesystems where these are unstable: NFS, SMB and FUSE filesystems may number inodes anew
at each mount, and device numbers can change across reboots (LVM, btrfs subvolumes, network
mounts), which makes every file look changed (read again, never wrong). `ignore_inode`
stops comparing inode and device and, as restic's `--ignore-inode` does, ctime too (it is as
unreliable there); `ignore_ctime` stops comparing ctime alone.

An entry without those facts (a stream: stdin, pg_dump, Redis) is never unchanged, and
neither is a node written without them (older snapshots, other sources): such files are read.

The reused content must still be in the repository: a parent whose blobs are gone (a damaged
repository, a pack lost) must not produce a snapshot that names missing blobs. So every chunk
id must be in the index as a data blob and their plaintext lengths must add up to the size;
otherwise the file is read. That costs one index lookup per chunk, and for a file of chunk
lists one read of each list (about 64 KiB of ids per 2048 chunks), never the file's data.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from snapstore.archiver.detect import PROFILE_KEY
from snapstore.archiver.parent import parent_chunk_ids
from snapstore.archiver.source import SourceEntry
from snapstore.ids import ID_SIZE
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.tree import Node, NodeType

#: The `extra` keys the files source writes from `lstat`, compared besides size and mtime.
INODE, DEVICE, CTIME = "inode", "device", "ctime_ns"
STAT_FACTS = (INODE, DEVICE, CTIME)
#: Up to this many chunk ids are looked up one by one, more in one vectorised search.
_LOOKUP_ONE_BY_ONE = 16


@dataclass(frozen=True)
class ChangeRule:
    """Which stat facts must match for a file to count as unchanged."""

    ignore_inode: bool = False  # also ignores the device and ctime (restic's --ignore-inode)
    ignore_ctime: bool = False

    @property
    def compared(self) -> tuple[str, ...]:
        """The `extra` keys compared, besides size and mtime_ns."""
        if self.ignore_inode:
            return ()
        return (INODE, DEVICE) if self.ignore_ctime else STAT_FACTS


def has_stat_facts(entry: SourceEntry) -> bool:
    """Whether the entry is a file on a filesystem (a stream never is unchanged)."""
    extra = entry.extra
    return INODE in extra and DEVICE in extra and CTIME in extra


def is_unchanged(entry: SourceEntry, node: Node, rule: ChangeRule) -> bool:
    """Whether `entry` is the file `node` recorded (see the module docstring)."""
    if not has_stat_facts(entry) or node.type is not NodeType.FILE:
        return False
    extra = entry.extra
    if node.size != entry.size or node.mtime_ns != entry.mtime_ns:
        return False
    recorded = node.extra
    for key in rule.compared:
        if key not in recorded or recorded[key] != extra[key]:
            return False
    return True


def keeps_node(entry: SourceEntry, node: Node) -> bool:
    """Whether the unchanged file's new node, given `node`'s content, is `node` field for
    field, its `extra` in the same order (the chunking profile it was cut with last).

    Then the archiver keeps the parent's node itself, not a copy: a directory of 200,000
    unchanged files holds 200,000 nodes, not twice as many. Every field of a file node is
    compared here; a test fails when Node gains one.
    """
    if (
        entry.mode != node.mode
        or entry.uid != node.uid
        or entry.gid != node.gid
        or entry.user != node.user
        or entry.group != node.group
        or entry.mtime_ns != node.mtime_ns
        or entry.size != node.size
    ):
        return False
    new, recorded = entry.extra, node.extra
    if len(recorded) != len(new) + (PROFILE_KEY in recorded):
        return False
    return all(map(operator.eq, new.items(), recorded.items()))  # in order, up to the profile


def content_in_index(repo: Repository, node: Node) -> bool:
    """Whether every data blob the node names is indexed and they add up to its size."""
    if not node.content and not node.content_lists:
        return node.size == 0  # an empty file
    if node.content_lists:
        lists = repo.index.lookup_run(b"".join(bytes(i) for i in node.content_lists))
        if any(loc is None or loc.type is not BlobType.DATA for loc in lists):
            return False
        ids = parent_chunk_ids(repo, node)  # empty when a list cannot be read
        if not ids:
            return False
    else:
        ids = b"".join(bytes(i) for i in node.content)
    if len(ids) % ID_SIZE:
        return False
    if len(ids) <= _LOOKUP_ONE_BY_ONE * ID_SIZE:  # a media file's few chunks: no numpy setup
        found = [repo.index.lookup(ids[i : i + ID_SIZE]) for i in range(0, len(ids), ID_SIZE)]
    else:
        found = repo.index.lookup_run(ids)
    total = 0
    for location in found:
        if location is None or location.type is not BlobType.DATA:
            return False
        total += location.plain_length
    return total == node.size
