"""Choosing snapshots by host, tag and path: the one definition every command's --host, --tag
and --path filters, `latest`, forget's selection and health's share. Pure: no I/O.

restic's rules:

- hosts: a snapshot matches when it was taken on any of them;
- tags: each entry is a tag list "a,b" a snapshot matches when it carries every tag of it; a
  snapshot matches when it matches any entry; the empty list "" matches untagged snapshots;
- paths: a snapshot matches when its paths include every one given (compared with trailing
  slashes and `.`/`..` parts folded away: `/etc/` is `/etc`).

A filter with none of them matches every snapshot. `store.find_snapshot` applies one to
`latest`; an id or id prefix names its snapshot whatever the filter says.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from snapstore.snapshot.manifest import Snapshot


def has_tag_list(snapshot: Snapshot, tag_list: str) -> bool:
    """True if the snapshot has every tag of "a,b"; the empty list matches untagged snapshots."""
    wanted = [tag.strip() for tag in tag_list.split(",") if tag.strip()]
    if not wanted:
        return not snapshot.tags
    return all(tag in snapshot.tags for tag in wanted)


def _clean(path: str) -> str:
    """A path as compared: `//etc/./nginx/` is `/etc/nginx`; relative paths stay relative."""
    if not path:
        return path
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("/") else cleaned


@dataclass(frozen=True)
class SnapshotFilter:
    """Which snapshots a command considers (see the module docstring)."""

    hosts: Sequence[str] = ()
    tags: Sequence[str] = ()  # tag lists, "a,b" meaning both
    paths: Sequence[str] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", tuple(self.hosts))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "paths", tuple(_clean(p) for p in self.paths))

    def __bool__(self) -> bool:
        """False when it matches every snapshot."""
        return bool(self.hosts or self.tags or self.paths)

    def matches(self, snapshot: Snapshot) -> bool:
        if self.hosts and snapshot.host not in self.hosts:
            return False
        if self.tags and not any(has_tag_list(snapshot, t) for t in self.tags):
            return False
        if self.paths:
            held = {_clean(p) for p in snapshot.paths}
            if not all(p in held for p in self.paths):
                return False
        return True

    def select(self, snapshots: Iterable[Snapshot]) -> list[Snapshot]:
        """The snapshots that match, in the order given."""
        return [s for s in snapshots if self.matches(s)]

    def describe(self) -> str:
        """For messages: "of host web1, tagged config or db,daily, with path /etc"."""
        parts = []
        if self.hosts:
            parts.append(f"of host {' or '.join(self.hosts)}")
        if self.tags:
            parts.append("tagged " + " or ".join(t if t.strip(", ") else "(none)" for t in self.tags))
        if self.paths:
            parts.append(f"with path{'s' if len(self.paths) > 1 else ''} {', '.join(self.paths)}")
        return ", ".join(parts)
