"""Run a dump command and let its exit status decide whether the output is a backup.

`CommandStream` starts a command (pg_dump, redis-cli --rdb -, ...) and hands its stdout to
the archiver as a binary stream. Nothing goes through a shell. When the consumer leaves the
context normally, the command must have reached the end of its output and exited 0;
anything else raises `DumpFailed` carrying the exit status and the tail of stderr, so a
dump that died half-way never becomes a snapshot (restic issue #4251). When the consumer
leaves with an exception, the command is killed and the consumer's exception propagates.

Memory stays constant whatever the output size: stdout is read by the consumer through a
fixed-size buffer and stderr is drained by a thread that keeps only its last bytes.

The child's environment is passed in. `env=None` means the child inherits this process's
environment (the subprocess default); `extra_env` (a password, say) is laid over it. That
overlay is the one place the library copies `os.environ`: it forwards the environment to
the child and never reads configuration from it.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, BinaryIO, cast

from snapstore.errors import DumpFailed, SourceError

STDERR_TAIL_BYTES = 64 * 1024
# A grandchild may keep stderr open after the command exits; do not wait for it forever.
STDERR_WAIT_SECONDS = 10.0
# What a shell reports for a command it cannot run; used when exec itself fails.
CANNOT_EXECUTE = 127


def child_environment(
    env: Mapping[str, str] | None, extra_env: Mapping[str, str] | None
) -> dict[str, str] | None:
    """The environment to give the child: None lets it inherit ours untouched."""
    if not extra_env:
        return None if env is None else dict(env)
    base = os.environ if env is None else env
    return {**base, **extra_env}


#: Programs whose `exec` subcommand starts a client inside a container.
_CONTAINER_RUNTIMES = ("docker", "podman", "nerdctl")


def client_prefix(
    command_prefix: Sequence[str], run_as: str | None, secret_env: Sequence[str] = ()
) -> list[str]:
    """What goes before a client program (psql, pg_dump, redis-cli) so that it runs where
    the server expects it and still gets its password.

    - `run_as` (a peer-authentication install: PostgreSQL lets the OS user `mastodon` in as
      the role `mastodon` over the local socket) runs the client as that system user:
      `runuser -u USER --` when we are root (it keeps the environment, so PGPASSWORD goes
      along), else `sudo -n -u USER --preserve-env=... --`; nothing when we already are USER.
    - A `docker exec` (or podman, nerdctl) prefix does not pass our environment into the
      container: each variable of `secret_env` that is set for the child (PGPASSWORD,
      REDISCLI_AUTH) is added as `-e VAR` (by name only: the value never reaches a command
      line) unless the prefix already passes it.
    """
    prefix = list(command_prefix)
    if secret_env and _is_container_exec(prefix):
        at = prefix.index("exec") + 1
        for name in secret_env:
            if not _passes_env(prefix, name):
                prefix[at:at] = ["-e", name]
    if run_as is None or _current_user() == run_as:
        return prefix
    if os.geteuid() == 0:
        return ["runuser", "-u", run_as, "--", *prefix]
    keep = ",".join(["PGAPPNAME", "PGCONNECT_TIMEOUT", *secret_env])
    return ["sudo", "-n", "-u", run_as, f"--preserve-env={keep}", "--", *prefix]


def _is_container_exec(prefix: Sequence[str]) -> bool:
    return bool(prefix) and os.path.basename(prefix[0]) in _CONTAINER_RUNTIMES and "exec" in prefix


def _passes_env(prefix: Sequence[str], name: str) -> bool:
    for index, word in enumerate(prefix):
        if word in ("-e", "--env") and index + 1 < len(prefix):
            value = prefix[index + 1]
        elif word.startswith("--env="):
            value = word[len("--env="):]
        elif word.startswith("-e") and len(word) > 2:
            value = word[2:]
        else:
            continue
        if value.split("=", 1)[0] == name:
            return True
    return False


def _current_user() -> str | None:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return None


def display_name(argv: Sequence[str]) -> str:
    """A short name for messages: the program's basename, never its arguments (passwords)."""
    return os.path.basename(argv[0]) if argv else "?"


class StderrTail:
    """Reads a pipe to its end in a thread, keeping only the last `limit` bytes.

    The thread owns the pipe and closes it at end of file: closing it from another thread
    while a read is blocked could let the descriptor number be reused under the reader.
    """

    def __init__(self, pipe: IO[bytes], limit: int) -> None:
        self._pipe = pipe
        self._fd = pipe.fileno()
        self._limit = limit
        self._tail = bytearray()
        self._thread = threading.Thread(target=self._run, name="stderr-drain", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while chunk := os.read(self._fd, 65536):
                self._tail += chunk
                if len(self._tail) > self._limit:
                    del self._tail[: len(self._tail) - self._limit]
        except OSError:
            pass
        finally:
            self._pipe.close()

    def text(self, timeout: float | None = None) -> str:
        self._thread.join(timeout)
        return bytes(self._tail).decode("utf-8", errors="replace")


class CommandStream:
    """Context manager: the command's stdout as a stream; a failed command raises on exit."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        name: str | None = None,
        stderr_limit: int = STDERR_TAIL_BYTES,
    ) -> None:
        if not argv:
            raise ValueError("CommandStream needs a command")
        self.argv = list(argv)
        self.name = name or display_name(self.argv)
        self._env = child_environment(env, extra_env)
        self._stderr_limit = stderr_limit
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: StderrTail | None = None

    def __enter__(self) -> BinaryIO:
        if self._proc is not None:
            raise SourceError(f"{self.name}: a command stream can be read only once")
        try:
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env,
                close_fds=True,
            )
        except OSError as exc:
            raise DumpFailed(self.name, CANNOT_EXECUTE, f"cannot execute: {exc}") from exc
        assert proc.stdout is not None and proc.stderr is not None
        self._proc = proc
        self._stderr = StderrTail(proc.stderr, self._stderr_limit)
        return cast(BinaryIO, proc.stdout)  # a BufferedReader: read(n) blocks for n bytes

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, stderr = self._proc, self._stderr
        assert proc is not None and stderr is not None and proc.stdout is not None
        if exc_type is not None:
            self._kill(proc, stderr)
            return  # let the consumer's exception propagate
        try:
            leftover = proc.stdout.read(1)
        except (OSError, ValueError):
            leftover = b""  # the consumer closed the stream itself
        if leftover:
            self._kill(proc, stderr)
            raise SourceError(f"{self.name}: output was not read to the end")
        proc.stdout.close()
        returncode = proc.wait()
        tail = stderr.text(timeout=STDERR_WAIT_SECONDS)
        if returncode != 0:
            raise DumpFailed(self.name, returncode, tail)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes], stderr: StderrTail) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        stderr.text(timeout=STDERR_WAIT_SECONDS)


def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    name: str | None = None,
    timeout: float | None = None,
    stdin: bytes | None = None,
) -> bytes:
    """Run a short command (a version query, a count) and return its stdout; `stdin` is
    its standard input (a statement that must not show on a command line).

    For small outputs only: stdout is held in memory. A non-zero exit raises `DumpFailed`.
    """
    label = name or display_name(argv)
    try:
        done = subprocess.run(
            list(argv),
            input=stdin if stdin is not None else b"",
            capture_output=True,
            env=child_environment(env, extra_env),
            timeout=timeout,
            check=False,
        )
    except OSError as exc:
        raise DumpFailed(label, CANNOT_EXECUTE, f"cannot execute: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise DumpFailed(label, None, f"timed out after {timeout} s") from exc
    if done.returncode != 0:
        tail = done.stderr[-STDERR_TAIL_BYTES:].decode("utf-8", errors="replace")
        raise DumpFailed(label, done.returncode, tail)
    return done.stdout
