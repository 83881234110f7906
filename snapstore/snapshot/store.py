"""Reading and writing snapshots through the repository, naming them, and finding a path.

Trees are read by `load_tree` and walked by `Walker`, both in walk.py (below this module, so
this one can offer them under their old names: `load_tree`, and `walk` for (path, node) pairs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from snapstore.backend.base import FileType
from snapstore.errors import (
    AmbiguousPrefix,
    IntegrityError,
    ObjectNotFound,
    PathNotFound,
    SnapshotNotFound,
    SnapstoreError,
)
from snapstore.ids import Id
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot, decode_snapshot, encode_snapshot
from snapstore.snapshot.selection import SnapshotFilter
from snapstore.snapshot.tree import Node, NodeType
from snapstore.snapshot.walk import Walker, load_tree


def save_snapshot(repo: Repository, snapshot: Snapshot) -> Id:
    snapshot.id = repo.save_object(FileType.SNAPSHOT, encode_snapshot(snapshot))
    return snapshot.id


def replace_snapshot(
    repo: Repository,
    old: Snapshot,
    new: Snapshot,
    *,
    remove_old: bool = True,
    before_remove: Callable[[], None] | None = None,
) -> Id:
    """Saves `new` (a changed copy of `old`: other tags, other trees) as a snapshot object of
    its own, then removes `old` unless told not to. The order keeps a crash harmless (SPEC.md
    section 11): the packs and index naming the new trees are stored first (`repo.flush`),
    then the new snapshot, and only then is the old object removed, so a crash leaves both
    snapshots, never neither. `before_remove` runs just before the removal (a lock check)."""
    repo.flush()
    new.id = None
    new_id = save_snapshot(repo, new)
    if remove_old and old.id is not None and old.id != new_id:
        if before_remove is not None:
            before_remove()
        try:
            repo.remove_object(FileType.SNAPSHOT, old.id.hex())
        except ObjectNotFound:
            pass  # already gone
    return new_id


def load_snapshot(repo: Repository, name: str) -> Snapshot:
    return decode_snapshot(repo.load_object(FileType.SNAPSHOT, name), Id.from_hex(name))


def list_snapshots(repo: Repository, known: dict[str, Snapshot] | None = None) -> list[Snapshot]:
    """All snapshots, oldest first.

    One that cannot be read is handed to `repo.skip_damaged`: on a handle that skips damaged
    objects (open_repository's), it is left out and named there (`repo.damaged`) and the
    others are listed; on one that does not, its error is raised. Every listing goes through
    here: snapshots, `latest`, forget, stats, copy, the parent search, the drill's lookup.

    `known` (object name -> snapshot), for a caller that lists again and again (a mount):
    snapshots in it are not read again (a snapshot never changes under its name), new ones
    are added to it and gone ones removed.
    """
    snaps = []
    listed = set()
    for info in repo.list_objects(FileType.SNAPSHOT):
        name = info.handle.name
        listed.add(name)
        if known is not None and name in known:
            snaps.append(known[name])
            continue
        try:
            snapshot = load_snapshot(repo, name)
        except SnapstoreError as exc:
            repo.skip_damaged(FileType.SNAPSHOT, name, exc)
            continue
        snaps.append(snapshot)
        if known is not None:
            known[name] = snapshot
    if known is not None:
        for gone in set(known) - listed:
            del known[gone]
    return sorted(snaps, key=lambda s: (s.time, s.id or b""))


def damaged_snapshots(repo: Repository) -> list[str]:
    """The names of the snapshots this handle's listings left out as damaged."""
    return [d.name for d in repo.damaged if d.file_type is FileType.SNAPSHOT]


def newest_complete(snapshots: Sequence[Snapshot], what: str = "snapshots") -> Snapshot:
    """What `latest` names among `snapshots` (oldest first, as `list_snapshots` gives them):
    the newest complete one (`Snapshot.complete`), so a night whose backup failed in part
    never takes the place of the last good one. Raises SnapshotNotFound when there is none:
    "the repository has no {what}", or, when all of them are incomplete, naming the newest
    incomplete one, which can still be used by its id."""
    for snapshot in reversed(snapshots):
        if snapshot.complete:
            return snapshot
    if not snapshots:
        raise SnapshotNotFound(f"the repository has no {what}")
    newest = snapshots[-1]
    raise SnapshotNotFound(
        f"the repository has no complete {what}, so 'latest' names none: the newest, "
        f"{newest.short_id}, is {newest.describe_incomplete()}; name it by its id to use it"
    )


def find_snapshot(
    repo: Repository,
    name: str,
    selection: SnapshotFilter | None = None,
    *,
    holding: Sequence[str] = (),
) -> Snapshot:
    """Resolves `latest` or a hex id prefix to one snapshot.

    `latest` is the newest complete snapshot that can be read (`newest_complete`; a damaged
    newer one is left out as `list_snapshots` does) among those `selection` matches (host,
    tag, path filters; default: all) and, with `holding`, that has every one of these paths
    (so `restore latest --include /etc/nginx` passes over a newer snapshot of a database
    dump). An id prefix names any snapshot, an incomplete one too, whatever `selection` and
    `holding` say. A prefix naming a damaged snapshot raises an IntegrityError naming it.
    """
    if name == "latest":
        return _latest(repo, selection or SnapshotFilter(), holding)
    prefix = name.lower()
    if not prefix or any(c not in "0123456789abcdef" for c in prefix):
        raise SnapshotNotFound(f"{name!r} is not a snapshot id or 'latest'")
    matches = [
        info.handle.name
        for info in repo.list_objects(FileType.SNAPSHOT)
        if info.handle.name.startswith(prefix)
    ]
    if not matches:
        raise SnapshotNotFound(f"no snapshot matches {name!r}")
    if len(matches) > 1:
        raise AmbiguousPrefix(f"{name!r} matches {len(matches)} snapshots; give more characters")
    try:
        return load_snapshot(repo, matches[0])
    except IntegrityError as exc:
        raise IntegrityError(f"snapshot {matches[0][:8]} is damaged: {exc}") from exc


def _latest(repo: Repository, selection: SnapshotFilter, holding: Sequence[str]) -> Snapshot:
    chosen = selection.select(list_snapshots(repo))
    what = f"snapshots {selection.describe()}" if selection else "snapshots"
    if not holding:
        return newest_complete(chosen, what)
    complete = [s for s in chosen if s.complete]
    for snapshot in reversed(complete):
        if all(holds(repo, snapshot, path) for path in holding):
            return snapshot
    if not complete:
        return newest_complete(chosen, what)  # raises, saying why
    held = " and ".join(holding)
    raise SnapshotNotFound(f"no complete snapshot{' ' + selection.describe() if selection else ''} "
                           f"holds {held}")


def select_snapshots(
    repo: Repository, names: Sequence[str], selection: SnapshotFilter | None = None
) -> list[Snapshot]:
    """The snapshots a command that takes several acts on: each one named (`latest` as
    `find_snapshot` resolves it with `selection`), each once, in the order named; with no
    names, every snapshot `selection` matches, oldest first."""
    if not names:
        return (selection or SnapshotFilter()).select(list_snapshots(repo))
    found: dict[Id | None, Snapshot] = {}
    for name in names:
        snapshot = find_snapshot(repo, name, selection)
        found.setdefault(snapshot.id, snapshot)
    return list(found.values())


def holds(repo: Repository, snapshot: Snapshot, path: str) -> bool:
    """Whether `path` is in the snapshot (the root always is)."""
    try:
        find_node(repo, snapshot.tree, path)
    except PathNotFound:
        return False
    return True


def split_path(path: str) -> list[bytes]:
    return [p for p in path.encode("utf-8", "surrogateescape").split(b"/") if p and p != b"."]


def find_node(repo: Repository, root: Id, path: str) -> Node | None:
    """The node at `path` inside the tree `root`; None means the root itself."""
    parts = split_path(path)
    tree_id = root
    node: Node | None = None
    for depth, part in enumerate(parts):
        nodes = load_tree(repo, tree_id)
        node = next((n for n in nodes if n.name == part), None)
        if node is None:
            raise PathNotFound(f"{path!r} is not in the snapshot")
        if depth < len(parts) - 1:
            if node.type is not NodeType.DIR or node.subtree is None:
                raise PathNotFound(f"{path!r} is not in the snapshot")
            tree_id = node.subtree
    return node


def walk(
    repo: Repository, tree_id: Id, prefix: tuple[bytes, ...] = ()
) -> Iterator[tuple[tuple[bytes, ...], Node]]:
    """Depth-first (path, node) pairs below a tree, parents before children, every copy of a
    shared subtree included: `Walker.pre_order` (snapshot/walk.py) for those who want pairs."""
    for visit in Walker(repo, each_tree_once=False).pre_order(tree_id):
        yield prefix + visit.path, visit.node
