"""The 32-byte identifiers of blobs and stored objects, and their hex spelling."""

from __future__ import annotations

ID_SIZE = 32


class Id(bytes):
    """A 32-byte identifier; prints as lowercase hex."""

    def __new__(cls, value: bytes) -> Id:
        if len(value) != ID_SIZE:
            raise ValueError(f"an id is {ID_SIZE} bytes, got {len(value)}")
        return super().__new__(cls, value)

    @classmethod
    def from_hex(cls, text: str) -> Id:
        return cls(bytes.fromhex(text))

    def short(self) -> str:
        return self.hex()[:8]

    def __str__(self) -> str:
        return self.hex()

    def __repr__(self) -> str:
        return f"Id({self.hex()[:16]}…)"
