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
    REPOSITORY,
    RemoteOptions,
    SharedOption,
    parse_wait,
    pop_remote,
    repository_decorators,
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
    reads_only: bool = False  # the command only reads (see `reads_only`)
    no_lock: bool = False  # --no-lock: read without taking a lock

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
        `cache=False` reads everything from the repository, whatever --no-cache says. For a
        command that only reads, --no-lock takes no lock, and a repository that refuses to
        store one is read without it, saying so in one warning line."""
        location = self.location()
        kwargs = self.remote.repository_kwargs(location)
        if not cache:
            kwargs["cache_dir"] = None
        if self.reads_only and self.no_lock:
            lock = None
        return snapstore.open_repository(
            location, self.password(), load_index=load_index, lock=lock, retry_lock=self.retry_lock,
            on_damaged=warn_damaged, read_only=self.reads_only, on_read_only=warn_read_only,
            **kwargs,
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


def warn_read_only(refused: snapstore.SnapstoreError) -> None:
    """The one line saying that a repository refusing writes is read without a lock."""
    click.echo(f"snapstore: warning: reading without a lock, the repository refuses writes: {refused}",
               err=True)


def reads_only(func: F) -> F:
    """Marks a command that only reads (ls, restore, dump, find, diff, mount, snapshots,
    stats, check): adds --no-lock, and lets it read a repository that refuses to store a
    lock (a read-only disk or S3 key) without one. Goes below `repository_options`."""

    def wrapper(repo_options: RepoOptions, *args: Any, no_lock: bool, **kwargs: Any) -> Any:
        repo_options.reads_only, repo_options.no_lock = True, no_lock
        return func(repo_options, *args, **kwargs)

    functools.update_wrapper(wrapper, func)
    del wrapper.__wrapped__  # type: ignore[attr-defined]  # click must see the wrapper's signature
    option = click.option(
        "--no-lock", is_flag=True,
        help="Take no lock: read a repository others may be changing (a prune running now "
             "could remove what this reads). A read-only repository is read without one anyway.",
    )  # fmt: skip
    result: Any = option(wrapper)
    return result


def repository_options(func: F) -> F:
    """Adds --repo/--password-file/--password-command/--retry-lock and the remote options
    (--s3-*, --sftp-*, --connections, --cache-dir, --no-cache), passed as `repo_options`.
    All but --retry-lock are also the group's (remote_options.REPOSITORY_SETTINGS): given
    before the command's name, they arrive here as defaults (app.py)."""
    decorators = [
        *repository_decorators(envvar=False),  # the group reads their variables (app.py)
        click.option(
            "--retry-lock", metavar="DURATION", callback=_retry_lock, cls=SharedOption,
            group=REPOSITORY,
            help="If the repository is locked, keep trying this long (e.g. 30s, 5m); default: fail at once.",
        ),
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
