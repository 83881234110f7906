"""SIGKILL at random points of real `snapstore` processes, in a loop, and what must hold after.

    loop = KillLoop(src_cli, dst_cli, tmp_path, seed)
    for number in range(kill_points):
        loop.point(number)

Each point runs one command through the installed `snapstore` (snapshot files, snapshot stdin,
prune, forget --prune, copy, repair index, in turn) on a small local repository and kills it
with SIGKILL at a random moment, drawn from the seed: mostly within the command's work (from
when its lock appears in locks/ to when it last ended on its own), sometimes anywhere from its
start (imports, opening the repository). Commands that end before their kill count as
completed. Then, as an operator would: `unlock --remove-all` if a lock was left, and

- `check --read-data` finds no error (notes such as unindexed packs are fine);
- every snapshot reported saved and not forgotten restores byte for byte, and so does every
  copy in the destination of such a snapshot;
- a forget removed only snapshots its policy does not keep.

The checks read the repositories in this process, through the library the command uses.
"""

from __future__ import annotations

import random
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import snapstore
from tests.support.cli import PASSWORD, Cli, command_json
from tests.support.cli_repos import feed as feed_input
from tests.support.cli_repos import opened
from tests.support.processes import objects, start

COMMANDS = ("snapshot files", "snapshot stdin", "prune", "forget --prune", "copy", "repair index")
STREAM_NAME = "dump.sql"
#: Share of kill points drawn over the whole run of the command rather than its work.
ANYWHERE = 0.2
#: Seconds a command takes from its start, and from its lock, until one has ended on its own.
GUESS_WHOLE, GUESS_WORK = 1.5, 0.25
Content = dict[str, bytes] | bytes  # the files of a snapshot of `source`, or a stream


@dataclass
class Outcome:
    """One command run: killed or not, and what it printed if it ended on its own."""

    killed: bool
    code: int | None
    out: bytes
    err: str
    started: float
    locked: float | None  # when its lock appeared, if seen
    ended: float

    def json(self) -> Any:
        """What the command printed with --json (its summary line: `command_json`)."""
        return command_json(self.out)


@dataclass
class Tally:
    points: int = 0
    killed: int = 0
    completed: int = 0
    by_command: dict[str, list[int]] = field(default_factory=dict)  # command -> [killed, completed]
    stale_locks: int = 0

    def add(self, command: str, killed: bool) -> None:
        self.points += 1
        counts = self.by_command.setdefault(command, [0, 0])
        if killed:
            self.killed += 1
            counts[0] += 1
        else:
            self.completed += 1
            counts[1] += 1


class KillLoop:
    def __init__(
        self, src: Cli, dst: Cli, scratch: Path, seed: int, commands: tuple[str, ...] = COMMANDS
    ) -> None:
        self.commands = commands
        self.src = Cli(src.repo, dict(src.env, SNAPSTORE_TO_PASSWORD=PASSWORD))  # for copy
        self.dst = dst
        self.scratch = scratch
        self.rng = random.Random(seed)
        self.source = scratch / "source"
        self.source.mkdir()
        self.files: dict[str, bytes] = {}
        for number in range(10):
            self._write(f"dir{number % 3}/file{number}.bin", self.rng.randbytes(self.rng.randrange(1, 400_000)))
        self.stream = self.rng.randbytes(3 << 20)
        self.expected: dict[str, Content] = {}  # live snapshots of src: id -> content
        #: seconds from a command's lock to its end, and from its start, when it ended itself
        self.work: dict[str, float] = {}
        self.whole: dict[str, float] = {}
        self.tally = Tally()

    # -- one kill point -------------------------------------------------------------------
    def point(self, number: int) -> None:
        command = self.commands[number % len(self.commands)]
        allowed_to_go: set[str] = set()
        feed: bytes | None = None
        content: Content | None = None
        if command == "snapshot files":
            content = self._change_files()
            args = ["snapshot", "files", str(self.source), "--json"]
        elif command == "snapshot stdin":
            content = feed = self._change_stream()
            args = ["snapshot", "stdin", "--database", "--name", STREAM_NAME, "--json"]
        elif command == "prune":
            self._enough_snapshots()
            self._forget(keep=2)
            args = ["prune", "--max-unused", self.rng.choice(("0", "5%", "30%"))]
        elif command == "forget --prune":
            self._enough_snapshots()
            allowed_to_go = self._forget(keep=2, dry_run=True)
            args = ["forget", "--keep-last", "2", "--prune"]
        elif command == "copy":
            done = self.dst("forget", "--keep-last", "3", "--prune")  # keep the destination small
            assert done.code == 0, done.err
            args = ["copy", "--to", str(self.dst.repo)]
        else:
            args = ["repair", "index"]
        outcome = self._run_and_kill(command, args, feed)
        self.tally.add(command, outcome.killed)
        if not outcome.killed:
            assert outcome.code == 0, f"{command} failed on its own: {outcome.err}"
            if outcome.locked is not None:
                self.work[command] = outcome.ended - outcome.locked
            self.whole[command] = outcome.ended - outcome.started
            if content is not None:
                snap_id = outcome.json()["snapshot_id"]
                self.expected[snap_id] = content
        where = f"kill point {number} ({command}, {'killed' if outcome.killed else 'completed'})"
        for cli in (self.src, self.dst):
            if objects(cli.repo, "locks"):
                self.tally.stale_locks += 1
                done = cli("unlock", "--remove-all")
                assert done.code == 0, done.err
        self.verify(where, allowed_to_go, copies=command == "copy")

    def _run_and_kill(self, command: str, args: list[str], feed: bytes | None) -> Outcome:
        if self.rng.random() < ANYWHERE:
            after_start = self.rng.uniform(0, self.whole.get(command, GUESS_WHOLE))
            after_lock = None
        else:
            after_start, after_lock = None, self.rng.uniform(0, self.work.get(command, GUESS_WORK))
        locks_before = {p.name for p in objects(self.src.repo, "locks")}
        started = time.monotonic()
        proc = start(self.src, *args)
        feeder = feed_input(proc, feed or b"")
        locked = None
        deadline = started + (after_start if after_start is not None else 120.0)
        while proc.poll() is None and time.monotonic() < deadline:
            if locked is None and {p.name for p in objects(self.src.repo, "locks")} - locks_before:
                locked = time.monotonic()
                if after_lock is not None:
                    deadline = locked + after_lock
            time.sleep(0.002)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
        ended = time.monotonic()
        feeder.join(timeout=60)
        assert proc.stdout is not None and proc.stderr is not None
        out, err = proc.stdout.read(), proc.stderr.read().decode(errors="replace")
        proc.stdout.close()
        proc.stderr.close()
        assert "Traceback" not in err, err
        return Outcome(killed, proc.returncode, out, err, started, locked, ended)

    # -- what the commands work on --------------------------------------------------------
    def _write(self, name: str, data: bytes) -> None:
        path = self.source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.files[name] = data

    def _change_files(self) -> dict[str, bytes]:
        rng = self.rng
        for name in rng.sample(sorted(self.files), 2):
            data = bytearray(self.files[name])
            data[rng.randrange(len(data) + 1):] = rng.randbytes(rng.randrange(1, 100_000))
            self._write(name, bytes(data))
        if len(self.files) > 8:
            gone = rng.choice(sorted(self.files))
            (self.source / gone).unlink()
            del self.files[gone]
        self._write(f"dir3/new{rng.randrange(10**9)}.bin", rng.randbytes(rng.randrange(1, 300_000)))
        return dict(self.files)

    def _change_stream(self) -> bytes:
        rng = self.rng
        at = rng.randrange(len(self.stream))
        cut = rng.randrange(1, 150_000)
        self.stream = self.stream[:at] + rng.randbytes(rng.randrange(1, 150_000)) + self.stream[at + cut:]
        return self.stream

    def _enough_snapshots(self) -> None:
        """At least three snapshots of each kind, so that forget has something to remove."""
        for kind in ("snapshot files", "snapshot stdin"):
            while sum(isinstance(c, bytes) == (kind == "snapshot stdin") for c in self.expected.values()) < 3:
                content: Content
                if kind == "snapshot stdin":
                    content = stream = self._change_stream()
                    done = self.src("snapshot", "stdin", "--database", "--name", STREAM_NAME,
                                    "--json", input=stream)  # fmt: skip
                else:
                    content = self._change_files()
                    done = self.src("snapshot", "files", str(self.source), "--json")
                assert done.code == 0, done.err
                snap_id = done.json()["snapshot_id"]
                self.expected[snap_id] = content

    def _forget(self, keep: int, dry_run: bool = False) -> set[str]:
        """Runs forget --keep-last (to the end); returns the ids it removed or would remove."""
        args = ["forget", "--keep-last", str(keep), "--json"] + (["--dry-run"] if dry_run else [])
        done = self.src(*args)
        assert done.code == 0, done.err
        removed = {s["id"] for group in done.json() for s in group["remove"]}
        if not dry_run:
            for snap_id in removed:
                self.expected.pop(snap_id, None)
        return removed

    # -- what must hold -------------------------------------------------------------------
    def verify(self, where: str, allowed_to_go: set[str], copies: bool) -> None:
        _assert_checks_clean(self.src, where)
        with opened(self.src) as repo:
            present = {s.id.hex(): s for s in snapstore.list_snapshots(repo) if s.id is not None}
            for snap_id, content in list(self.expected.items()):
                if snap_id not in present:
                    assert snap_id in allowed_to_go, f"{where}: snapshot {snap_id[:8]} is gone"
                    del self.expected[snap_id]
                    continue
                self._assert_restores(repo, present[snap_id], content, where)
        if copies:
            _assert_checks_clean(self.dst, where + ", destination")
            with opened(self.dst) as repo:
                for snap in snapstore.list_snapshots(repo):
                    source = str(snap.metadata.get("copied_from"))
                    if source in self.expected:
                        self._assert_restores(repo, snap, self.expected[source], where + ", copy")

    def _assert_restores(
        self, repo: snapstore.Repository, snap: snapstore.Snapshot, content: Content, where: str
    ) -> None:
        if isinstance(content, bytes):
            dumped = b"".join(snapstore.dump_file(repo, snap, "/" + STREAM_NAME))
            assert dumped == content, f"{where}: snapshot {snap.short_id} dumps other bytes"
            return
        target = self.scratch / "restored"
        shutil.rmtree(target, ignore_errors=True)
        result = snapstore.restore(repo, snap, target)
        assert not result.errors, (where, result.errors)
        root = target / str(self.source).lstrip("/")
        restored = {
            str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()
        }
        assert restored == content, f"{where}: snapshot {snap.short_id} restores other files"


def _assert_checks_clean(cli: Cli, where: str) -> None:
    """`check --read-data`, in this process, finds no error (notes are fine: packs no index
    names, a killed prune's orphan deltas)."""
    with opened(cli, load_index=False) as repo:
        report = snapstore.check(repo, snapstore.CheckOptions(read_data=True))
        assert not repo.damaged, (where, repo.damaged)
    assert report.ok, f"{where}: " + "\n".join(str(f) for f in report.errors)
