"""The index: which pack holds each blob, where, and how long it is.

Index files on the backend (`codec.py`) list packs and their blobs; the in-memory
`BlobIndex` (`index.py`) merges all of them into compact sorted arrays so that tens of millions
of blobs fit a small server (about 50 bytes per blob instead of ~270 for a dict).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from snapstore.index.codec import IndexFile, decode_index, encode_index
    from snapstore.index.index import BlobIndex, BlobLocation

__all__ = ["BlobIndex", "BlobLocation", "IndexFile", "decode_index", "encode_index"]

#: Where each name lives: imported on first use, so `snapstore.index.deltas` (which the
#: repository needs) does not pull in numpy through the package.
_HOMES = {
    "BlobIndex": "index", "BlobLocation": "index",
    "IndexFile": "codec", "decode_index": "codec", "encode_index": "codec",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
