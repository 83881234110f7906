"""Options every repository command takes, and opening the repository from them."""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Literal, TypeVar

import click

import snapstore
from snapstore.cli.password import read_password
from snapstore.cli.remote_options import (
    RemoteOptions,
    parse_wait,
    pop_remote,
    remote_decorators,
)
from snapstore.cli.run import start_run
from snapstore.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])
LockMode = Literal["shared", "exclusive"]


def _retry_lock(ctx: click.Context, param: click.Parameter, value: str | None) -> float:
    return parse_wait(value) if value else 0.0


@dataclass
class RepoOptions:
    repo: str | None
    password_file: str | None
    password_command: str | None
    retry_lock: float = 0.0
    remote: RemoteOptions = field(default_factory=RemoteOptions)
    password_env: str = "SNAPSTORE_PASSWORD"

    def location(self) -> str:
        if not self.repo:
            raise UsageError("no repository given: use --repo or set SNAPSTORE_REPOSITORY")
        return self.repo

    def password(self, confirm: bool = False) -> bytes:
        return read_password(
            self.password_file, self.password_command, confirm=confirm, env=self.password_env
        )

    def open(
        self, load_index: bool = True, lock: LockMode | None = None, *, cache: bool = True
    ) -> snapstore.Repository:
        """Opens the repository; with `lock`, holds a shared or exclusive lock until closed.
        `cache=False` reads everything from the repository, whatever --no-cache says."""
        location = self.location()
        kwargs = self.remote.repository_kwargs(location)
        if not cache:
            kwargs["cache_dir"] = None
        return snapstore.open_repository(
            location, self.password(), load_index=load_index, lock=lock, retry_lock=self.retry_lock,
            on_damaged=warn_damaged, **kwargs,
        )

    def init(self, password: bytes, pack_size: int | None = None) -> snapstore.Repository:
        """Creates the repository (an S3 bucket too, if missing)."""
        location = self.location()
        return snapstore.init_repository(
            location, password, pack_size=pack_size, **self.remote.repository_kwargs(location)
        )


def warn_damaged(damaged: snapstore.DamagedObject) -> None:
    """One warning line for each damaged index file or snapshot a command leaves out."""
    if damaged.kind == "index":
        what, after = "index file", "; its packs are read from their own headers (run `snapstore repair index`)"
    else:
        what, after = "snapshot", ""
    click.echo(f"snapstore: warning: {what} {damaged.name[:8]} is damaged and was skipped: "
               f"{damaged.error}{after}", err=True)


def repository_options(func: F) -> F:
    """Adds --repo/--password-file/--password-command/--retry-lock and the remote options
    (--s3-*, --sftp-*, --connections, --cache-dir, --no-cache), passed as `repo_options`."""
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
        click.option(
            "--retry-lock", metavar="DURATION", callback=_retry_lock,
            help="If the repository is locked, keep trying this long (e.g. 30s, 5m); default: fail at once.",
        ),
        *remote_decorators(),
    ]

    def wrapper(
        repo: str | None, password_file: str | None, password_command: str | None, retry_lock: float,
        **kwargs: Any,
    ) -> Any:
        remote = pop_remote(kwargs)
        start_run()  # the `before` hooks, now that the arguments are known to be good
        with interrupt_on_signals(remote.interrupt):
            return func(RepoOptions(repo, password_file, password_command, retry_lock, remote), **kwargs)

    functools.update_wrapper(wrapper, func)  # keeps options already attached to func
    del wrapper.__wrapped__  # type: ignore[attr-defined]  # click must see the wrapper's signature
    result: Any = wrapper
    for decorate in reversed(decorators):
        result = decorate(result)
    return result


@contextlib.contextmanager
def interrupt_on_signals(interrupt: snapstore.Interrupt) -> Iterator[None]:
    """While a command runs, Ctrl-C and SIGTERM also set `interrupt` before the handler already
    in place raises in the main thread (KeyboardInterrupt, or app.py's Terminated).

    Only the main thread sees that exception; worker threads asleep in a retry back-off see
    the flag and give up, so the main thread, which waits for them on its way out, is not held
    up for minutes. A signal that is ignored or left to the system is not touched.
    """
    previous: dict[signal.Signals, Callable[[int, FrameType | None], Any]] = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if callable(handler):
                signal.signal(signum, _chained(interrupt, handler))
                previous[signum] = handler
    except ValueError:  # not the main thread: signals are not ours to handle
        pass
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _chained(
    interrupt: snapstore.Interrupt, handler: Callable[[int, FrameType | None], Any]
) -> Callable[[int, FrameType | None], Any]:
    def on_signal(signum: int, frame: FrameType | None) -> Any:
        interrupt.set()
        return handler(signum, frame)

    return on_signal
