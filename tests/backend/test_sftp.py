"""The SFTP backend (fsspec over paramiko) against a real OpenSSH sshd on loopback.

The server is started once per session by `tests.support.sshd`; when it cannot be started
these tests are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from snapstore.backend import open_backend
from snapstore.backend.base import Backend, FileType, Handle
from snapstore.backend.retry import RetryBackend
from snapstore.backend.sftp import sftp_backend as raw_sftp_backend
from snapstore.errors import BackendError, TransientBackendError
from tests.backend.conformance import BackendConformance
from tests.support import required_server
from tests.support.sshd import SshServer, running_sshd

_repos = itertools.count(1)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with required_server(running_sshd(tmp_path_factory.mktemp("sshd")), "SFTP server") as server:
        yield server


def sftp_backend(server: SshServer, root: Path, **options: str) -> Backend:
    return open_backend(server.url(root), options={**server.options(), **options}, connections=4)


class TestSftpBackend(BackendConformance):
    @pytest.fixture
    def backend(self, sshd: SshServer, tmp_path: Path) -> Iterator[Backend]:
        self.root = tmp_path / f"repo{next(_repos)}"
        backend = sftp_backend(sshd, self.root)
        backend.create()
        yield backend
        backend.close()

    def plant_stray(self, backend: Backend, relative_path: str, data: bytes) -> None:
        path = self.root.joinpath(*relative_path.split("/"))  # the server's disk is ours
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_open_backend_wraps_sftp_in_retries(sshd: SshServer, tmp_path: Path) -> None:
    backend = sftp_backend(sshd, tmp_path / "r")
    assert isinstance(backend, RetryBackend)
    assert backend.location == sshd.url(tmp_path / "r")


def test_objects_land_in_the_layout_on_the_server(sshd: SshServer, tmp_path: Path) -> None:
    backend = sftp_backend(sshd, tmp_path / "r")
    backend.create()
    backend.save(Handle(FileType.PACK, "abcd01"), b"pack")
    assert (tmp_path / "r" / "data" / "ab" / "abcd01").read_bytes() == b"pack"
    assert not [p for p in (tmp_path / "r").rglob(".tmp-*")]
    backend.close()


def test_unknown_host_key_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    backend = sftp_backend(sshd, tmp_path / "r", known_hosts=str(empty))
    with pytest.raises(BackendError, match="is not in") as caught:
        backend.create()
    assert not isinstance(caught.value, TransientBackendError)
    assert not (tmp_path / "r").exists()


def test_changed_host_key_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, key = other.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[{sshd.host}]:{sshd.port} {kind} {key}\n")
    backend = sftp_backend(sshd, tmp_path / "r", known_hosts=str(known))
    with pytest.raises(BackendError, match="does not match"):
        backend.create()


def test_wrong_client_key_is_a_permanent_error(sshd: SshServer, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    backend = open_backend(
        sshd.url(tmp_path / "r"),
        options={"key_filename": str(stranger), "known_hosts": str(sshd.known_hosts)},
    )
    with pytest.raises(BackendError) as caught:
        backend.create()
    assert not isinstance(caught.value, TransientBackendError)


def test_nothing_listens_is_transient(sshd: SshServer, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    url = f"sftp://{sshd.user}@127.0.0.1:{closed_port}{tmp_path}"
    backend = raw_sftp_backend(url, location=url, **sshd.options())
    with pytest.raises(TransientBackendError):
        backend.create()
