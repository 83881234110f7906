"""Running the admin's hook commands: `sh -c CMD`, as borgmatic and resticprofile run theirs.

A hook's output goes to snapstore's standard error (standard output stays the command's: it
may be JSON). A hook runs in a session of its own so that, when it outlasts its timeout, the
whole group goes (the `curl` a `sh -c` started, not only the shell): SIGTERM, then SIGKILL.

Its environment is snapstore's plus what is known of the run:

    SNAPSTORE_HOOK          before, after or failure
    SNAPSTORE_COMMAND       the command, e.g. "snapshot mastodon"
    SNAPSTORE_STATUS        success or failure (after the command)
    SNAPSTORE_EXIT_CODE     snapstore's exit code (after the command)
    SNAPSTORE_DURATION      seconds the command took, e.g. 12.3 (after the command)
    SNAPSTORE_ERROR         the one line that says what failed (on failure)
    SNAPSTORE_SNAPSHOT_ID   the snapshot taken (snapshot commands)
    SNAPSTORE_BYTES_ADDED   bytes the snapshot added to the repository (snapshot commands)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping

import click

from snapstore.errors import SnapstoreError

#: How long a hook killed for its timeout has after SIGTERM before SIGKILL.
KILL_GRACE = 5.0


class HookFailed(SnapstoreError):
    """A `before` hook failed, so the command did not run (exit 1). Raised by the command line
    only, which is why it is not in snapstore.errors: the library runs no hooks."""


def run_hook(command: str, facts: Mapping[str, str], timeout: float) -> str | None:
    """Runs one hook to its end; None when it exited 0, else what went wrong ("exited 7",
    "timed out after 300 s")."""
    env = {**os.environ, **facts}
    try:
        process = subprocess.Popen(
            ["sh", "-c", command], env=env, stdin=subprocess.DEVNULL, stdout=_stderr_fd(),
            start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        return f"could not be started: {exc.strerror or exc}"
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
        return f"timed out after {timeout:g} s"
    except BaseException:  # Ctrl-C, SIGTERM: the hook must not outlive snapstore
        _stop(process)
        raise
    if code == 0:
        return None
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited {code}"


def run_hooks(kind: str, commands: tuple[str, ...], facts: Mapping[str, str], timeout: float) -> None:
    """Runs the hooks of one kind in order. A failed `before` hook raises HookFailed and the
    rest are not run; other kinds warn and go on."""
    for command in commands:
        failure = run_hook(command, {**facts, "SNAPSTORE_HOOK": kind}, timeout)
        if failure is None:
            continue
        message = f"{kind} hook {command!r} {failure}"
        if kind == "before":
            raise HookFailed(f"{message}: the command was not run")
        click.echo(f"snapstore: warning: {message}", err=True)


def _stderr_fd() -> int | None:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by something without a descriptor
        return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
