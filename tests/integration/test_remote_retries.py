"""Retries and interrupts through the installed command, on S3 over loopback: every retry is
reported as it happens, --retry-for bounds how long a failing store is retried, and SIGTERM
ends a command within moments even while threads sit in a retry back-off.

The stores: a closed loopback port (a dead endpoint), and moto's server with failures
injected at the HTTP level (a store that keeps answering 503 to some requests).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import required_server
from tests.support.cli import Cli, snapstore_command
from tests.support.processes import wait_for
from tests.support.remote_cli import clean_env, s3_cli
from tests.support.s3server import S3Endpoint, running_s3_server
from tests.support.trees import make_tree

EXIT_TERMINATED = 143
INTERRUPT_BOUND = 10.0
"""Seconds a terminated command may take to exit (it should take well under two)."""


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[S3Endpoint]:
    with required_server(running_s3_server(), "S3 endpoint") as endpoint:
        yield endpoint


@pytest.fixture
def s3(s3_endpoint: S3Endpoint, tmp_path: Path) -> Iterator[Cli]:
    with s3_cli(s3_endpoint, tmp_path) as cli:
        yield cli
    s3_endpoint.requests.clear_failures()


@pytest.fixture
def dead(tmp_path: Path) -> Cli:
    """A Cli whose S3 endpoint is a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends
    env = clean_env(tmp_path)
    env.update(
        SNAPSTORE_REPOSITORY="s3://bucket/repo",
        SNAPSTORE_S3_ENDPOINT=f"http://127.0.0.1:{port}",
        SNAPSTORE_S3_REGION="us-east-1",
        SNAPSTORE_S3_ADDRESSING_STYLE="path",
        AWS_ACCESS_KEY_ID="key",
        AWS_SECRET_ACCESS_KEY="secret",
    )
    return Cli(tmp_path / "no-local-repository", env)


class Running:
    """A command in the background whose error output is collected line by line."""

    def __init__(self, cli: Cli, *args: str) -> None:
        self.proc = subprocess.Popen(
            snapstore_command() + list(args), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli.env,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    def warnings(self) -> list[str]:
        return [line for line in self.lines if line.startswith("snapstore: warning: ")]

    def terminate_and_time(self) -> tuple[int, float]:
        """SIGTERM; the exit code and how long the exit took (the process is killed if it
        takes longer than INTERRUPT_BOUND, which fails the test)."""
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=INTERRUPT_BOUND)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"still running {INTERRUPT_BOUND} s after SIGTERM:\n" + self.err())
        took = time.monotonic() - sent
        self._reader.join(timeout=5)
        return code, took

    def finish(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def err(self) -> str:
        return "\n".join(self.lines)


def test_retries_against_a_dead_endpoint_are_reported_and_bounded(dead: Cli) -> None:
    started = time.monotonic()
    running = Running(dead, "snapshots", "--retry-for", "3s")
    code = running.finish()
    took = time.monotonic() - started
    assert code == 1, running.err()
    warnings = running.warnings()
    assert len(warnings) >= 2, running.err()
    assert all("s3://bucket/repo: load config failed" in w for w in warnings), warnings
    assert "retrying in" in warnings[0] and "(try 2), giving up in" in warnings[0]
    errors = [line for line in running.lines if line.startswith("snapstore: error: ")]
    assert len(errors) == 1 and "giving up" in errors[0], running.err()
    assert "Traceback" not in running.err()
    assert took >= 3  # retried until --retry-for ran out, then stopped


def test_retry_for_from_the_environment(dead: Cli) -> None:
    running = Running(Cli(dead.repo, dict(dead.env, SNAPSTORE_RETRY_FOR="0")), "snapshots")
    assert running.finish() == 1
    assert running.warnings() == []  # no time to retry: the first failure is final
    assert "failed 1 times, giving up" in running.err()


def test_sigterm_while_retrying_a_dead_endpoint(dead: Cli) -> None:
    running = Running(dead, "snapshots")
    wait_for(lambda: running.warnings() or running.proc.poll() is not None, what="a retry")
    assert running.proc.poll() is None, running.err()
    code, took = running.terminate_and_time()
    print(f"exited {took:.2f} s after SIGTERM")
    assert code == EXIT_TERMINATED, running.err()
    assert running.lines[-1] == "snapstore: terminated", running.err()


def test_sigterm_while_an_upload_is_in_backoff(
    s3: Cli, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    """The main thread waits for the upload thread, which sleeps in its back-off: SIGTERM must
    still end the command at once, release the lock and leave a repository that works."""
    assert s3("init").code == 0
    source = tmp_path / "src"
    make_tree(source)
    s3_endpoint.requests.fail_next("PUT", times=1000, status=503, path_part="/data/")
    running = Running(s3, "snapshot", "files", str(source))
    wait_for(lambda: running.warnings() or running.proc.poll() is not None, what="a retry")
    assert running.proc.poll() is None, running.err()
    assert "save data/" in running.warnings()[0]
    code, took = running.terminate_and_time()
    print(f"exited {took:.2f} s after SIGTERM")
    assert code == EXIT_TERMINATED, running.err()
    s3_endpoint.requests.clear_failures()
    client = s3_endpoint.boto3_client()
    bucket, prefix = s3.env["SNAPSTORE_REPOSITORY"].removeprefix("s3://").split("/", 1)
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/locks/")
    assert listed.get("KeyCount", 0) == 0  # the lock was released on the way out
    done = s3("snapshot", "files", str(source))
    assert done.code == 0, done.err
    assert "no errors were found" in s3("check", "--read-data").text


def test_sigterm_while_restore_reads_are_in_backoff(
    s3: Cli, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    assert s3("init").code == 0
    source = tmp_path / "src"
    make_tree(source)
    assert s3("snapshot", "files", str(source)).code == 0
    s3_endpoint.requests.fail_next("GET", times=1000, status=503, path_part="/data/")
    running = Running(s3, "restore", "latest", "--target", str(tmp_path / "out"))
    wait_for(lambda: running.warnings() or running.proc.poll() is not None, what="a retry")
    assert running.proc.poll() is None, running.err()
    code, took = running.terminate_and_time()
    print(f"exited {took:.2f} s after SIGTERM")
    assert code == EXIT_TERMINATED, running.err()
