"""How the library reports progress: a callback protocol. The library itself never prints."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def item(self, path: str) -> None:
        """Started on a file or directory (a display path)."""

    def advance(self, bytes_read: int, bytes_added: int) -> None:
        """More content was read, of which `bytes_added` was new to the repository."""

    def warning(self, path: str, message: str) -> None:
        """A non-fatal problem, such as an unreadable file."""


class NoProgress:
    """Reports nothing."""

    def item(self, path: str) -> None:
        pass

    def advance(self, bytes_read: int, bytes_added: int) -> None:
        pass

    def warning(self, path: str, message: str) -> None:
        pass
