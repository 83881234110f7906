"""`restore mastodon`: the night the server is gone, a whole instance back from one snapshot.

Mastodon's own guide to moving a server (docs.joinmastodon.org, "Migrating to a new
machine") is the order followed here, each part only where the snapshot has it:

1. database: the roles (postgres/globals.sql), the instance's role with its password, the
   database created from template0 and owned by that role, pg_restore (parallel when the
   dump fits the spool folder), then a login as the instance's role with DB_PASS and the
   row counts recorded at backup time compared;
2. config: .env.production (and a Docker install's compose file and .env) back in the live
   directory, with their owners and modes, atomically;
3. media: the snapshot's media/ into the media folder .env.production names;
4. redis: the RDB written where a stopped Redis loads it (refused while Redis answers);
5. letsencrypt, nginx, systemd: back into the folders they were taken from.

Where things go is where they were when the snapshot was taken (its metadata), except that
`--env-file`/`--live-dir` move the live directory and the media folder with it, and each
folder can be named. The database settings are read from the snapshot's own .env.production
(the secrets restored are the ones the database must match). A part that fails is reported
and the others still run: the report says what stands, and `checklist()` what the admin does
next (start Redis and the services, precompile assets, rebuild feeds).

The database work runs as an administrator (default: the `postgres` superuser; when root on
a host whose server is reached through its socket, as the `postgres` system user), since
only a superuser can create the instance's role.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from snapstore.errors import (
    CommandFailed,
    PathNotFound,
    SnapstoreError,
    UsageError,
)
from snapstore.progress import NoProgress, Progress
from snapstore.repository.repository import Repository
from snapstore.restorer.restorer import RestoreOptions, Restorer
from snapstore.restorer.single_file import write_file_atomically
from snapstore.restorer.stream import stream_file
from snapstore.snapshot.manifest import Snapshot
from snapstore.snapshot.selection import SnapshotFilter
from snapstore.snapshot.store import find_node, list_snapshots, load_tree, newest_complete
from snapstore.snapshot.tree import Node, NodeType
from snapstore.sources.env_file import is_true, parse_env
from snapstore.sources.mastodon_settings import MastodonSettings, settings_from_values
from snapstore.sources.pg_client import PgConnection, quote_ident
from snapstore.sources.pg_restore import (
    DatabaseRestoreOptions,
    apply_globals_script,
    find_dump,
    read_globals,
    restore_database,
)
from snapstore.sources.postgres import ROW_COUNTS_SQL
from snapstore.sources.redis_restore import restore_redis_rdb
from snapstore.sources.snapshot_server import env_file_copy

PARTS = ("database", "config", "media", "redis", "letsencrypt", "nginx", "systemd")
DEFAULT_REDIS_RDB = Path("/var/lib/redis/dump.rdb")
ADMIN_USER = "postgres"
MAX_PARALLEL_JOBS = 4
#: Folders of the snapshot restored as they are into a folder of the host.
_FOLDER_PARTS = {"letsencrypt": "letsencrypt_dir", "nginx": "nginx_dir", "systemd": "systemd_dir"}


@dataclass(frozen=True)
class InstanceRestoreOptions:
    """Where the parts go and how the database is reached; None: as when backed up."""

    env_file: Path | None = None
    live_dir: Path | None = None
    only: frozenset[str] = frozenset(PARTS)
    dry_run: bool = False
    clean: bool = False  # replace a database that already holds tables
    jobs: int | None = None  # pg_restore jobs; None: parallel when the dump fits the spool
    spool_dir: Path | None = None
    redis_rdb: Path = DEFAULT_REDIS_RDB
    redis_running_ok: bool = False
    letsencrypt_dir: Path | None = None
    nginx_dir: Path | None = None
    systemd_dir: Path | None = None
    # The administrator's connection; host and port default to the env file's.
    pg_host: str | None = None
    pg_port: int | None = None
    pg_user: str = ADMIN_USER
    pg_command_prefix: Sequence[str] = ()
    pg_run_as: str | None = None
    redis_command_prefix: Sequence[str] = ()
    env: Mapping[str, str] | None = None


@dataclass
class Step:
    part: str
    action: str  # what is, or in a dry run would be, done
    status: str = "planned"  # planned, ok, failed, skipped
    detail: str = ""


@dataclass
class InstanceRestoreReport:
    snapshot_id: str
    live_dir: Path
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checklist: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Step]:
        return [step for step in self.steps if step.status == "failed"]


def latest_instance_snapshot(repo: Repository, selection: SnapshotFilter | None = None) -> Snapshot:
    """The newest complete `mastodon` snapshot that `selection` matches (default: any): an
    incomplete one lacks a part to restore."""
    chosen = (selection or SnapshotFilter()).select(list_snapshots(repo))
    instances = [s for s in chosen if s.source == "mastodon"]
    what = " ".join(["mastodon snapshot", selection.describe() if selection else ""])
    return newest_complete(instances, what.strip())


def restore_instance(
    repo: Repository,
    snapshot: Snapshot,
    options: InstanceRestoreOptions,
    progress: Progress | None = None,
) -> InstanceRestoreReport:
    """Plan and (unless a dry run) carry out the restore of every part asked for."""
    if snapshot.source != "mastodon":
        raise UsageError(
            f"snapshot {snapshot.short_id} is a {snapshot.source!r} snapshot, not a Mastodon "
            "instance: use `snapstore restore` for it"
        )
    unknown = set(options.only) - set(PARTS)
    if unknown:
        raise UsageError(f"no part named {', '.join(sorted(unknown))} (parts: {', '.join(PARTS)})")
    plan = _Plan(repo, snapshot, options, progress or NoProgress())
    plan.make()
    if not options.dry_run:
        plan.run()
    plan.report.checklist = plan.checklist()
    return plan.report


class _Plan:
    def __init__(
        self,
        repo: Repository,
        snapshot: Snapshot,
        options: InstanceRestoreOptions,
        progress: Progress,
    ) -> None:
        self.repo, self.snapshot, self.options, self.progress = repo, snapshot, options, progress
        facts = snapshot.metadata.get("mastodon")
        self.facts: Mapping[str, object] = facts if isinstance(facts, Mapping) else {}
        recorded_env = Path(
            str(self.facts.get("env_file") or "/home/mastodon/live/.env.production")
        )
        if options.env_file is not None:
            self.env_target = Path(os.path.abspath(options.env_file))
        elif options.live_dir is not None:
            self.env_target = Path(os.path.abspath(options.live_dir)) / recorded_env.name
        else:
            self.env_target = recorded_env
        copy = env_file_copy(repo, snapshot, recorded_env.name)
        if copy is None:
            raise PathNotFound(f"snapshot {snapshot.short_id} holds no config/{recorded_env.name}")
        env_path, text = copy
        self.env_node = self._node(env_path)
        self.values = parse_env(text, f"{env_path} in snapshot {snapshot.short_id}")
        self.settings: MastodonSettings = settings_from_values(self.values, self.env_target)
        self.report = InstanceRestoreReport(
            snapshot.id.hex() if snapshot.id else "", self.settings.live_dir
        )
        self._actions: list[tuple[Step, Callable[[Step], None]]] = []

    # -- planning -------------------------------------------------------------------------
    def make(self) -> None:
        for part in PARTS:
            if part in self.options.only:
                getattr(self, f"_plan_{part}")()

    def _add(self, part: str, action: str, run: Callable[[Step], None]) -> None:
        step = Step(part, action)
        self.report.steps.append(step)
        self._actions.append((step, run))

    def _skip(self, part: str, why: str) -> None:
        self.report.steps.append(Step(part, f"{part}: nothing to restore", "skipped", why))

    def _absent(self, part: str) -> str:
        parts = self.facts.get("parts")
        status = parts.get(part) if isinstance(parts, Mapping) else None
        return f"not in this snapshot ({status})" if status else "not in this snapshot"

    def _plan_database(self) -> None:
        try:
            dump_path, _ = find_dump(self.repo, self.snapshot)
        except PathNotFound:
            self._skip("database", self._absent("postgres"))
            return
        db = self.settings.database
        admin = self.admin()
        self._add(
            "database",
            f"database {db.name} on {admin.describe()}: roles from postgres/globals.sql, role "
            f"{db.user} with DB_PASS, the database owned by {db.user}, pg_restore of {dump_path}",
            self._restore_database,
        )

    def _plan_config(self) -> None:
        target = self.env_target
        names = [self.env_node.name] if self.env_node else []
        config = self._node("config")
        if config is not None and config.subtree is not None:
            names = [
                n.name for n in load_tree(self.repo, config.subtree) if n.type is NodeType.FILE
            ]
        shown = ", ".join(os.fsdecode(name) for name in names)
        self._add("config", f"{shown} into {target.parent}", self._restore_config)

    def _plan_media(self) -> None:
        if self._node("media") is None:
            why = (
                "S3_ENABLED=true: media live in object storage" if self.settings.s3_enabled else ""
            )
            self._skip("media", why or self._absent("media"))
            return
        self._add("media", f"media/ into {self.settings.media_root}", self._restore_media)

    def _plan_redis(self) -> None:
        if self._node("redis/dump.rdb") is None:
            self._skip("redis", self._absent("redis"))
            return
        self._add("redis", f"redis/dump.rdb to {self.options.redis_rdb} (Redis stopped)",
                  self._restore_redis)  # fmt: skip

    def _plan_letsencrypt(self) -> None:
        self._plan_folder("letsencrypt")

    def _plan_nginx(self) -> None:
        self._plan_folder("nginx")

    def _plan_systemd(self) -> None:
        self._plan_folder("systemd")

    def _plan_folder(self, part: str) -> None:
        target = self._folder_target(part)
        if self._node(part) is None or target is None:
            self._skip(part, self._absent(part))
            return
        self._add(part, f"{part}/ into {target}", lambda step: self._restore_folder(step, target))

    def _folder_target(self, part: str) -> Path | None:
        chosen = getattr(self.options, _FOLDER_PARTS[part])
        recorded = self.facts.get(_FOLDER_PARTS[part])
        if chosen is not None:
            return Path(chosen)
        return Path(str(recorded)) if recorded else None

    def _node(self, path: str) -> Node | None:
        try:
            return find_node(self.repo, self.snapshot.tree, path)
        except PathNotFound:
            return None

    # -- running --------------------------------------------------------------------------
    def run(self) -> None:
        for step, action in self._actions:
            self.progress.item(step.part)
            try:
                action(step)
            except (SnapstoreError, OSError) as exc:
                step.status = "failed"
                step.detail = _one_line(exc)
            else:
                if step.status == "planned":
                    step.status = "ok"

    def admin(self) -> PgConnection:
        """The superuser's connection, for roles and CREATE DATABASE."""
        options = self.options
        run_as = options.pg_run_as
        host = options.pg_host if options.pg_host is not None else self.settings.database.host
        local_socket = host is None or host.startswith("/")
        if run_as is None and os.geteuid() == 0 and local_socket and not options.pg_command_prefix:
            run_as = _system_user(options.pg_user)  # `sudo -u postgres psql`, as root does
        return self.settings.database.connection(
            host=options.pg_host, port=options.pg_port, user=options.pg_user,
            command_prefix=options.pg_command_prefix, run_as=run_as, env=options.env,
        )  # fmt: skip

    def instance(self) -> PgConnection:
        """The instance's own connection: its role, DB_PASS, as Mastodon connects."""
        db, options = self.settings.database, self.options
        host = options.pg_host if options.pg_host is not None else db.host
        run_as = None
        if db.password is None and (host is None or host.startswith("/")) and os.geteuid() == 0:
            run_as = _system_user(db.user)  # peer authentication: Mastodon runs as that user
        return db.connection(
            host=options.pg_host, port=options.pg_port, command_prefix=options.pg_command_prefix,
            run_as=run_as, env=options.env,
        )  # fmt: skip

    def _restore_database(self, step: Step) -> None:
        db, admin = self.settings.database, self.admin()
        role = db.user or ADMIN_USER
        notes: list[str] = []
        if admin.database_exists(db.name) and not self.options.clean:
            if admin.user_relations(db.name) > 0:
                raise UsageError(
                    f"database {db.name} already holds tables: add --clean to replace them"
                )
        script = read_globals(self.repo, self.snapshot)
        if script is not None:
            self.report.warnings += apply_globals_script(admin, script)
            notes.append("roles from globals.sql")
        if role != admin.username and not admin.role_exists(role):
            admin.query(f"CREATE ROLE {quote_ident(role)} LOGIN CREATEDB")
            notes.append(f"role {role} created")
        if role != admin.username:
            if _has_password(script, role):
                notes.append(f"{role}'s password from globals.sql")
            elif db.password is not None:
                admin.set_role_password(role, db.password)
                notes.append(f"{role}'s password set from DB_PASS (the dump has none)")
            else:
                notes.append(f"{role} has no password: DB_PASS is empty (peer authentication)")
        exists = admin.database_exists(db.name)
        restored = restore_database(
            self.repo, self.snapshot, admin,
            DatabaseRestoreOptions(
                db.name, create=not exists, clean=self.options.clean and exists,
                jobs=self._jobs(admin), owner=role, template="template0",
                spool_dir=self.options.spool_dir,
            ),
            self.progress,
        )  # fmt: skip
        self.report.warnings += [f"pg_restore: {w}" for w in restored.warnings]
        if admin.database_owner(db.name) != role:
            admin.query(f"ALTER DATABASE {quote_ident(db.name)} OWNER TO {quote_ident(role)}")
        notes.append(f"owned by {role}")
        jobs = "parallel" if restored.spooled else "streamed"
        notes.append(f"pg_restore {jobs}, {restored.bytes_restored} bytes")
        notes.append(self._verify_database())
        step.detail = "; ".join(notes)

    def _jobs(self, admin: PgConnection) -> int:
        """Parallel pg_restore needs the dump in a local file: only when it fits the spool
        folder (twice over) and no command prefix hides that file from pg_restore."""
        if self.options.jobs is not None:
            return self.options.jobs
        _, dump = find_dump(self.repo, self.snapshot)
        spool = self.options.spool_dir or Path(tempfile.gettempdir())
        try:
            free = shutil.disk_usage(spool).free
        except OSError:
            return 1
        if admin.command_prefix or free < 2 * dump.size:
            return 1
        return max(1, min(MAX_PARALLEL_JOBS, os.cpu_count() or 1))

    def _verify_database(self) -> str:
        """Log in as Mastodon will, and compare row counts with the backup's."""
        instance, name = self.instance(), self.settings.database.name
        problem = instance.can_log_in(name)
        if problem is not None:
            raise CommandFailed("psql", 2, f"restored, but {instance.describe()} cannot log in "
                                f"to {name} as Mastodon will: {problem}")  # fmt: skip
        facts = self.snapshot.metadata.get("postgres")
        recorded = facts.get("row_counts") if isinstance(facts, Mapping) else None
        if not isinstance(recorded, Mapping):
            return f"{instance.describe()} logs in"
        lines = instance.query(ROW_COUNTS_SQL, name)
        counts = json.loads(lines[0] if lines else "{}")
        wrong = [t for t, rows in recorded.items() if counts.get(t) != rows]
        if wrong:
            shown = ", ".join(f"{t} {counts.get(t)} (backup {recorded[t]})" for t in sorted(wrong))
            raise CommandFailed("psql", 1, f"row counts differ from the backup: {shown}")
        return f"{instance.describe()} logs in; {len(recorded)} tables' row counts match the backup"

    def _restore_config(self, step: Step) -> None:
        config = self._node("config")
        assert config is not None and config.subtree is not None
        live = self.env_target.parent
        done = []
        for node in load_tree(self.repo, config.subtree):
            if node.type is not NodeType.FILE:
                continue
            is_env = self.env_node is not None and node.name == self.env_node.name
            target = self.env_target if is_env else live / os.fsdecode(node.name)
            _make_dirs(live, node)
            done.append(self._put_file(node, target))
        step.detail = "; ".join(done)

    def _put_file(self, node: Node, target: Path) -> str:
        """One file in place, its owner and mode as backed up; a different file already
        there is kept beside it, never lost."""
        try:
            current = target.read_bytes()
        except FileNotFoundError:
            current = None
        if current is not None:
            if current == b"".join(stream_file(self.repo, node)):
                _set_owner_mode(target, node)
                return f"{target} unchanged"
            kept = target.with_name(f"{target.name}.before-restore-{time.strftime('%Y%m%d%H%M%S')}")
            os.rename(target, kept)
            self.report.warnings.append(f"{target} differed from the snapshot: kept as {kept}")
        write_file_atomically(
            self.repo, node, target, mode=stat.S_IMODE(node.mode), owner=(node.uid, node.gid)
        )
        return str(target)

    def _restore_media(self, step: Step) -> None:
        root = self.settings.media_root
        media = self._node("media")
        assert media is not None
        _make_dirs(root, media)
        result = Restorer(self.repo, self.progress).restore(
            self.snapshot, root, options=RestoreOptions(subtree="media")
        )
        _set_owner_mode(root, media)
        step.detail = f"{result.files} files, {result.dirs} dirs into {root}"
        if result.errors:
            self.report.warnings += result.errors
            raise SnapstoreError(f"{len(result.errors)} media files could not be restored")

    def _restore_redis(self, step: Step) -> None:
        redis = self.settings.redis
        if redis is not None and not self.options.redis_running_ok:
            if _redis_answers(redis.host, redis.port, self.options.redis_command_prefix):
                raise UsageError(
                    f"Redis at {redis.host}:{redis.port} is running and would overwrite the RDB "
                    "when it saves: stop it first (systemctl stop redis-server), or pass "
                    "--redis-running to write the RDB anyway"
                )
        result = restore_redis_rdb(self.repo, self.snapshot, self.options.redis_rdb)
        step.detail = f"{result.path}: {result.size} bytes, RDB version {result.rdb_version}"

    def _restore_folder(self, step: Step, target: Path) -> None:
        node = self._node(step.part)
        assert node is not None
        _make_dirs(target, node)
        result = Restorer(self.repo, self.progress).restore(
            self.snapshot, target, options=RestoreOptions(subtree=step.part)
        )
        _set_owner_mode(target, node)
        step.detail = f"{result.files} files, {result.symlinks} links into {target}"
        if result.errors:
            self.report.warnings += result.errors
            raise SnapstoreError(
                f"{len(result.errors)} files of {step.part}/ could not be restored"
            )

    # -- what the admin does next ---------------------------------------------------------
    def checklist(self) -> list[str]:
        done = {step.part for step in self.report.steps if step.status in ("ok", "planned")}
        live = self.settings.live_dir
        docker = (live / "docker-compose.yml").exists() or self._node("config/docker-compose.yml")
        items = []
        if self.report.failed:
            names = ", ".join(step.part for step in self.report.failed)
            items.append(
                f"Fix what failed ({names}) and run again with --only {names.replace(' ', '')}"
            )
        if not docker and not (live / "Gemfile").exists():
            items.append(f"Put Mastodon's code in {live} (git clone https://github.com/mastodon/"
                         "mastodon.git, check out the version you ran), then bundle install "
                         "and yarn install as the mastodon user")  # fmt: skip
        if docker:
            items.append(f"Start the instance: cd {live} && docker compose up -d")
        else:
            if "redis" in done:
                items.append(
                    "Start Redis, which loads the restored RDB: systemctl start redis-server"
                )
            items.append(f"As the mastodon user in {live}: RAILS_ENV=production bundle exec "
                         "rails assets:precompile")  # fmt: skip
            units = "systemctl daemon-reload && " if "systemd" in done else ""
            items.append(f"Start Mastodon: {units}systemctl enable --now mastodon-web "
                         "mastodon-sidekiq mastodon-streaming")  # fmt: skip
        if "redis" not in done:
            items.append("Redis was not restored: rebuild the home feeds with "
                         "RAILS_ENV=production bin/tootctl feeds build")  # fmt: skip
        if is_true(self.values.get("ES_ENABLED")):
            items.append("Rebuild the search index: RAILS_ENV=production bin/tootctl search deploy")
        if "nginx" in done:
            items.append("Check and reload nginx: nginx -t && systemctl reload nginx")
        if "letsencrypt" in done:
            items.append("Check certificate renewal: certbot renew --dry-run")
        items.append(f"Check the instance: https://{self.settings.web_domain or self.settings.local_domain}"
                     " loads, and you can log in")  # fmt: skip
        return items


def _has_password(script: bytes | None, role: str) -> bool:
    """Whether globals.sql sets `role`'s password (dumped with role passwords)."""
    if script is None:
        return False
    name = re.escape(role)
    pattern = rf"ALTER ROLE (?:{name}|\"{name}\") WITH [^;]*PASSWORD '".encode()
    return re.search(pattern, script) is not None


def _system_user(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        return None
    return name


def _make_dirs(path: Path, like: Node) -> None:
    """Create a missing folder (and parents) owned like the snapshot's node, when root."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir()
        if os.geteuid() == 0:
            os.chown(folder, like.uid, like.gid)


def _set_owner_mode(path: Path, node: Node) -> None:
    if os.geteuid() == 0:
        os.chown(path, node.uid, node.gid, follow_symlinks=False)
    if not path.is_symlink():
        os.chmod(path, stat.S_IMODE(node.mode))


def _redis_answers(host: str, port: int, command_prefix: Sequence[str]) -> bool:
    """Whether a Redis server answers there (behind a command prefix: redis-cli PING)."""
    if command_prefix:
        argv = [*command_prefix, "redis-cli", "-h", host, "-p", str(port), "PING"]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0 and (b"PONG" in done.stdout or b"NOAUTH" in done.stdout)
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.split()) if text else type(exc).__name__
