"""--host, --tag and --path: which snapshots a command considers, defined once for every command
that takes a snapshot (or lists them) and handed to it as one `selection`
(snapstore.SnapshotFilter, whose rules are restic's)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

import snapstore
from snapstore.cli.output import print_info

F = TypeVar("F", bound=Callable[..., Any])

#: (flag, parameter, metavar, help): the one table of the filter options.
FILTER_OPTIONS = (
    ("--host", "filter_hosts", "NAME",
     "Only snapshots taken on this host (repeatable: any of them); 'latest' is the newest of them."),
    ("--tag", "filter_tags", "TAG[,TAG]",
     "Only snapshots with this tag, 'a,b' for both (repeatable: any of them); '' for untagged."),
    ("--path", "filter_paths", "PATH",
     "Only snapshots whose paths include PATH, as `snapshots` lists them (repeatable: all of them)."),
)  # fmt: skip


def tag_list(values: tuple[str, ...]) -> list[str]:
    """Tags to give a snapshot, as repeated options or comma-separated ('a,b' is two tags, as
    restic reads `backup --tag a,b`), blanks dropped: what a filter's 'a,b' then matches."""
    return [t.strip() for value in values for t in value.split(",") if t.strip()]


def tag_list_option(flag: str, name: str, help_text: str) -> Callable[[F], F]:
    """A repeatable tag option whose values arrive as one list (see tag_list)."""

    def split(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str]:
        return tag_list(values)

    return click.option(flag, name, multiple=True, metavar="TAG[,TAG]", callback=split, help=help_text)


def snapshot_filter_options(func: F) -> F:
    """Adds --host, --tag and --path, passed to `func` as `selection` (a SnapshotFilter)."""

    def wrapper(**kwargs: Any) -> Any:
        kwargs["selection"] = snapstore.SnapshotFilter(
            hosts=kwargs.pop("filter_hosts"), tags=kwargs.pop("filter_tags"),
            paths=kwargs.pop("filter_paths"),
        )  # fmt: skip
        return func(**kwargs)

    functools.update_wrapper(wrapper, func)  # keeps options already attached to func
    del wrapper.__wrapped__  # type: ignore[attr-defined]  # click must see the wrapper's signature
    result: Any = wrapper
    for flag, name, metavar, text in reversed(FILTER_OPTIONS):
        result = click.option(flag, name, multiple=True, metavar=metavar, help=text)(result)
    return result


def latest_holding(repo: snapstore.Repository, name: str, selection: snapstore.SnapshotFilter,
                   paths: tuple[str, ...], *, say: bool = True) -> snapstore.Snapshot:
    """SNAPSHOT as a command that reads `paths` from it means it: 'latest' is the newest
    snapshot (of those `selection` chooses) that holds them all, named on stderr when `say`,
    so that `restore latest --include /etc/nginx` or `dump latest /etc/hosts` does not land
    on a database snapshot taken later; an id is that snapshot."""
    holding = paths if name == "latest" else ()
    snap = snapstore.find_snapshot(repo, name, selection, holding=holding)
    if holding and say:
        when = snap.time.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        print_info(f"latest snapshot holding {', '.join(paths)}: {snap.short_id} ({when}, "
                   f"{snap.host}, {', '.join(snap.paths)})", err=True)  # fmt: skip
    return snap
