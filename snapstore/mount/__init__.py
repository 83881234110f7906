"""A repository's snapshots as a read-only filesystem (FUSE), for finding one file in a hurry.

Vocabulary:

- **Layout** (layout.py): the folders above the snapshots, `snapshots/<time>_<id>/`,
  `hosts/<host>/<time>_<id>/`, `tags/<tag>/<time>_<id>/`, and `latest` symlinks (the newest
  complete snapshot, as `latest` everywhere). Built from a listing of the snapshots, which is
  taken again when one of those folders is read, at most every few seconds, so snapshots taken
  while mounted appear.
- **Filesystem** (fs.py): paths to attributes, listings, link targets and bytes, with no FUSE
  in sight, so it is tested like any other module. Trees are decoded when a directory is
  looked up or listed and kept in a bounded LRU; nothing is kept per file visited.
- **Open file** (file_reader.py): a file's offsets mapped to its chunks through their lengths
  in the index, a big file's chunk lists read one at a time as reads reach them; reads go
  through the repository's one blob reader, with a bounded cache of plaintexts and read-ahead
  for sequential reads. A damaged blob fails that read (EIO), not the mount.
- **Adapter** (fuse_ops.py): the thin layer mfusepy calls; the only module that knows FUSE,
  and the only one that needs the optional `mfusepy` package and libfuse3.
"""
