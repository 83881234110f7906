"""Getting data back: restore trees into a directory, or stream one file's content.

Restores never write outside the target: every file is created relative to an open
directory descriptor with O_NOFOLLOW, names are validated when trees are decoded, and an
existing symlink in the target is replaced, never followed.
"""
