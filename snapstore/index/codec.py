"""Index file plaintext (SPEC.md section 8): a msgpack map.

    {"v": 1 or 2,
     "supersedes": [bin(32), ...],          # index files this one replaces (prune)
     "packs": [[bin(32) pack id, bin entries], ...]}        # v1
     "packs": [[bin(32) pack id, bin entries, bin bases], ...]}  # v2

`entries` is a byte string of 46-byte records, one per blob, in pack order:

    type u8 | flags u8 | offset u32 LE | stored length u32 LE | plain length u32 LE | id (32)

`bases` (version 2 only) holds the 32-byte base ids of the delta entries (flags has
FLAG_DELTA), in entry order, so prune knows which blobs deltas need without reading packs.
Writers use version 1 when no pack in the file holds a delta.

Decoding checks every record but keeps each pack's records as they are stored: opening a
repository hands them to the in-memory index whole (`BlobIndex.add_records`), with no Python
object per blob; `IndexFile.packs` turns them into `PackEntry` lists when first asked.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import msgpack

from snapstore.errors import IntegrityError, UnsupportedVersion
from snapstore.ids import ID_SIZE, Id
from snapstore.pack import FLAG_DELTA, BlobType, PackEntry, check_delta_fields

INDEX_VERSION = 1
INDEX_VERSION_DELTAS = 2
RECORD_SIZE = 46
_RECORD = struct.Struct("<BBIII32s")
#: Byte values that are not a known blob type, and flags bytes without FLAG_DELTA: deleting
#: them from a pack's column of types (or flags) leaves the unknown types (or the deltas).
_KNOWN_TYPES = bytes(int(t) for t in BlobType)
_NOT_DELTA = bytes(b for b in range(256) if not b & FLAG_DELTA)

#: A pack as an index file stores it: its 46-byte records and the base ids of its deltas.
PackRecords = tuple[bytes, bytes]


class IndexFile:
    """The packs one index file names, and the index files it replaces.

    Built from `PackEntry` lists (`IndexFile(packs=...)`), or by `decode_index` from the
    stored records, which stay as they are until `packs` is first read."""

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __init__(
        self, packs: dict[Id, list[PackEntry]] | None = None, supersedes: list[Id] | None = None
    ) -> None:
        self._packs: dict[Id, list[PackEntry]] | None = {} if packs is None else packs
        self._records: dict[Id, PackRecords] = {}
        self.supersedes: list[Id] = [] if supersedes is None else supersedes

    @classmethod
    def _from_records(cls, records: dict[Id, PackRecords], supersedes: list[Id]) -> IndexFile:
        index_file = cls(supersedes=supersedes)
        index_file._packs, index_file._records = None, records
        return index_file

    @property
    def packs(self) -> dict[Id, list[PackEntry]]:
        if self._packs is None:
            self._packs = {
                p: decode_entries(raw, bases) for p, (raw, bases) in self._records.items()
            }
            self._records = {}
        return self._packs

    @packs.setter
    def packs(self, packs: dict[Id, list[PackEntry]]) -> None:
        self._packs, self._records = packs, {}

    def pack_records(self) -> dict[Id, PackRecords]:
        """Each pack's records and base ids as the file stores them (encoded from `packs`
        when the file was built from entries, or they were read)."""
        if self._packs is None:
            return self._records
        return {p: (encode_entries(e), encode_bases(e)) for p, e in self._packs.items()}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IndexFile):
            return NotImplemented
        return self.supersedes == other.supersedes and self.packs == other.packs

    def __repr__(self) -> str:
        count = len(self._records) if self._packs is None else len(self._packs)
        return f"IndexFile({count} packs, supersedes {len(self.supersedes)})"


def encode_entries(entries: Sequence[PackEntry]) -> bytes:
    return b"".join(
        _RECORD.pack(e.type, e.flags, e.offset, e.length, e.plain_length, e.id) for e in entries
    )


def encode_bases(entries: Sequence[PackEntry]) -> bytes:
    return b"".join(bytes(e.base) for e in entries if e.base is not None)


def decode_entries(raw: bytes, bases: bytes = b"") -> list[PackEntry]:
    if len(raw) % RECORD_SIZE:
        raise IntegrityError("index entry list has a partial record")
    if len(bases) % ID_SIZE:
        raise IntegrityError("index base list has a partial id")
    out = []
    next_base = 0
    for type_, flags, offset, length, plain, blob_id in _RECORD.iter_unpack(raw):
        base = None
        if flags & FLAG_DELTA:
            if next_base + ID_SIZE > len(bases):
                raise IntegrityError("index names more delta blobs than base ids")
            base = Id(bases[next_base : next_base + ID_SIZE])
            next_base += ID_SIZE
        check_delta_fields(flags, base)
        out.append(PackEntry(BlobType(type_), Id(blob_id), offset, length, plain, flags, base))
    if next_base != len(bases):
        raise IntegrityError("index has more base ids than delta blobs")
    return out


def encode_index(index: IndexFile) -> bytes:
    records = index.pack_records()
    deltas = any(bases for _, bases in records.values())
    packs: list[list[bytes]] = []
    for pack_id, (raw, bases) in records.items():
        row = [bytes(pack_id), raw]
        if deltas:
            row.append(bases)
        packs.append(row)
    return msgpack.packb(
        {
            "v": INDEX_VERSION_DELTAS if deltas else INDEX_VERSION,
            "supersedes": [bytes(i) for i in index.supersedes],
            "packs": packs,
        },
        use_bin_type=True,
    )


def check_records(raw: bytes, bases: bytes) -> None:
    """What `decode_entries` checks, on the byte strings as stored: whole records of known
    blob types, and one base id per delta entry (C-speed byte operations, no object per
    record)."""
    if type(raw) is not bytes or type(bases) is not bytes:
        raise IntegrityError("index entries and base ids are byte strings")
    if len(raw) % RECORD_SIZE:
        raise IntegrityError("index entry list has a partial record")
    if len(bases) % ID_SIZE:
        raise IntegrityError("index base list has a partial id")
    if raw[0::RECORD_SIZE].translate(None, _KNOWN_TYPES):
        raise IntegrityError("index entry has an unknown blob type")
    deltas = len(raw[1::RECORD_SIZE].translate(None, _NOT_DELTA))
    if deltas != len(bases) // ID_SIZE:
        raise IntegrityError(
            f"index names {deltas} delta blobs in a pack and {len(bases) // ID_SIZE} base ids"
        )


def decode_index(plaintext: bytes) -> IndexFile:
    try:
        doc = msgpack.unpackb(plaintext, raw=False)
        if not isinstance(doc, dict):
            raise ValueError("not a map")
        version = doc.get("v")
        if type(version) is not int or version not in (INDEX_VERSION, INDEX_VERSION_DELTAS):
            raise UnsupportedVersion(f"index version {version!r} is not supported")
        supersedes = [Id(x) for x in doc["supersedes"]]
        records: dict[Id, PackRecords] = {}
        for row in doc["packs"]:
            if version == INDEX_VERSION:
                pack_id, raw = row
                bases = b""
            else:
                pack_id, raw, bases = row
            check_records(raw, bases)
            records[Id(pack_id)] = (raw, bases)
    except UnsupportedVersion:
        raise
    except (ValueError, KeyError, TypeError, msgpack.UnpackException) as exc:
        raise IntegrityError(f"index file is malformed: {exc}") from None
    return IndexFile._from_records(records, supersedes)
