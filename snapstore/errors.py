"""The exceptions snapstore raises, in one tree.

    SnapstoreError
    ├── BackendError                  storage said no, or could not be reached
    │   ├── ObjectNotFound            the object does not exist
    │   ├── ObjectExists              refused to overwrite an object
    │   ├── TransientBackendError     worth retrying (timeouts, 5xx, throttling)
    │   ├── RangeError                a read past the end of an object
    │   └── PermissionDenied          refused: a read-only filesystem, no permission, 403
    ├── IntegrityError                what was read is not what was written
    │   ├── AuthenticationFailed      AEAD tag mismatch: tampered or corrupt ciphertext
    │   ├── IdMismatch                plaintext does not hash to the id it is stored under
    │   ├── Truncated                 an object or blob ends too early
    │   └── DecompressionError        the compressed payload is damaged
    ├── RepositoryError               the repository as a whole
    │   ├── RepositoryNotFound        no repository at that location
    │   ├── RepositoryExists          init over an existing repository
    │   ├── WrongPassword             no key file opens with that password
    │   ├── RepositoryLocked          another process holds a conflicting lock
    │   └── UnsupportedVersion        written by a newer snapstore
    ├── SnapshotNotFound              no snapshot matches the name given
    │   └── AmbiguousPrefix           an id prefix matches several snapshots
    ├── PathNotFound                  a path is not in the snapshot
    │   └── PathIsDirectory           a file was asked for; the path is a directory
    ├── SourceError                   a backup source could not be read
    │   └── DumpFailed                a dump command failed (also a CommandFailed)
    ├── CommandFailed                 an external program (pg_dump, pg_restore, psql...) failed
    │   ├── DumpFailed
    │   └── RestoreFailed             a restore into a database or server failed
    ├── UnsafePath                    a snapshot entry would land outside the restore target
    └── UsageError                    the caller asked for something contradictory
        ├── PaperKeyError             a paper key typed back wrong (names the line)
        └── KeyInUse                  removing the last key file, or the one in use

The library never maps these to exit codes: the command line does that in one table.
"""

from __future__ import annotations

import re


class SnapstoreError(Exception):
    """Root of every error snapstore raises on purpose."""


class BackendError(SnapstoreError):
    """The storage backend failed an operation."""


class ObjectNotFound(BackendError):
    """The requested object does not exist on the backend."""


class ObjectExists(BackendError):
    """The object exists and the operation refuses to overwrite it."""


class TransientBackendError(BackendError):
    """A failure that may succeed when tried again."""


class RangeError(BackendError):
    """A ranged read asked for bytes past the end of the object."""


class PermissionDenied(BackendError):
    """The storage refused the operation itself: a read-only filesystem (EROFS), no
    permission (EACCES, EPERM), an S3 key without the right (403 AccessDenied). Permanent.
    A repository that refuses to store a lock can still be read without one."""


class IntegrityError(SnapstoreError):
    """Data read back does not match what was written."""


class AuthenticationFailed(IntegrityError):
    """The AEAD tag did not verify: the ciphertext was altered or the key is wrong."""


class IdMismatch(IntegrityError):
    """Decrypted plaintext does not hash to the id it is filed under."""


class Truncated(IntegrityError):
    """An object or blob is shorter than its framing says."""


class DecompressionError(IntegrityError):
    """The compressed payload inside an authenticated envelope is unreadable."""


class RepositoryError(SnapstoreError):
    """The repository as a whole cannot be used as asked."""


class RepositoryNotFound(RepositoryError):
    """There is no repository at the location."""


class RepositoryExists(RepositoryError):
    """A repository already exists where one was to be created."""


class WrongPassword(RepositoryError):
    """None of the repository's key files opens with the password given."""


class RepositoryLocked(RepositoryError):
    """Another process holds a lock that conflicts with this operation."""


class UnsupportedVersion(RepositoryError):
    """The repository or one of its objects uses a format this version cannot read."""


class SnapshotNotFound(SnapstoreError):
    """No snapshot matches the name given."""


class AmbiguousPrefix(SnapshotNotFound):
    """An id prefix matches more than one snapshot."""


class PathNotFound(SnapstoreError):
    """The path does not exist inside the snapshot."""


class PathIsDirectory(PathNotFound):
    """A file was asked for (dump) and the path names a directory of the snapshot."""


class SourceError(SnapstoreError):
    """A backup source could not be read."""


class CommandFailed(SnapstoreError):
    """An external program exited non-zero or was killed; the message ends with its error."""

    def __init__(self, command: str, returncode: int | None, stderr_tail: str) -> None:
        self.command = command
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        status = "was killed" if returncode is None or returncode < 0 else f"exited {returncode}"
        detail = last_message(stderr_tail)
        super().__init__(f"{command} {status}: {detail}" if detail else f"{command} {status}")


def last_message(stderr: str) -> str:
    """The message that says what went wrong in a program's stderr: the last line naming an
    error (`error:`, `ERROR:`, `FATAL:`), else the last line, with its indented continuation
    lines joined (libpq prints "connection ... failed" and then an indented hint). The lines
    after an error are details ("Query was: ..."), not the error."""
    lines = [line for line in stderr.rstrip().splitlines() if line.strip()]
    if not lines:
        return ""
    naming = [i for i, line in enumerate(lines) if _ERROR_WORD.search(line)]
    start = naming[-1] if naming else len(lines) - 1
    while start > 0 and lines[start][:1].isspace():
        start -= 1
    end = start + 1
    while end < len(lines) and lines[end][:1].isspace():
        end += 1
    return " ".join(line.strip() for line in lines[start:end])


_ERROR_WORD = re.compile(r"\b(?:error|ERROR|FATAL|PANIC):")


class DumpFailed(SourceError, CommandFailed):
    """A dump command (pg_dump, redis-cli, ...) failed, so its output is not a backup."""


class RestoreFailed(CommandFailed):
    """pg_restore, psql or another restore-side program failed."""


class UnsafePath(SnapstoreError):
    """A snapshot entry names a path that would escape the restore target."""


class UsageError(SnapstoreError):
    """The caller asked for something that cannot be done as stated."""


class PaperKeyError(UsageError):
    """A paper key as typed back does not decode; `line` is the line to look at (1..8), or
    None when no single line is to blame."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


class KeyInUse(UsageError):
    """The key file cannot be removed: it is the last one, or it opened this session."""
