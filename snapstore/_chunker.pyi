"""Type stub for the native chunker core (snapstore/_chunker.c)."""

from typing import final

from typing_extensions import Buffer

@final
class GearChunker:
    """Finds the cut points of one stream; state carries across scan() calls."""

    def __new__(
        cls,
        gear: Buffer,
        min_size: int,
        avg_size: int,
        max_size: int,
        normalization: int,
    ) -> GearChunker: ...
    @property
    def min_size(self) -> int: ...
    @property
    def avg_size(self) -> int: ...
    @property
    def max_size(self) -> int: ...
    @property
    def normalization(self) -> int: ...
    def scan(self, buffer: Buffer, start: int = 0) -> int:
        """Continue the chunk over buffer[start:]; index after its last byte, or -1."""
    def reset(self) -> None:
        """Forget the open chunk."""
