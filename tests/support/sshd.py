"""A real SSH/SFTP server for tests: OpenSSH's sshd on a free loopback port, in a temp folder.

It gets its own host key, config and authorized key (a client key made here too), and runs
in the foreground as a child of the test process (`sshd -D -e`). It logs in as the user
running the tests (root in CI). Nothing outside the temp folder is read or changed, except
that sshd needs its privilege separation folder (/run/sshd), made if missing.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import ServerUnavailable

START_TIMEOUT = 10.0
_SSHD_PATHS = ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]


@dataclass(frozen=True)
class SshServer:
    host: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    folder: Path

    def url(self, path: str | Path) -> str:
        return f"sftp://{self.user}@{self.host}:{self.port}{path}"

    def options(self) -> dict[str, str]:
        """Options for `open_backend("sftp://...", options=...)`."""
        return {"key_filename": str(self.client_key), "known_hosts": str(self.known_hosts)}


def _find_sshd() -> str:
    found = shutil.which("sshd") or next((p for p in _SSHD_PATHS if os.access(p, os.X_OK)), None)
    if found is None:
        raise ServerUnavailable("sshd is not installed (Debian: openssh-server)")
    if shutil.which("ssh-keygen") is None:
        raise ServerUnavailable("ssh-keygen is not installed")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip


@contextlib.contextmanager
def running_sshd(folder: Path) -> Iterator[SshServer]:
    """Start sshd serving SFTP on 127.0.0.1; ServerUnavailable if it cannot."""
    sshd = _find_sshd()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    host_key, client_key = folder / "host_key", folder / "client_key"
    try:
        _keygen(host_key)
        _keygen(client_key)
    except subprocess.CalledProcessError as exc:
        raise ServerUnavailable(f"ssh-keygen failed: {exc.stderr.decode(errors='replace')}") from exc
    authorized = folder / "authorized_keys"
    authorized.write_bytes(client_key.with_suffix(".pub").read_bytes())
    authorized.chmod(0o600)
    port = _free_port()
    known_hosts = folder / "known_hosts"
    public_host_key = host_key.with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {public_host_key[0]} {public_host_key[1]}\n")
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {host_key}\n"
        f"AuthorizedKeysFile {authorized}\n"
        f"PidFile {folder / 'sshd.pid'}\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\n"
        "PermitRootLogin prohibit-password\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "MaxSessions 32\n"
        "MaxStartups 32:30:64\n"
        "Subsystem sftp internal-sftp\n"
    )
    with contextlib.suppress(OSError):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation folder
    log = (folder / "sshd.log").open("wb")
    process = subprocess.Popen(
        [sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_until_listening(process, port, folder / "sshd.log")
        yield SshServer("127.0.0.1", port, getpass.getuser(), client_key, known_hosts, folder)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise ServerUnavailable(
                f"sshd exited with {process.returncode}: {log.read_text(errors='replace')[-500:]}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise ServerUnavailable(f"sshd on port {port} did not answer within {START_TIMEOUT}s")
        time.sleep(0.05)
