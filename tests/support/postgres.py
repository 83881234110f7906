"""A throwaway PostgreSQL cluster for tests: initdb into a temp dir, start on a free port.

Never touches a system cluster: the server listens on 127.0.0.1 on a port picked at
random and keeps its unix socket in its own temp dir. Authentication is `trust`.

initdb and postgres refuse to run as root, so when the tests run as root the server
commands run as the `postgres` system user (or `nobody`) through `runuser`, and the temp
dir is handed to that user. Clients (psql, pg_dump) can run as anyone over TCP.

Set SNAPSTORE_TEST_PG_BINDIR to pick a bin directory; otherwise the newest
/usr/lib/postgresql/<version>/bin is used, then whatever `pg_ctl` is on PATH.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support import ServerUnavailable

SUPERUSER = "postgres"
START_ATTEMPTS = 3


def free_port() -> int:
    """A TCP port nobody listens on right now (a race, which start() retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_bindir() -> Path:
    """The directory holding initdb and pg_ctl, newest version first."""
    explicit = os.environ.get("SNAPSTORE_TEST_PG_BINDIR")
    candidates: list[Path] = [Path(explicit)] if explicit else []

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise ServerUnavailable("no PostgreSQL server binaries (initdb, pg_ctl) found")


def _server_user() -> str | None:
    """The unprivileged user to run the server as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise ServerUnavailable("running as root and no postgres/nobody user to run the server")


def _client_env() -> dict[str, str]:
    """Our environment without PG* variables, so a stray PGDATABASE cannot redirect a test."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


@dataclass
class PostgresServer:
    """A running test cluster and a few client helpers."""

    host: str
    port: int
    user: str
    bindir: Path
    root: Path

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def dsn(self, db: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{db}"

    def bin(self, program: str) -> str:
        """Path of a client program of the same version as the server (psql, pg_restore)."""
        return str(self.bindir / program)

    def connection_args(self, db: str = "postgres") -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user, "-d", db]

    def psql(self, sql: str, db: str = "postgres") -> str:
        """Run SQL (one statement or a script) and return unaligned, tuples-only output."""
        argv = [self.bin("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
        done = subprocess.run(
            argv + self.connection_args(db) + ["-f", "-"],
            input=sql.encode(),
            capture_output=True,
            env=_client_env(),
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr.decode()}")
        return done.stdout.decode().strip()

    def createdb(self, name: str) -> None:
        self.psql(f'CREATE DATABASE "{name}"')

    def dropdb(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def row_count(self, table: str, db: str) -> int:
        return int(self.psql(f'SELECT count(*) FROM "{table}"', db))


class _Runner:
    """Runs server commands, as an unprivileged user when we are root."""

    def __init__(self, user: str | None) -> None:
        self.user = user

    def run(self, argv: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return subprocess.run(
            prefix + list(argv),
            capture_output=True,
            text=True,
            env=_client_env(),
            timeout=timeout,
            check=False,
        )

    def give(self, path: Path) -> None:
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(path, 0o700)


#: pg_hba.conf of a server that asks every role but the superuser for its password over TCP,
#: as a production server asks Mastodon's role: a test then proves a restored role's password.
PASSWORD_HBA = """\
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


#: pg_hba.conf of a bare-metal install: on the socket, the system user `x` is the role `x`.
PEER_HBA = """\
local all all peer
host all postgres 127.0.0.1/32 trust
"""


def _start(bindir: Path, root: Path, runner: _Runner, password_auth: bool = False,
           peer_auth: bool = False) -> PostgresServer:  # fmt: skip
    datadir = root / "data"
    initdb = runner.run(
        [
            str(bindir / "initdb"),
            "-D", str(datadir),
            "-A", "trust",
            "-U", SUPERUSER,
            "-E", "UTF8",
            "--locale=C",
            "--no-sync",
        ]
    )  # fmt: skip
    if initdb.returncode != 0:
        raise ServerUnavailable(f"initdb failed: {initdb.stderr.strip()}")
    if password_auth:
        (datadir / "pg_hba.conf").write_text(PASSWORD_HBA)
    if peer_auth:
        (datadir / "pg_hba.conf").write_text(PEER_HBA)
        root.chmod(0o755)  # the socket is here; the data dir itself stays 0700
    last_error = ""
    for _ in range(START_ATTEMPTS):
        port = free_port()
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        started = runner.run(
            [
                str(bindir / "pg_ctl"),
                "-D", str(datadir),
                "-l", str(root / "server.log"),
                "-o", options,
                "-w", "-t", "60",
                "start",
            ]
        )  # fmt: skip
        server = PostgresServer("127.0.0.1", port, SUPERUSER, bindir, root)
        if started.returncode == 0:
            server.psql("SELECT 1")
            return server
        log = server.logfile.read_text(errors="replace") if server.logfile.exists() else ""
        last_error = f"{started.stderr.strip()} {log[-2000:]}"
    raise ServerUnavailable(f"PostgreSQL would not start: {last_error}")


@contextlib.contextmanager
def running_postgres(
    base_dir: Path | None = None, *, password_auth: bool = False, peer_auth: bool = False
) -> Iterator[PostgresServer]:
    """Start a fresh cluster, yield it, then stop it hard and delete its files.

    With `password_auth`, roles other than the superuser must give their password over TCP
    (scram-sha-256); the superuser `postgres` is still trusted, as the admin is on a host.
    With `peer_auth`, the unix socket (in `root`, then world-searchable) lets a system user
    in only as the role of the same name, as a bare-metal Mastodon install does."""
    bindir = find_bindir()
    if shutil.which("runuser") is None and os.geteuid() == 0:
        raise ServerUnavailable("running as root and runuser is missing")
    runner = _Runner(_server_user())
    root = Path(tempfile.mkdtemp(prefix="snapstore-pg-", dir=base_dir))
    try:
        runner.give(root)
        server = _start(bindir, root, runner, password_auth, peer_auth)
        try:
            yield server
        finally:
            runner.run(
                [str(bindir / "pg_ctl"), "-D", str(server.datadir), "-m", "immediate", "-w", "stop"]
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
