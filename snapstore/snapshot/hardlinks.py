"""Hard links in a snapshot: which file nodes are one file (SPEC.md section 9).

The files source gives a file whose `st_nlink` is above 1 an `nlink` fact in its node's
`extra`, besides its `inode` and `device`. File nodes of one snapshot that have `nlink` and
the same inode and device are links to one file: the archiver reads the first and gives the
others its content without opening them (as restic and borg do), and the restorer creates
the first and links the others to it.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The `extra` key naming how many links the file had at backup time (written only above 1).
NLINK = "nlink"

LinkKey = tuple[int, int]


def link_key(extra: Mapping[str, object]) -> LinkKey | None:
    """(device, inode) of a file recorded with several links, or None."""
    nlink, device, inode = extra.get(NLINK), extra.get("device"), extra.get("inode")
    if type(nlink) is int and nlink > 1 and type(device) is int and type(inode) is int:
        return device, inode
    return None
