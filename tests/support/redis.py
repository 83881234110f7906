"""A throwaway redis-server for tests, on a free port with its own data directory.

Never touches a system Redis: the server binds 127.0.0.1 on a random port, saves nothing
on its own (`save ""`) and keeps its files in a temp dir. Pass `rdb` to start from an
existing RDB file, which is how tests check that a backed-up dump loads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import ServerUnavailable
from tests.support.postgres import free_port

START_ATTEMPTS = 3
READY_SECONDS = 20.0


@dataclass
class RedisServer:
    """A running test server and a redis-cli helper."""

    host: str
    port: int
    root: Path
    password: str | None = None

    @property
    def rdb_path(self) -> Path:
        return self.root / "dump.rdb"

    def cli(self, *args: str) -> str:
        """Run redis-cli against this server and return its raw output."""
        env = {k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}
        if self.password is not None:
            env["REDISCLI_AUTH"] = self.password
        done = subprocess.run(
            ["redis-cli", "-h", self.host, "-p", str(self.port), *args],
            capture_output=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli failed ({done.returncode}): {done.stderr.decode()}")
        return done.stdout.decode().rstrip("\n")

    def ping(self) -> bool:
        """True when the server answers PING (or asks for a password, which is alive too)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH"))


def _wait_ready(server: RedisServer, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if server.ping():
            return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def running_redis(
    base_dir: Path | None = None, *, rdb: Path | None = None, password: str | None = None
) -> Iterator[RedisServer]:
    """Start redis-server, yield it once it answers PING, then shut it down and clean up."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailable("redis-server is not installed")
    root = Path(tempfile.mkdtemp(prefix="snapstore-redis-", dir=base_dir))
    try:
        if rdb is not None:
            shutil.copyfile(rdb, root / "dump.rdb")
        last_error = ""
        for _ in range(START_ATTEMPTS):
            port = free_port()
            argv = [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(root),
                "--dbfilename", "dump.rdb",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--protected-mode", "no",
                # Production keeps the 5 s default (it waits for more replicas before a
                # diskless transfer); tests should not wait.
                "--repl-diskless-sync-delay", "0",
                "--logfile", str(root / "server.log"),
            ]  # fmt: skip
            if password is not None:
                argv += ["--requirepass", password]
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            server = RedisServer("127.0.0.1", port, root, password)
            if _wait_ready(server, proc):
                try:
                    yield server
                finally:
                    proc.terminate()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                    if proc.stderr is not None:
                        proc.stderr.close()
                return
            proc.kill()
            proc.wait()
            log = root / "server.log"
            last_error = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            if proc.stderr is not None:
                last_error += proc.stderr.read().decode(errors="replace")
                proc.stderr.close()
        raise ServerUnavailable(f"redis-server would not start: {last_error}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
