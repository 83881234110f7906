"""Which PostgreSQL server a snapshot's database came from, and how to reach it again.

A restore drill must run where the backup was taken, reached the way the backup reached it:
falling back to libpq's defaults once restored into another cluster on the same machine
(issue 12). So the connection comes from the snapshot itself, each field of `ServerOverrides`
(--pg-host, --pg-port, --pg-user, --pg-command-prefix, --pg-run-as) winning over it:

- a `mastodon` snapshot: the instance's env file, as `snapshot mastodon` reads it
  (mastodon_settings.py: DB_HOST, DB_PORT, DB_USER, DB_PASS or DATABASE_URL). The file is
  `ServerOverrides.env_file` when given, else the path the snapshot recorded when that file
  exists on this host, else the snapshot's own copy (`config/.env.production`). DB_PASS goes
  along only for the instance's own role (`DatabaseSettings.connection`);
- a `postgres` snapshot (or a `mastodon` one holding no env file): the host, port and user
  recorded in metadata["postgres"] (since 51677d5; an older snapshot has none, and libpq's
  defaults apply). The password comes from libpq (PGPASSWORD, ~/.pgpass).

`SnapshotServer.origin` says which, for the report: a drill that names where it restored
cannot quietly go to the wrong cluster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from snapstore.errors import PathNotFound, SourceError
from snapstore.repository.repository import Repository
from snapstore.restorer.stream import stream_file
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.store import find_node, load_tree
from snapstore.snapshot.tree import NodeType
from snapstore.sources.env_file import parse_env
from snapstore.sources.mastodon_settings import (
    MastodonSettings,
    load_settings,
    settings_from_values,
)
from snapstore.sources.pg_client import PgConnection

CONFIG_DIR = "config"
ENV_FILE_NAME = ".env.production"
# An env file is a few kilobytes; anything far larger in config/ is not one.
MAX_ENV_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class ServerOverrides:
    """What the caller says about the server; a field that is set wins over the snapshot."""

    host: str | None = None
    port: int | None = None
    user: str | None = None
    command_prefix: Sequence[str] = ()
    run_as: str | None = None
    # A `mastodon` snapshot's env file on this host (`drill --env-file`).
    env_file: Path | None = None
    # The clients' base environment; None means they inherit this process's.
    env: Mapping[str, str] | None = None


@dataclass(frozen=True)
class SnapshotServer:
    connection: PgConnection
    # Where the settings came from: "env file /home/mastodon/live/.env.production", ...
    origin: str


def snapshot_server(
    repo: Repository, snapshot: Snapshot, overrides: ServerOverrides | None = None
) -> SnapshotServer:
    """The server `snapshot`'s database came from, reached as its backup reached it."""
    o = overrides or ServerOverrides()
    if snapshot.source == "mastodon":
        found = _mastodon_settings(repo, snapshot, o.env_file)
        if found is not None:
            settings, origin = found
            connection = settings.database.connection(
                host=o.host, port=o.port, user=o.user, command_prefix=o.command_prefix,
                run_as=o.run_as, env=o.env,
            )  # fmt: skip
            return SnapshotServer(connection, origin)
    facts = snapshot.metadata.get("postgres")
    facts = facts if isinstance(facts, Mapping) else {}
    host = _text(facts.get("host"))
    port = facts.get("port") if isinstance(facts.get("port"), int) else None
    user = _text(facts.get("username"))
    if any(key in facts for key in ("host", "port", "username")):
        origin = f"the server recorded in snapshot {snapshot.short_id}"
    else:
        origin = f"libpq defaults (snapshot {snapshot.short_id} records no server)"
    connection = PgConnection(
        o.host if o.host is not None else host,
        o.port if o.port is not None else port,
        o.user if o.user is not None else user,
        command_prefix=list(o.command_prefix), run_as=o.run_as, env=o.env,
    )  # fmt: skip
    return SnapshotServer(connection, origin)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _mastodon_settings(
    repo: Repository, snapshot: Snapshot, env_file: Path | None
) -> tuple[MastodonSettings, str] | None:
    """The instance's settings and where they came from; None when the snapshot has none."""
    if env_file is not None:
        settings = load_settings(env_file)
        return settings, f"env file {settings.env_file}"
    facts = snapshot.metadata.get("mastodon")
    recorded = _text(facts.get("env_file")) if isinstance(facts, Mapping) else None
    if recorded and os.path.isabs(recorded) and os.path.isfile(recorded):
        return load_settings(recorded), f"env file {recorded} (recorded in the snapshot)"
    name = PurePosixPath(recorded).name if recorded else ENV_FILE_NAME
    copy = env_file_copy(repo, snapshot, name)
    if copy is None:
        return None
    path, text = copy
    where = f"snapshot {snapshot.short_id}:{path}"
    values = parse_env(text, where)
    # The path only places the live directory, which the database settings never use.
    settings = settings_from_values(values, Path(recorded or "/" + path))
    return settings, f"the copy of the env file in snapshot {snapshot.short_id} ({path})"


def env_file_copy(repo: Repository, snapshot: Snapshot, name: str) -> tuple[str, str] | None:
    """(path, text) of the env file `snapshot mastodon` stored under config/, if any."""
    try:
        folder = find_node(repo, snapshot.tree, CONFIG_DIR)
    except PathNotFound:
        return None
    if folder is None or folder.subtree is None:
        return None
    files = [n for n in load_tree(repo, folder.subtree) if n.type is NodeType.FILE]
    chosen = next((n for n in files if n.name == name.encode()), None)
    if chosen is None and len(files) == 1:
        chosen = files[0]
    if chosen is None:
        return None
    path = f"{CONFIG_DIR}/{chosen.name.decode('utf-8', 'replace')}"
    if chosen.size > MAX_ENV_FILE_BYTES:
        raise SourceError(f"snapshot {snapshot.short_id}:{path} is too large for an env file")
    data = b"".join(stream_file(repo, chosen))
    try:
        return path, data.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceError(f"snapshot {snapshot.short_id}:{path} is not UTF-8 text") from None
