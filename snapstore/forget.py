"""Forgetting snapshots: apply a retention policy to the repository and remove the snapshot
objects it does not keep. Only the snapshot objects go; their data stays until prune.

The decisions come from the pure `snapstore.retention`; this module adds the I/O around it.

A snapshot that cannot be read (on a handle that skips damaged objects, as open_repository's
does) takes no part in the decision and is never removed: its host, paths and time are
unknown, so it could not be placed in a group. Leaving a snapshot out of the input never makes
a retention policy remove more of the others (each rule keeps the newest of what it is given),
so a damaged snapshot cannot cost a good one. `repair snapshots --forget` removes it.

Snapshots can also be named (ids, id prefixes or `latest`, as with restic's `forget ID...`):
exactly those go, with no policy; every name is resolved before anything is removed, so a name
that matches nothing, or a damaged snapshot, removes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from snapstore.backend.base import FileType
from snapstore.errors import ObjectNotFound, UsageError
from snapstore.repository.repository import Repository
from snapstore.retention import (
    DEFAULT_GROUP_BY,
    Decision,
    ForgetGroup,
    GroupKey,
    RetentionPolicy,
    plan_forget,
)
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.selection import SnapshotFilter
from snapstore.snapshot.store import damaged_snapshots, list_snapshots, select_snapshots


@dataclass(frozen=True)
class ForgetResult:
    policy: RetentionPolicy
    groups: list[ForgetGroup]
    dry_run: bool  # True: `removed` lists what would have been removed
    #: names of snapshots that could not be read: left alone, not part of the decision
    damaged: list[str] = field(default_factory=list)

    @property
    def kept(self) -> list[Snapshot]:
        return [d.snapshot for g in self.groups for d in g.keep]

    @property
    def removed(self) -> list[Snapshot]:
        return [d.snapshot for g in self.groups for d in g.remove]


def forget_snapshots(
    repo: Repository,
    policy: RetentionPolicy,
    *,
    group_by: Collection[str] = DEFAULT_GROUP_BY,
    selection: SnapshotFilter | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    tz: tzinfo | None = None,
    allow_remove_all: bool = False,
    snapshot_ids: Sequence[str] = (),
) -> ForgetResult:
    """Removes the snapshots `policy` does not keep, per group (restic's rules; see
    snapstore.retention). Only snapshot objects go: prune frees their data. `selection` (hosts,
    tags "a,b" = both, paths) chooses the snapshots considered; `tz` (default: local time)
    places day, week and month boundaries. A policy with no rule raises UsageError unless
    `allow_remove_all`. Decides for every group first, then removes: a refused group leaves
    everything as it was.

    With `snapshot_ids`, removes exactly the snapshots named (one group, newest first; `latest`
    is the newest that `selection` matches) and takes no policy (UsageError otherwise)."""
    selection = selection or SnapshotFilter()
    if snapshot_ids:
        groups = [_named_group(repo, policy, snapshot_ids, selection)]
    else:
        groups = plan_forget(
            list_snapshots(repo),
            policy,
            now=now or datetime.now(UTC),
            tz=tz,
            group_by=group_by,
            selection=selection,
            allow_remove_all=allow_remove_all,
        )
    result = ForgetResult(policy, groups, dry_run, damaged_snapshots(repo))
    if not dry_run:
        for snapshot in result.removed:
            if snapshot.id is None:  # list_snapshots always sets it
                raise ValueError("cannot remove a snapshot without an id")
            try:
                repo.remove_object(FileType.SNAPSHOT, snapshot.id.hex())
            except ObjectNotFound:
                pass  # a concurrent forget got there first: gone either way
    return result


def _named_group(
    repo: Repository, policy: RetentionPolicy, names: Sequence[str], selection: SnapshotFilter
) -> ForgetGroup:
    """The snapshots `names` name, each once, as one group of removals (nothing removed yet)."""
    if not policy.is_empty():
        raise UsageError("snapshot ids and keep rules cannot be combined: forget either the "
                         "snapshots named or those a policy does not keep")
    found = select_snapshots(repo, names, selection)
    newest_first = sorted(found, key=lambda s: (s.time, s.id or b""), reverse=True)
    return ForgetGroup(GroupKey(), [Decision(s, keep=False, reasons=()) for s in newest_first])
