"""Snapshots as objects: change a snapshot's tags, or take paths out of its trees (restic's
`tag` and `rewrite`).

A snapshot object never changes: its name is the hash of its bytes. So a changed snapshot is
a new object with a new id, which records in its metadata, under `original`, the id of the
snapshot it was made from (the first one, when a rewritten snapshot is changed again, as
restic does). It is saved the way `repair snapshots` saves a repaired one
(`store.replace_snapshot`): new trees in packs, then the index naming them, then the new
snapshot object, and only then is the old object removed, so a crash leaves both, never
neither.

- `retag_snapshots` adds, removes or sets tags; the old object always goes (as restic's
  `tag`). A snapshot whose tags would not change is left alone.
- `rewrite_snapshots` removes every file, link and directory (with all below it) whose
  absolute path or name matches an exclude pattern (the patterns of `restore --exclude`,
  snapshot/patterns.py): new trees bottom-up, a new snapshot. The original stays, and the new
  one is tagged `rewrite`, unless `forget`: then the original goes. The data only the removed
  paths used stays in its packs until `prune`. A tree or chunk list that cannot be read stops
  the rewrite before anything is saved for that snapshot (run `repair snapshots` first).

Both only add objects and remove snapshot objects, which a shared lock allows (SPEC.md
section 10, as forget); the caller holds it, and it is checked before each removal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from snapstore.errors import UsageError
from snapstore.ids import Id
from snapstore.pack import BlobType
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.patterns import PathPatterns
from snapstore.snapshot.selection import SnapshotFilter
from snapstore.snapshot.store import replace_snapshot, select_snapshots
from snapstore.snapshot.tree import Node, NodeType, encode_tree
from snapstore.snapshot.walk import Walker

ORIGINAL = "original"  # metadata key: the id of the snapshot a changed one was made from
REWRITE_TAG = "rewrite"


@dataclass
class RewrittenSnapshot:
    """One snapshot named: what changed, and what was saved in its place."""

    original: Snapshot
    new: Snapshot | None = None  # None: unchanged, or a dry run
    removed_paths: list[str] = field(default_factory=list)  # rewrite: what was taken out
    original_removed: bool = False

    @property
    def changed(self) -> bool:
        return self.new is not None or bool(self.removed_paths)


def retag_snapshots(
    repo: Repository,
    names: Sequence[str],
    *,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    set_to: Sequence[str] | None = None,
    selection: SnapshotFilter | None = None,
) -> list[RewrittenSnapshot]:
    """Gives each snapshot named (ids, id prefixes, `latest`) new tags: `set_to` replaces them
    all, else `add` and `remove` change them. Every name is resolved before anything changes.
    `selection` narrows `latest`; with no names, every snapshot it matches is changed."""
    if set_to is not None and (add or remove):
        raise UsageError("--set replaces every tag: give it without --add and --remove")
    if set_to is None and not add and not remove:
        raise UsageError("say which tags to --add, --remove or --set")
    results = []
    for snapshot in _resolve(repo, names, selection):
        if set_to is not None:
            tags = sorted(set(set_to))
        else:
            tags = sorted((set(snapshot.tags) | set(add)) - set(remove))
        entry = RewrittenSnapshot(snapshot)
        results.append(entry)
        if tags == sorted(snapshot.tags):
            continue
        entry.new = dataclasses.replace(snapshot, tags=tags, metadata=_with_original(snapshot))
        replace_snapshot(repo, snapshot, entry.new, before_remove=_lock_check(repo))
        entry.original_removed = True
    return results


def rewrite_snapshots(
    repo: Repository,
    names: Sequence[str],
    excludes: Sequence[str],
    *,
    forget: bool = False,
    dry_run: bool = False,
    selection: SnapshotFilter | None = None,
) -> list[RewrittenSnapshot]:
    """Saves each snapshot named without the paths `excludes` match (see the module
    docstring); the repository's index must be loaded. `selection` as for retag_snapshots."""
    patterns = PathPatterns(excludes)
    if not patterns:
        raise UsageError("say what to remove with --exclude PATTERN")
    results = []
    for snapshot in _resolve(repo, names, selection):
        tree, removed = _TreeFilter(repo, patterns, dry_run).rewrite(snapshot.tree)
        entry = RewrittenSnapshot(snapshot, removed_paths=removed)
        results.append(entry)
        if tree == snapshot.tree or dry_run:
            continue
        tags = snapshot.tags if forget or REWRITE_TAG in snapshot.tags else sorted([*snapshot.tags, REWRITE_TAG])
        entry.new = dataclasses.replace(snapshot, tree=tree, tags=tags, metadata=_with_original(snapshot))
        replace_snapshot(repo, snapshot, entry.new, remove_old=forget, before_remove=_lock_check(repo))
        entry.original_removed = forget
    return results


def _resolve(
    repo: Repository, names: Sequence[str], selection: SnapshotFilter | None
) -> list[Snapshot]:
    if not names and not selection:
        raise UsageError("name the snapshots to change (ids, id prefixes or 'latest'), or "
                         "choose them by host, tag or path")
    found = select_snapshots(repo, names, selection)
    return sorted(found, key=lambda s: (s.time, bytes(s.id or b"")))


def _with_original(snapshot: Snapshot) -> dict[str, object]:
    assert snapshot.id is not None  # a snapshot that was read has one
    first = snapshot.metadata.get(ORIGINAL)
    return {**snapshot.metadata, ORIGINAL: first if isinstance(first, str) else snapshot.id.hex()}


def _lock_check(repo: Repository) -> Callable[[], None] | None:
    lock = repo.held_lock
    return lock.check if lock is not None else None


@dataclass
class _Level:
    kept: list[Node] = field(default_factory=list)
    changed: bool = False


class _TreeFilter:
    """Rewrites one snapshot's trees without the matching paths, in one walk that does not go
    below a directory it removes: each directory's kept nodes are gathered as the walk meets
    them, and its new tree is saved when the walk leaves it (children before parents). Whether
    a path matches depends on where a tree sits, so a tree met at two paths is judged at each
    (`each_tree_once=False`)."""

    def __init__(self, repo: Repository, patterns: PathPatterns, dry_run: bool) -> None:
        self._repo = repo
        self._patterns = patterns
        self._dry_run = dry_run

    def _matches(self, path: tuple[bytes, ...]) -> bool:
        return self._patterns.matches(b"/" + b"/".join(path))

    def _descend(self, path: tuple[bytes, ...], node: Node) -> bool:
        return not self._matches(path)

    def rewrite(self, root: Id) -> tuple[Id, list[str]]:
        """The new root tree id (`root` itself when nothing matched) and the paths removed."""
        removed: list[str] = []
        levels = [_Level()]  # the root's, then one per directory the walk is in
        for step in Walker(self._repo, each_tree_once=False).steps(root, self._descend):
            if step.leaving:
                level = levels.pop()
                tree = self._save(encode_tree(level.kept)) if level.changed else None
                if step.node is None:  # the root's end: the walk is over
                    return tree or root, removed
                if tree is not None:
                    step.node.subtree = tree
                    levels[-1].changed = True
                levels[-1].kept.append(step.node)
            elif step.node is None:
                continue
            elif self._matches(step.path):
                removed.append("/" + step.display_path)
                levels[-1].changed = True
            elif step.node.type is NodeType.DIR and step.node.subtree is not None:
                levels.append(_Level())  # its node joins its parent's when the walk leaves it
            else:
                levels[-1].kept.append(step.node)
        raise AssertionError("a walk that visits every tree always leaves the root")

    def _save(self, data: bytes) -> Id:
        if self._dry_run:
            return self._repo.hash_blob(data)
        return self._repo.save_blob(BlobType.TREE, data).id
