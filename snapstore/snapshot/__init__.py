"""Trees and snapshots.

A tree is one directory listing, stored as a TREE blob so identical directories deduplicate.
A snapshot is a small object under `snapshots/` that names its root tree and records when,
where and what was taken. Codecs here are pure; `store.py` reads and writes them through the
repository.
"""
