"""Key management: the key files of a repository, and its master key on paper.

A repository has one master key and any number of key files, each wrapping it under one
password (SPEC.md section 4). Adding a key writes a key file and reads it back; removing one
deletes it, but never the last key file and never the one that opened this session unless
forced. A new password is a new key file, written and opened again before the old key file
is removed, so a crash in between leaves both passwords working, never neither.

The paper key (snapstore.crypto.paper) is the master key itself: it opens the repository
without any key file (`opening.recover_repository`), which then gets a key file for a new
password.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from snapstore.backend.base import Backend, FileInfo, FileType, Handle
from snapstore.crypto.idhash import object_id
from snapstore.crypto.kdf import DEFAULT_KDF, KdfParams
from snapstore.crypto.keys import (
    MAX_KEY_FILE_SIZE,
    KeyFileInfo,
    MasterKey,
    read_key_file,
    wrap_master_key,
)
from snapstore.crypto.paper import PaperKey, encode_paper_key, read_line
from snapstore.errors import IntegrityError, KeyInUse, UnsupportedVersion, UsageError
from snapstore.repository.lock import current_user

if TYPE_CHECKING:
    from snapstore.repository.repository import Repository


@dataclass(frozen=True)
class StoredKey:
    """One key file as read without its password."""

    name: str
    created: str
    host: str
    user: str
    #: Its Argon2id parameters; None for a key file no reader would try (see `refused`).
    kdf: KdfParams | None
    #: Whether this key file opened the session.
    in_use: bool
    #: Why readers refuse it (too large, damaged, past the KDF bounds), or "".
    refused: str = ""


def new_key_file(master: MasterKey, password: bytes, kdf: KdfParams) -> tuple[str, bytes]:
    """A key file for `password` and its name; refuses an empty password before anything."""
    info = KeyFileInfo(datetime.now(UTC).isoformat(), socket.gethostname(), current_user())
    blob = wrap_master_key(master, password, kdf, info)
    return object_id(blob).hex(), blob


def list_keys(repo: Repository) -> list[StoredKey]:
    """The repository's key files, oldest first."""
    keys = [_describe(repo.backend, info, repo.key_name) for info in repo.backend.list(FileType.KEY)]
    return sorted(keys, key=lambda k: (k.created, k.name))


def _describe(backend: Backend, info: FileInfo, in_use: str | None) -> StoredKey:
    name = info.handle.name
    try:
        if info.size > MAX_KEY_FILE_SIZE:
            raise IntegrityError(f"key file {name} is {info.size} bytes, more than any key file")
        key_file = read_key_file(backend.load(info.handle), name)
    except (IntegrityError, UnsupportedVersion) as exc:
        return StoredKey(name, "", "", "", None, name == in_use, str(exc))
    i = key_file.info
    return StoredKey(name, i.created, i.host, i.user, key_file.params, name == in_use)


def add_key(repo: Repository, password: bytes, *, kdf: KdfParams = DEFAULT_KDF) -> str:
    """Writes a key file for another password; returns its name once it has been read back
    from the backend and opened with that password."""
    name, blob = new_key_file(repo.master_key, password, kdf)
    handle = Handle(FileType.KEY, name)
    repo.backend.save(handle, blob)
    if read_key_file(repo.backend.load(handle), name).unwrap(password) != repo.master_key:
        raise IntegrityError(f"key file {name} was stored but does not open as written")
    return name


def find_key(repo: Repository, prefix: str) -> StoredKey:
    """The key file whose name starts with `prefix`; UsageError if none or several do."""
    prefix = prefix.lower()
    matches = [k for k in list_keys(repo) if k.name.startswith(prefix)]
    if not prefix or not matches:
        raise UsageError(f"no key file {prefix} (see `snapstore key list`)")
    if len(matches) > 1:
        raise UsageError(f"{prefix} names {len(matches)} key files: give more of the id")
    return matches[0]


def remove_key(repo: Repository, prefix: str, *, force: bool = False) -> StoredKey:
    """Removes one key file. Refuses (KeyInUse) the last key file a reader would try, and
    without `force` the one that opened this session."""
    target = find_key(repo, prefix)
    others = [k for k in list_keys(repo) if k.name != target.name and k.kdf is not None]
    if not others:
        raise KeyInUse(
            f"key file {target.name[:8]} is the last one: without it the repository cannot be "
            "opened (add another first: snapstore key add)"
        )
    if target.in_use and not force:
        raise KeyInUse(
            f"key file {target.name[:8]} opened this session (its password is the one given): "
            "add --force to remove it anyway, or change the password with `snapstore key passwd`"
        )
    repo.backend.remove(Handle(FileType.KEY, target.name))
    return target


def change_password(
    repo: Repository, password: bytes, *, kdf: KdfParams = DEFAULT_KDF
) -> tuple[str, str | None]:
    """A key file for `password` replaces the one that opened this session: the new one is
    written, read back and opened before the old one is removed. Returns (new, removed)."""
    old = repo.key_name
    new = add_key(repo, password, kdf=kdf)
    repo.key_name = new
    if old is not None and old != new:
        repo.backend.remove(Handle(FileType.KEY, old))
    return new, old


def export_paper_key(repo: Repository) -> str:
    """The master key as text to print (snapstore.crypto.paper): a title and 8 lines."""
    return encode_paper_key(PaperKey(repo.config.repository_id, repo.master_key))


def check_paper_line(number: int, typed: str) -> None:
    """Raises PaperKeyError if line `number` of a paper key was typed wrong."""
    read_line(number, typed)
