"""The index: which pack holds each blob, where, and how long it is.

Index files on the backend (`codec.py`) list packs and their blobs; the in-memory
`BlobIndex` (`index.py`) merges all of them into compact sorted arrays so that tens of millions
of blobs fit a small server (about 50 bytes per blob instead of ~270 for a dict).
"""

from snapstore.index.codec import IndexFile, decode_index, encode_index
from snapstore.index.index import BlobIndex, BlobLocation

__all__ = ["BlobIndex", "BlobLocation", "IndexFile", "decode_index", "encode_index"]
