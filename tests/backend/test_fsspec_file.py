"""The fsspec adapter over fsspec's own `file://` filesystem.

Runs the conformance suite twice: with temp-file-and-rename writes (how file:// and sftp are
written) and with in-place writes (how object stores are written), so both code paths are
covered even where no S3 endpoint can be started.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from snapstore.backend import layout
from snapstore.backend.base import Backend, FileType, Handle
from snapstore.backend.fsspec import FsspecBackend
from snapstore.errors import BackendError, ObjectNotFound
from tests.backend.conformance import BackendConformance


def file_backend(root: Path, *, atomic_put: bool | None = None) -> FsspecBackend:
    fs = fsspec.filesystem("file", skip_instance_cache=True)
    return FsspecBackend(fs, str(root), atomic_put=atomic_put)


class TestFsspecFileBackend(BackendConformance):
    @pytest.fixture(params=["rename", "put"])
    def backend(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
        backend = file_backend(tmp_path / "repo", atomic_put=request.param == "put")
        backend.create()
        yield backend
        backend.close()

    def plant_stray(self, backend: Backend, relative_path: str, data: bytes) -> None:
        path = Path(backend.location.removeprefix("file://"), *relative_path.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_file_protocol_writes_through_a_temporary_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = file_backend(tmp_path)
    backend.create()
    moves: list[tuple[str, str]] = []
    real_mv = backend._fs.mv

    def recording_mv(source: str, target: str) -> None:
        moves.append((source, target))
        real_mv(source, target)

    monkeypatch.setattr(backend._fs, "mv", recording_mv)
    backend.save(Handle(FileType.PACK, "abcd"), b"pack")
    [(source, target)] = moves
    assert Path(source).name.startswith(layout.TEMP_PREFIX)
    assert Path(source).parent == Path(target).parent == tmp_path / "data" / "ab"
    assert sorted(p.name for p in (tmp_path / "data" / "ab").iterdir()) == ["abcd"]


def test_location_defaults_to_the_root_url(tmp_path: Path) -> None:
    assert file_backend(tmp_path).location == f"file://{tmp_path}"


def test_save_before_create_names_the_problem(tmp_path: Path) -> None:
    backend = file_backend(tmp_path / "not-created")
    with pytest.raises(BackendError, match="was the repository created") as caught:
        backend.save(Handle(FileType.PACK, "abcd"), b"pack")
    assert not isinstance(caught.value, ObjectNotFound)
    assert not (tmp_path / "not-created").exists()


def test_list_before_create_is_empty(tmp_path: Path) -> None:
    backend = file_backend(tmp_path / "not-created")
    for file_type in FileType:
        assert list(backend.list(file_type)) == []


def test_empty_root_is_refused() -> None:
    with pytest.raises(ValueError):
        FsspecBackend(fsspec.filesystem("s3", skip_instance_cache=True, anon=True), "")
