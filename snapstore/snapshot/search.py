"""Which snapshots hold paths matching a pattern (`snapstore find`).

A pattern matches as restore's `--exclude` does (snapshot/patterns.py): an fnmatch glob tried
against the whole absolute path and against the name. The snapshots are searched newest first,
each walked by the shared `Walker` (snapshot/walk.py) in name order, and the matches come out
as they are met, grouped by snapshot: nothing is collected, so memory does not grow with the
number of matches or of snapshots.

**Barren subtrees are not walked twice.** Whether anything below a directory matches depends
only on the directory's tree (its content, fixed by its id) and on the path it sits at (a
pattern may name the whole path). So when a directory at a path held no match, the pair
(path, tree id) is remembered, and a later, older snapshot with the same tree at the same path
does not go below it: searching thirty nightly snapshots of a mostly unchanged tree for a rare
name walks the unchanged part once. Only the topmost barren directory of each barren region is
kept (a barren directory's barren children are dropped when it is recorded), and at most
`BARREN_LIMIT` of them: past that the search stays correct and walks more. A subtree that
does hold matches is walked in each snapshot, so each snapshot lists its own matches in full.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from snapstore.errors import UsageError
from snapstore.repository.repository import Repository
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.patterns import PathPatterns
from snapstore.snapshot.tree import Node
from snapstore.snapshot.walk import Walker, display_path

#: How many barren (path, tree id) pairs one search remembers.
BARREN_LIMIT = 50_000


@dataclass(frozen=True)
class PathMatch:
    """A node of `snapshot` at `path` (absolute, "/"-separated) that a pattern matches."""

    snapshot: Snapshot
    path: str
    node: Node


@dataclass
class _Open:
    """A directory being walked: the match count when it was entered and its barren children."""

    key: tuple[bytes, bytes]
    found_at_entry: int
    barren_children: list[tuple[bytes, bytes]] = field(default_factory=list)


class _Search:
    def __init__(self, repo: Repository, patterns: PathPatterns) -> None:
        self._repo = repo
        self._patterns = patterns
        self._barren: set[tuple[bytes, bytes]] = set()

    def snapshot(self, snap: Snapshot) -> Iterator[PathMatch]:
        found = 0
        stack = [_Open((b"", bytes(snap.tree)), 0)]
        if stack[0].key in self._barren:
            return

        def descend(path: tuple[bytes, ...], node: Node) -> bool:
            assert node.subtree is not None
            key = (b"/".join(path), bytes(node.subtree))
            if key in self._barren:
                return False
            stack.append(_Open(key, found))
            return True

        for step in Walker(self._repo, each_tree_once=False).steps(snap.tree, descend):
            if step.leaving:
                self._leave(stack.pop(), stack[-1] if stack else None, found)
                continue
            assert step.node is not None
            absolute = b"/" + b"/".join(step.path)
            if self._patterns.matches(absolute):
                found += 1
                yield PathMatch(snap, "/" + display_path(step.path), step.node)

    def _leave(self, done: _Open, parent: _Open | None, found: int) -> None:
        if found == done.found_at_entry:  # nothing below it matched: its children are moot
            if parent is None:
                self._remember([done.key])
            else:
                parent.barren_children.append(done.key)
        else:  # its barren children are the topmost of their regions
            self._remember(done.barren_children)

    def _remember(self, keys: list[tuple[bytes, bytes]]) -> None:
        for key in keys[: max(0, BARREN_LIMIT - len(self._barren))]:
            self._barren.add(key)


def find_paths(
    repo: Repository, snapshots: Sequence[Snapshot], patterns: Sequence[str]
) -> Iterator[PathMatch]:
    """Every node matching any of `patterns` in `snapshots`, newest snapshot first, each
    snapshot's matches in walk order (a directory before its contents, names in order).
    An unreadable tree raises, naming it."""
    matcher = PathPatterns(patterns)
    if not matcher:
        raise UsageError("find needs at least one pattern")
    search = _Search(repo, matcher)
    unique = {bytes(s.id) if s.id else id(s): s for s in snapshots}.values()  # named twice: once
    for snap in sorted(unique, key=lambda s: (s.time, s.id or b""), reverse=True):
        yield from search.snapshot(snap)
