"""What the installed command imports to start (issue 13, item 6): `--help` and `--version`
import no command module and none of the library's heavy dependencies; `snapshots` on a local
repository imports its own command module and none of the remote storage stack.

The installed console script is run as it is, under a Python that writes `sys.modules` to a
file as it exits (PYTHONPROFILEIMPORTTIME would not do: it misses importlib.import_module,
which the command group uses). Nothing here is timed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.cli import Cli, snapstore_command

HEAVY = {"numpy", "zstandard", "blake3", "msgpack", "cryptography", "rich"}
REMOTE = {"fsspec", "s3fs", "botocore", "aiobotocore", "aiohttp", "paramiko"}
_RUN_AND_LIST = """
import atexit, runpy, sys
out, script = sys.argv[1], sys.argv[2]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv = sys.argv[2:]
runpy.run_path(script, run_name="__main__")
"""


def imported(cli: Cli, tmp_path: Path, *args: str) -> set[str]:
    """The modules loaded by the time `snapstore ARGS` exits."""
    listing = tmp_path / "modules.txt"
    [script] = snapstore_command()
    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST, str(listing), script, *args],
        env=cli.env, capture_output=True, stdin=subprocess.DEVNULL, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    modules = set(listing.read_text().split())
    assert "snapstore.cli.app" in modules  # the listing is there
    return modules


def tops(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


def commands(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith("snapstore.cli.commands.")}


def library(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith("snapstore.") and not m.startswith("snapstore.cli")}


def test_help_and_version_import_no_command_and_no_library(cli: Cli, tmp_path: Path) -> None:
    for args in (["--help"], ["--version"]):
        modules = imported(cli, tmp_path, *args)
        assert tops(modules) & (HEAVY | REMOTE) == set(), args
        assert commands(modules) == set(), args
        # and the storage options' table, data only, which --help lists
        assert library(modules) <= {"snapstore.errors", "snapstore.storage_options"}, args


def test_a_command_s_help_imports_only_that_command(cli: Cli, tmp_path: Path) -> None:
    modules = imported(cli, tmp_path, "stats", "--help")
    assert commands(modules) == {"snapstore.cli.commands.stats"}
    assert tops(modules) & (HEAVY | REMOTE) == set()


def test_snapshots_of_a_local_repository_leave_the_remote_stack_alone(
    initialised: Cli, tmp_path: Path
) -> None:
    modules = imported(initialised, tmp_path, "snapshots")
    assert tops(modules) & REMOTE == set()
    assert "numpy" not in tops(modules)  # the index (numpy arrays) is built only when needed
    assert commands(modules) == {"snapstore.cli.commands.snapshots"}
    unused = ("snapstore.sources", "snapstore.archiver", "snapstore.restorer", "snapstore.checker",
              "snapstore.backend.fsspec", "snapstore.backend.sftp")  # fmt: skip
    assert {m for m in library(modules) if m.startswith(unused)} == set()
