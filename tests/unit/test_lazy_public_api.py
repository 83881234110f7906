"""snapstore/__init__.py imports each public name from its module on first use: the table
it uses (_EXPORTS) must say what its TYPE_CHECKING imports say to type checkers, and
`import snapstore` must stay cheap."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import subprocess
import sys
import types
from pathlib import Path

import snapstore

ROOT = Path(__file__).resolve().parents[2]


def _type_checking_imports() -> dict[str, tuple[str, str]]:
    tree = ast.parse((ROOT / "snapstore" / "__init__.py").read_text())
    [block] = [node for node in tree.body if isinstance(node, ast.If)
               and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"]  # fmt: skip
    found = {}
    for node in block.body:
        if isinstance(node, ast.ImportFrom):
            assert node.module is not None
            for alias in node.names:
                found[alias.asname or alias.name] = (node.module, alias.name)
    return found


def test_the_lazy_table_says_what_the_type_checking_imports_say() -> None:
    assert snapstore._WHERE == _type_checking_imports()
    assert set(snapstore.__all__) - {"__version__"} <= set(snapstore._WHERE)


def test_each_name_is_the_object_of_its_module() -> None:
    for name, (module, private) in snapstore._WHERE.items():
        assert getattr(snapstore, name) is getattr(importlib.import_module(module), private)
    assert snapstore.__version__ == importlib.metadata.version("snapstore")


def test_a_function_named_like_a_submodule_stays_the_function() -> None:
    import snapstore.forget
    import snapstore.prune  # noqa: F401

    assert not isinstance(snapstore.prune, types.ModuleType) and callable(snapstore.prune)
    assert not isinstance(snapstore.forget, types.ModuleType) and callable(snapstore.forget)
    fresh = subprocess.run(  # the submodule imported first, in a new process
        [sys.executable, "-c", "import snapstore.prune, snapstore.forget, snapstore, types; "
         "print(isinstance(snapstore.prune, types.ModuleType), "
         "isinstance(snapstore.forget, types.ModuleType))"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    assert fresh.stdout.split() == ["False", "False"]


def test_import_snapstore_imports_no_dependency() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, snapstore; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    loaded = {name.partition(".")[0] for name in done.stdout.split()}
    heavy = {"numpy", "zstandard", "blake3", "msgpack", "cryptography", "fsspec", "s3fs",
             "botocore", "aiohttp", "paramiko", "rich", "click"}  # fmt: skip
    assert loaded & heavy == set()
    assert {n for n in done.stdout.split() if n.startswith("snapstore.")} == set()
