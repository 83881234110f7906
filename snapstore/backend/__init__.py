"""Storage backends: where repository objects live.

A backend stores opaque objects named by a `Handle` (a file type and a name). It knows nothing
of encryption, packs or snapshots. Every backend implements the one `Backend` protocol from
`base.py`; wrappers (retry, cache, pool, read-only, faulty) implement it too and add exactly
one concern. `location.py` stacks them for a URL; the repository facade puts the cache on top
once it knows the repository id.
Only this package sees paths, fsspec or storage SDK exceptions.
"""

from snapstore.backend.base import Backend, FileInfo, FileType, Handle
from snapstore.backend.location import open_backend

__all__ = ["Backend", "FileInfo", "FileType", "Handle", "open_backend"]
