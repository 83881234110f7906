"""Tree nodes as raw msgpack maps, for hostile trees the encoder's own checks would refuse."""

from __future__ import annotations

from typing import Any


def raw_node(name: Any, node_type: str = "file", **fields: Any) -> dict[str, Any]:
    """A node map with every common field at a neutral value; `fields` add or override."""
    node: dict[str, Any] = {
        "name": name,
        "type": node_type,
        "mode": 0o644,
        "uid": 0,
        "gid": 0,
        "user": "",
        "group": "",
        "mtime_ns": 0,
        "size": 0,
    }
    node.update(fields)
    return node
