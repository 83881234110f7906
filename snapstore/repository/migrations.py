"""Migrations: format features an existing repository can take on (SPEC.md section 3).

A repository never gains a feature by itself: `init` lists the features of its day, and an
older repository keeps its own, so older snapstore versions keep reading it. A migration adds
one when the user asks (`snapstore migrate NAME`), under the exclusive lock; from then on
writers use it, and a snapstore that does not know it refuses the repository. Objects are
never rewritten: everything written before stays valid under the new feature.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from snapstore.errors import UsageError
from snapstore.repository.config import FEATURE_CHAINS, FEATURE_DELTAS
from snapstore.repository.repository import Repository


@dataclass(frozen=True)
class Migration:
    """A feature a repository can take on, and the features it needs first."""

    name: str
    summary: str
    needs: tuple[str, ...] = ()


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        FEATURE_DELTAS,
        "store changed database chunks as deltas against the night before (and big files' "
        "chunk lists as blobs)",
    ),
    Migration(
        FEATURE_CHAINS,
        "let deltas rest on deltas, so bases follow the data night after night (skip-deltas, "
        "at most 8 deltas deep)",
        needs=(FEATURE_DELTAS,),
    ),
)


def migration_states(repo: Repository) -> list[tuple[Migration, bool]]:
    """Every migration, and whether the repository has its feature already."""
    return [(m, m.name in repo.config.features) for m in MIGRATIONS]


def apply_migrations(repo: Repository, names: list[str]) -> list[str]:
    """Adds these features (and nothing else) to the repository's config, in the order given;
    returns those it did not have. Unknown names, or a feature whose prerequisite is neither
    there nor asked for before it, raise UsageError before anything is written. The caller
    holds the exclusive lock."""
    known = {m.name: m for m in MIGRATIONS}
    features = list(repo.config.features)
    added = []
    for name in names:
        migration = known.get(name)
        if migration is None:
            raise UsageError(f"no migration named {name!r}; known: {', '.join(known)}")
        missing = [n for n in migration.needs if n not in features]
        if missing:
            raise UsageError(f"{name} needs {', '.join(missing)} first: `snapstore migrate {' '.join(missing)} {name}`")
        if name not in features:
            features.append(name)
            added.append(name)
    if added:
        repo.save_config(dataclasses.replace(repo.config, features=tuple(features)))
    return added
