"""The shape of the code: layer contracts, the CLI's imports, the pinned public API."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

import snapstore

ROOT = Path(__file__).resolve().parents[2]


def test_layers_point_down() -> None:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("import-linter is not installed: run the README's install command")
    done = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_cli_uses_only_the_public_api() -> None:
    offenders = []
    for path in sorted((ROOT / "cli").rglob("*.py")):
        for name in _imports(path):
            if name.startswith("snapstore") and name not in ("snapstore", "snapstore.errors") \
                    and not name.startswith("snapstore.cli"):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
            if name == "cli" or name.startswith("cli."):
                offenders.append(f"{path.relative_to(ROOT)}: {name} (use snapstore.cli)")
    assert offenders == []


def test_library_never_reads_the_environment() -> None:
    offenders = []
    for path in sorted((ROOT / "snapstore").rglob("*.py")):
        text = path.read_text()
        if "os.environ[" in text or "os.getenv(" in text or "environ.get(" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_public_api_is_pinned() -> None:
    exported = set(snapstore.__all__)
    missing = [name for name in exported if not hasattr(snapstore, name)]
    assert missing == []
    assert {
        "init_repository", "open_repository", "take_snapshot", "restore", "check",
        "list_snapshots", "find_snapshot", "dump_file", "list_tree", "repository_stats",
        "FileSource", "StreamSource", "SnapshotOptions", "CheckOptions", "Repository",
        "SnapstoreError", "DamagedObject", "OnDamaged", "repair_index", "repair_snapshots",
        "IndexRepairReport", "SnapshotsRepairReport", "RepairedSnapshot", "RepairChange",
    } <= exported
