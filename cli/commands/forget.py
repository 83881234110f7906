"""`snapstore forget`: remove the snapshots a retention policy does not keep (restic's rules),
or the snapshots named (`snapstore forget ID...`, as with restic)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.table import Table

import snapstore
from snapstore.cli.commands.prune import render as render_prune
from snapstore.cli.commands.snapshots import snapshot_record
from snapstore.cli.options import LockMode, RepoOptions, repository_options
from snapstore.cli.output import Level, human_size, output_level, print_info, print_json
from snapstore.cli.progress import Reporter
from snapstore.cli.snapshot_filter import snapshot_filter_options
from snapstore.errors import UsageError

#: Some snapshot could not be read: it was left alone, outside the decision.
EXIT_INCOMPLETE = 3

KEEP_COUNTS = {
    "last": "Keep the last N snapshots ('unlimited': all of them).",
    "hourly": "Keep the newest snapshot of each of the last N hours that have one.",
    "daily": "Keep the newest snapshot of each of the last N days that have one.",
    "weekly": "Likewise for ISO weeks.",
    "monthly": "Likewise for months.",
    "yearly": "Likewise for years.",
}
KEEP_WITHIN = {
    "within": "Keep every snapshot newer than DURATION (2w, 36h, 1y5m7d2h) before the latest.",
    "within-hourly": "Keep the newest snapshot of each hour within DURATION.",
    "within-daily": "Likewise per day.",
    "within-weekly": "Likewise per ISO week.",
    "within-monthly": "Likewise per month.",
    "within-yearly": "Likewise per year.",
}


def keep_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--keep-last ... --keep-within-yearly, passed as keep_<name> strings."""
    for name, text in reversed(KEEP_WITHIN.items()):
        func = click.option(f"--keep-{name}", metavar="DURATION", help=text)(func)
    for name, text in reversed(KEEP_COUNTS.items()):
        func = click.option(f"--keep-{name}", metavar="N", help=text)(func)
    return func


def _count(name: str, value: str | None) -> int:
    if value is None:
        return 0
    if value == "unlimited":
        return snapstore.RetentionPolicy.UNLIMITED
    if not value.isdigit():
        raise UsageError(f"--keep-{name} {value!r} must be a number >= 0 or 'unlimited'")
    return int(value)


def _duration(value: str | None) -> snapstore.Duration | None:
    return snapstore.Duration.parse(value) if value else None


def _policy(keep: dict[str, str | None], keep_tags: tuple[str, ...]) -> snapstore.RetentionPolicy:
    rules: dict[str, Any] = {f"keep_{n}": _count(n, keep[n]) for n in KEEP_COUNTS}
    rules.update({f"keep_{n.replace('-', '_')}": _duration(keep[n]) for n in KEEP_WITHIN})
    return snapstore.RetentionPolicy(**rules, keep_tags=keep_tags)


def _render(result: snapstore.ForgetResult, named: bool) -> None:
    console = Console(soft_wrap=True)
    for group in result.groups:
        if not named:
            click.echo(f"group: {group.key.describe()}")
        for title, decisions in (("keep", group.keep), ("remove", group.remove)):
            if not decisions:
                continue
            click.echo(f"{title} {len(decisions)} snapshots:")
            table = Table(box=None, pad_edge=False)
            explain = title == "keep"
            for column in ("ID", "Time", "Host", "Tags") + (("Reasons",) if explain else ()):
                table.add_column(column, no_wrap=column in ("ID", "Time", "Reasons"))
            table.add_column("Paths", overflow="fold")
            for d in reversed(decisions):  # oldest first, as `snapshots` lists them
                s = d.snapshot
                row = [s.short_id, s.time.astimezone().strftime("%Y-%m-%d %H:%M:%S"), s.host,
                       ",".join(s.tags), *([", ".join(d.reasons)] if explain else [])]
                table.add_row(*row, "\n".join(s.paths))
            console.print(table)
        click.echo("")
    removed, kept = len(result.removed), len(result.kept)
    if result.dry_run:
        click.echo(f"dry run: would remove {removed} snapshots" + ("" if named else f" and keep {kept}"))
    else:
        click.echo(f"removed {removed} snapshots" + ("" if named else f", kept {kept}"))
    if result.damaged:
        names = ", ".join(name[:8] for name in result.damaged)
        click.echo(f"left alone, outside the policy: {len(result.damaged)} snapshots that cannot "
                   f"be read ({names}); `snapstore repair snapshots --forget` removes them")


def _as_json(result: snapstore.ForgetResult) -> list[dict[str, object]]:
    return [
        {
            "host": group.key.host,
            "paths": list(group.key.paths) if group.key.paths is not None else None,
            "tags": list(group.key.tags) if group.key.tags is not None else None,
            "keep": [dict(snapshot_record(d.snapshot), reasons=list(d.reasons))
                     for d in group.keep],
            "remove": [snapshot_record(d.snapshot) for d in group.remove],
        }
        for group in result.groups
    ]


def build() -> click.Command:
    @click.command("forget")
    @click.argument("snapshot_ids", nargs=-1, metavar="[SNAPSHOT]...")
    @keep_options
    @click.option("--keep-tag", "keep_tags", multiple=True, metavar="TAG[,TAG]",
                  help="Keep snapshots with these tags (repeatable).")
    @click.option("--group-by", default="host,paths", show_default=True, metavar="FIELDS",
                  help="Apply the policy per group of host, paths and/or tags ('' for one group).")
    @click.option("--dry-run", is_flag=True, help="Show the decisions, remove nothing.")
    @click.option("--prune", "and_prune", is_flag=True, help="Then run prune to free the space.")
    @click.option("--unsafe-allow-remove-all", "remove_all", is_flag=True,
                  help="Allow a policy with no keep rule (needs --host, --tag or --path).")
    @click.option("--json", "as_json", is_flag=True, help="Print the decisions as JSON.")
    @snapshot_filter_options
    @repository_options
    def forget(repo_options: RepoOptions, snapshot_ids: tuple[str, ...], keep_tags: tuple[str, ...],
               group_by: str, selection: snapstore.SnapshotFilter, dry_run: bool,
               and_prune: bool, remove_all: bool, as_json: bool, **keep: str | None) -> int:
        """Remove snapshots by a retention policy, saying why each kept one stays, or remove
        the snapshots named (ids, id prefixes or 'latest'; no --keep-* rule then).

        Only the snapshot objects go; prune (or --prune) frees their data. A snapshot that
        cannot be read is left alone and takes no part in the decision (exit 3).
        """
        rules = {name[len("keep_"):].replace("_", "-"): value for name, value in keep.items()}
        policy = _policy(rules, keep_tags)
        if policy.is_empty() and not remove_all and not snapshot_ids:
            raise UsageError("no keep rule given: refusing to forget every snapshot (add --keep-*)")
        lock: LockMode = "exclusive" if and_prune and not dry_run else "shared"
        with repo_options.open(load_index=False, lock=lock) as repo:
            result = snapstore.forget(
                repo, policy, group_by=group_by.split(","), selection=selection,
                dry_run=dry_run, allow_remove_all=remove_all, snapshot_ids=snapshot_ids,
            )
            if as_json:
                print_json(_as_json(result))
            elif output_level() is not Level.QUIET:
                if snapshot_ids:
                    click.echo(f"forgetting the snapshots named: {', '.join(snapshot_ids)}")
                else:
                    click.echo(f"applying policy: {policy.describe()}")
                _render(result, named=bool(snapshot_ids))
            if and_prune and dry_run:  # a dry prune would still count the forgotten snapshots
                click.echo("prune: skipped in a dry run", err=as_json)
            elif and_prune and result.removed:
                with Reporter() as progress:
                    report = snapstore.prune(repo, snapstore.PruneOptions(), progress)
                if as_json:  # stdout stays one JSON document
                    print_info(f"prune: freed {human_size(report.bytes_freed)}", err=True)
                else:
                    print_info(render_prune(report))
        return EXIT_INCOMPLETE if result.damaged else 0

    return forget
