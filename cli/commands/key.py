"""`snapstore key list|add|remove|passwd|export|import`: the key files that wrap the master key
under passwords, and the master key on paper (snapstore.repository.keyring says how)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

import snapstore
from snapstore.cli.options import RepoOptions, repository_options
from snapstore.cli.output import print_json
from snapstore.cli.password import read_password
from snapstore.errors import PaperKeyError, UsageError

PAPER_LINES = 8


def _new_password_options(func: Any) -> Any:
    func = click.option("--new-password-command", envvar="SNAPSTORE_NEW_PASSWORD_COMMAND",
                        help="Run this shell command to get the new password "
                             "(env SNAPSTORE_NEW_PASSWORD_COMMAND).")(func)  # fmt: skip
    return click.option("--new-password-file", envvar="SNAPSTORE_NEW_PASSWORD_FILE",
                        type=click.Path(dir_okay=False),
                        help="Read the new password from this file (env "
                             "SNAPSTORE_NEW_PASSWORD_FILE); default: asked twice on the terminal.",
                        )(func)  # fmt: skip


def _new_password(password_file: str | None, password_command: str | None) -> bytes:
    return read_password(password_file, password_command, confirm=True,
                         env="SNAPSTORE_NEW_PASSWORD", prompt="new password: ")  # fmt: skip


def _when(created: str) -> str:
    try:
        return datetime.fromisoformat(created).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return created or "?"


def _kdf(params: snapstore.KdfParams | None) -> str:
    if params is None:
        return "-"
    memory = f"{params.memory_kib // 1024} MiB" if params.memory_kib % 1024 == 0 else f"{params.memory_kib} KiB"
    return f"argon2id t={params.time_cost} m={memory} p={params.lanes}"


def _record(key: snapstore.StoredKey) -> dict[str, object]:
    kdf = None if key.kdf is None else {
        "algorithm": "argon2id", "time_cost": key.kdf.time_cost,
        "memory_kib": key.kdf.memory_kib, "lanes": key.kdf.lanes,
    }  # fmt: skip
    return {"id": key.name, "current": key.in_use, "created": key.created, "host": key.host,
            "user": key.user, "kdf": kdf, "refused": key.refused or None}  # fmt: skip


def _render(keys: list[snapstore.StoredKey]) -> None:
    click.echo(f"  {'ID':<8}  {'created':<19}  {'user@host':<28}  KDF")
    for key in keys:
        mark = "*" if key.in_use else " "
        who = f"{key.user}@{key.host}" if key.user or key.host else "?"
        click.echo(f"{mark} {key.name[:8]}  {_when(key.created):<19}  {who:<28}  {_kdf(key.kdf)}")
        if key.refused:
            click.echo(f"    refused by readers: {key.refused}")
    click.echo(f"{len(keys)} key {'file' if len(keys) == 1 else 'files'}; * opened this session")


def _read_paper(source: str | None) -> str:
    """The paper key from a file, from standard input, or typed line by line on a terminal,
    each line checked as it is typed."""
    if source not in (None, "-"):
        try:
            with open(source, encoding="utf-8") as f:
                return f.read()
        except OSError as exc:
            raise UsageError(f"cannot read paper key file {source}: {exc.strerror}") from None
    if source == "-" or not sys.stdin.isatty():
        return sys.stdin.read()
    click.echo(f"Type the {PAPER_LINES} lines of the paper key (spaces do not matter).", err=True)
    lines = []
    for number in range(1, PAPER_LINES + 1):
        while True:
            typed = click.prompt(f"line {number}", err=True)
            try:
                snapstore.check_paper_line(number, typed)
                break
            except PaperKeyError as exc:
                click.echo(f"  {exc}: type it again", err=True)
        lines.append(f"{number}: {typed}")
    return "\n".join(lines)


def build() -> click.Group:
    @click.group("key")
    def key() -> None:
        """Manage the key files (one per password) and the paper key of the repository."""

    @key.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print the key files as JSON.")
    @repository_options
    def list_(repo_options: RepoOptions, as_json: bool) -> int:
        """List the key files: id, when and where each was made, its KDF parameters, and
        which one the password given opened (*)."""
        with repo_options.open(load_index=False) as repo:
            keys = snapstore.list_keys(repo)
        if as_json:
            print_json([_record(k) for k in keys])
        else:
            _render(keys)
        return 0

    @key.command("add")
    @_new_password_options
    @repository_options
    def add(repo_options: RepoOptions, new_password_file: str | None, new_password_command: str | None) -> int:
        """Add a key file for another password (e.g. one per admin); the others keep working."""
        with repo_options.open(load_index=False) as repo:
            name = snapstore.add_key(repo, _new_password(new_password_file, new_password_command))
        click.echo(f"added key file {name[:8]}")
        return 0

    @key.command("remove")
    @click.argument("key_id", metavar="ID")
    @click.option("--force", is_flag=True, help="Also remove the key file the password given opens.")
    @repository_options
    def remove(repo_options: RepoOptions, key_id: str, force: bool) -> int:
        """Remove the key file ID (an id prefix, see `key list`); never the last one, and the
        one in use only with --force."""
        with repo_options.open(load_index=False, lock="exclusive") as repo:
            removed = snapstore.remove_key(repo, key_id, force=force)
        click.echo(f"removed key file {removed.name[:8]}")
        return 0

    @key.command("passwd")
    @_new_password_options
    @repository_options
    def passwd(repo_options: RepoOptions, new_password_file: str | None, new_password_command: str | None) -> int:
        """Change the password: a key file for the new password is written and read back,
        then the key file of the old one is removed."""
        with repo_options.open(load_index=False, lock="exclusive") as repo:
            new, old = snapstore.change_password(repo, _new_password(new_password_file, new_password_command))
        gone = f"; removed key file {old[:8]} (the old password)" if old else ""
        click.echo(f"added key file {new[:8]} for the new password{gone}")
        return 0

    @key.command("export")
    @click.option("--paper", is_flag=True, help="Print the master key in a form to print and type back.")
    @repository_options
    def export(repo_options: RepoOptions, paper: bool) -> int:
        """Print the master key (with --paper: 8 lines of base32, each with check characters)
        to keep on paper, apart from the backups: it opens the repository without a password
        or key file, through `snapstore key import --paper`."""
        if not paper:
            raise UsageError("say --paper: the master key is exported only as a paper key")
        with repo_options.open(load_index=False) as repo:
            text = snapstore.export_paper_key(repo)
        click.echo(text, nl=False)
        click.echo("Anyone holding this can read every backup: keep it as safe as the password.", err=True)
        return 0

    @key.command("import")
    @click.option("--paper", is_flag=True, help="Read a paper key (`key export --paper`).")
    @click.argument("source", metavar="[FILE]", required=False)
    @repository_options
    def import_(repo_options: RepoOptions, paper: bool, source: str | None) -> int:
        """Regain access with a paper key (from FILE, standard input, or typed on the
        terminal) and a new password (--password-file, ... as for `init`), e.g. after the
        keys/ folder or every password was lost: writes a key file for that password."""
        if not paper:
            raise UsageError("say --paper: only a paper key can be imported")
        text = _read_paper(source)
        location = repo_options.location()
        password = repo_options.password(confirm=True)
        with snapstore.recover_repository(location, text, password,
                                          **repo_options.remote.repository_kwargs(location)) as repo:  # fmt: skip
            click.echo(f"added key file {(repo.key_name or '')[:8]} for the password given: "
                       f"repository {repo.repository_id[:8]} opens with it")  # fmt: skip
        return 0

    return key
