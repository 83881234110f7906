"""Options every repository command takes, and opening the repository from them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

import snapstore
from snapstore.cli.password import read_password
from snapstore.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class RepoOptions:
    repo: str | None
    password_file: str | None
    password_command: str | None

    def location(self) -> str:
        if not self.repo:
            raise UsageError("no repository given: use --repo or set SNAPSTORE_REPOSITORY")
        return self.repo

    def password(self, confirm: bool = False) -> bytes:
        return read_password(self.password_file, self.password_command, confirm=confirm)

    def open(self, load_index: bool = True) -> snapstore.Repository:
        location = self.location()
        return snapstore.open_repository(location, self.password(), load_index=load_index)


def repository_options(func: F) -> F:
    """Adds --repo/--password-file/--password-command and passes them as `repo_options`."""
    decorators = [
        click.option(
            "-r", "--repo", envvar="SNAPSTORE_REPOSITORY", help="Repository path or URL (env SNAPSTORE_REPOSITORY)."
        ),
        click.option(
            "--password-file", envvar="SNAPSTORE_PASSWORD_FILE", type=click.Path(dir_okay=False),
            help="Read the password from this file (env SNAPSTORE_PASSWORD_FILE).",
        ),
        click.option(
            "--password-command", envvar="SNAPSTORE_PASSWORD_COMMAND",
            help="Run this shell command to get the password (env SNAPSTORE_PASSWORD_COMMAND).",
        ),
    ]

    def wrapper(repo: str | None, password_file: str | None, password_command: str | None, **kwargs: Any) -> Any:
        return func(RepoOptions(repo, password_file, password_command), **kwargs)

    functools.update_wrapper(wrapper, func)  # keeps options already attached to func
    del wrapper.__wrapped__  # click must see the wrapper's signature, not func's
    result: Any = wrapper
    for decorate in reversed(decorators):
        result = decorate(result)
    return result  # type: ignore[no-any-return]
