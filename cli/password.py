"""Where the repository password comes from: file, command, environment, or a prompt."""

from __future__ import annotations

import getpass
import os
import subprocess

from snapstore.errors import UsageError


def _from_command(command: str) -> bytes:
    try:
        done = subprocess.run(command, shell=True, capture_output=True, check=False, timeout=120)
    except subprocess.TimeoutExpired:
        raise UsageError(f"password command timed out: {command}") from None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(
            f"password command exited {done.returncode}" + (f": {tail[-1]}" if tail else "")
        )
    return done.stdout.rstrip(b"\r\n")


def _terminal() -> bool:
    try:
        with open("/dev/tty"):
            return True
    except OSError:
        return False


def read_password(
    password_file: str | None,
    password_command: str | None,
    *,
    confirm: bool = False,
    env: str = "SNAPSTORE_PASSWORD",
    prompt: str | None = None,
) -> bytes:
    """The password, trying in order: --password-file, --password-command, the variable
    `env` (SNAPSTORE_PASSWORD; `copy` reads SNAPSTORE_TO_PASSWORD for its destination), then
    a prompt on the terminal (`prompt`, default "repository password: ")."""
    if password_file:
        try:
            with open(password_file, "rb") as f:
                return f.read().rstrip(b"\r\n")
        except OSError as exc:
            raise UsageError(f"cannot read password file {password_file}: {exc.strerror}") from None
    if password_command:
        return _from_command(password_command)
    from_env = os.environ.get(env)
    if from_env is not None:
        return from_env.encode()
    if not _terminal():
        raise UsageError(
            f"no password given: set {env}, {env}_FILE or {env}_COMMAND, or run on a terminal"
        )
    whose = "destination " if env != "SNAPSTORE_PASSWORD" else ""
    first = getpass.getpass(prompt or f"{whose}repository password: ")
    if confirm and getpass.getpass("repeat password: ") != first:
        raise UsageError("the passwords do not match")
    if not first:
        raise UsageError("an empty password is not allowed")
    return first.encode()
