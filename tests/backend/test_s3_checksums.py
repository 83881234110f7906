"""Range reads from S3 work-alikes that send the whole object's checksum with every GET.

botocore checks a GET's body against the x-amz-checksum-* header that comes back; a server
that sends the whole object's checksum with a ranged GET made every ranged read fail with
FlexibleChecksumError, so ls, restore, dump, check and prune failed while backups worked.
The server here is moto's on loopback behind a middleware that behaves that way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from snapstore.backend.base import Backend, FileType, Handle
from snapstore.errors import BackendError, RangeError
from tests.support import required_server
from tests.support.s3server import S3Endpoint, running_s3_server, s3_backend_on_fresh_bucket

PACK = Handle(FileType.PACK, "abcdef0123")


@pytest.fixture(scope="module")
def checksum_endpoint() -> Iterator[S3Endpoint]:
    server = running_s3_server(whole_object_checksums=True)
    with required_server(server, "S3 endpoint") as endpoint:
        yield endpoint


@pytest.fixture
def checksum_backend(checksum_endpoint: S3Endpoint) -> Iterator[Backend]:
    with s3_backend_on_fresh_bucket(checksum_endpoint) as made:
        yield made


@pytest.mark.parametrize(
    ("offset", "length"), [(0, 1), (1000, 5000), (0, 99_999), (99_990, None), (12_345, None)]
)
def test_ranged_reads_work(checksum_backend: Backend, offset: int, length: int | None) -> None:
    data = os.urandom(100_000)
    checksum_backend.save(PACK, data)
    end = None if length is None else offset + length
    assert checksum_backend.load(PACK, offset, length) == data[offset:end]
    assert checksum_backend.load(PACK) == data
    with pytest.raises(RangeError):
        checksum_backend.load(PACK, 99_999, 2)


def test_whole_reads_are_still_checked(
    checksum_backend: Backend, checksum_endpoint: S3Endpoint
) -> None:
    """A whole object's checksum can be checked, so it still is: a wrong one fails the read."""
    assert checksum_endpoint.checksums is not None
    backend = checksum_backend
    damaged = Handle(FileType.PACK, "dead0123")
    data = os.urandom(10_000)
    backend.save(damaged, data)
    checksum_endpoint.checksums.corrupt(damaged.name)
    with pytest.raises(BackendError, match="[Cc]hecksum"):
        backend.load(damaged)
    assert backend.load(damaged, 10, 100) == data[10:110]  # a range cannot be checked
