"""SFTP through fsspec's paramiko filesystem: host keys checked, one session per thread.

    sftp://user@host[:port]/absolute/path

fsspec's SFTP filesystem accepts any host key it has not seen by default, which lets anyone
on the path pose as the server and swallow the backups. Here the server's key must be in a
known_hosts file (OpenSSH's format, hashed names included) or the connection is refused
with a message saying how to add it. Authentication is paramiko's: the key file given, else
the SSH agent and the usual `~/.ssh/id_*` keys, else a password in the URL.

A paramiko SFTP session must not serve two threads at once, so the backend is a pool of
connections (see `pool.py`), each an FsspecBackend over its own filesystem. Writes go to a
temporary name and are renamed into place (SFTP has no atomic upload).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import paramiko
from fsspec.implementations.sftp import SFTPFileSystem

from snapstore.backend.base import Backend
from snapstore.backend.fsspec import FsspecBackend, map_errors
from snapstore.backend.pool import PooledBackend
from snapstore.errors import BackendError, UsageError

CONNECT_TIMEOUT = 30.0
_READ_PIECE = 1 << 20  # paramiko joins one big readv piece slowly; 1 MiB pieces stream


class _SFTP(SFTPFileSystem):
    """fsspec's SFTP filesystem with our host key policy (set here rather than through the
    `host_key_policy` argument older fsspec lacks), and whole writes and ranged reads without
    a round trip per 32 KiB packet: paramiko's plain file calls wait for each reply, which
    makes a 16 MiB pack take seconds even on loopback."""

    def __init__(self, host: str, *, policy: paramiko.MissingHostKeyPolicy, **kwargs: object):
        self._policy = policy
        super().__init__(host, **kwargs)

    def _connect(self) -> None:
        self.client = paramiko.SSHClient()
        self.client.set_missing_host_key_policy(self._policy)
        self.client.connect(self.host, **self.ssh_kwargs)
        self.ftp = self.client.open_sftp()

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: object) -> None:
        with self.ftp.open(self._strip_protocol(path), "wb") as f:
            f.set_pipelined(True)
            f.write(value)

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: object
    ) -> bytes:
        with self.ftp.open(self._strip_protocol(path), "rb") as f:
            size = f.stat().st_size
            first = 0 if start is None else (start if start >= 0 else max(0, size + start))
            last = size if end is None else (end if end >= 0 else size + end)
            last = min(last, size)
            if last <= first:
                return b""
            pieces = [(o, min(_READ_PIECE, last - o)) for o in range(first, last, _READ_PIECE)]
            return b"".join(f.readv(pieces))  # requests all pieces at once, in order


class KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    """Accept a server only if its key is listed for it in `known_hosts`."""

    def __init__(self, known_hosts: str | None) -> None:
        self._path = known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        keys = paramiko.HostKeys()
        if self._path:
            try:
                keys.load(self._path)
            except OSError:
                pass  # a missing file knows no hosts
        if keys.check(hostname, key):
            return
        where = self._path or "(no known_hosts file given)"
        if keys.lookup(hostname):
            raise BackendError(
                f"the host key of {hostname} does not match the one in {where}: "
                "refusing to connect (the server may be impersonated)"
            )
        raise BackendError(
            f"the host key of {hostname} ({key.get_name()}) is not in {where}: connect once "
            "with ssh, or add it with ssh-keyscan, after checking its fingerprint"
        )


def sftp_backend(
    url: str,
    *,
    location: str,
    key_filename: str | None = None,
    known_hosts: str | None = None,
    connections: int = 1,
) -> Backend:
    """A pool of up to `connections` SFTP connections to the repository at `url`."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise UsageError(f"no host in {location}")
    root = unquote(parts.path)
    if root.strip("/") == "":
        raise UsageError(f"no path in {location}: give the repository folder after the host")
    try:
        port = parts.port or 22
    except ValueError as exc:
        raise UsageError(f"bad port in {location}") from exc
    connect_options: dict[str, object] = {
        "port": port,
        "timeout": CONNECT_TIMEOUT,
        "banner_timeout": CONNECT_TIMEOUT,
        "auth_timeout": CONNECT_TIMEOUT,
    }
    if parts.username:
        connect_options["username"] = unquote(parts.username)
    if parts.password:
        connect_options["password"] = unquote(parts.password)
    if key_filename:
        connect_options["key_filename"] = key_filename
    host = parts.hostname

    def connect() -> Backend:
        with map_errors(location):
            fs = _SFTP(
                host, policy=KnownHostsPolicy(known_hosts), skip_instance_cache=True,
                **connect_options,
            )
        return FsspecBackend(fs, root, atomic_put=False, location=location, closer=fs.client.close)

    return PooledBackend(connect, size=connections, location=location)
