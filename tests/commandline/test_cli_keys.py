"""`snapstore key ...` through the installed command (issue 15, item 8): a password per admin,
a password changed, refusals, and the paper key bringing back a repository whose keys/
folder was lost."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.cli import PASSWORD, Cli


def with_password(cli: Cli, password: str, repo: Path | None = None) -> Cli:
    repo = repo or cli.repo
    return Cli(repo, dict(cli.env, SNAPSTORE_PASSWORD=password, SNAPSTORE_REPOSITORY=str(repo)))


def listed(cli: Cli) -> list[dict[str, object]]:
    done = cli("key", "list", "--json")
    assert done.code == 0, done.err
    keys: list[dict[str, object]] = done.json()
    return keys


def test_init_says_where_the_key_is_and_to_export_it(cli: Cli) -> None:
    done = cli("init")
    assert done.code == 0, done.err
    assert done.err.count("snapstore key export --paper") == 1, done.err
    assert f"{cli.repo}/keys/" in done.err
    assert "export" not in cli("snapshots").err


def test_add_list_remove_and_passwd(initialised: Cli, tmp_path: Path) -> None:
    second_file = tmp_path / "second"
    second_file.write_text("second admin\n")
    done = initialised("key", "add", "--new-password-file", str(second_file))
    assert done.code == 0, done.err
    first, second = listed(initialised)
    assert (first["current"], second["current"]) == (True, False)
    assert done.text == f"added key file {str(second['id'])[:8]}\n"
    assert second["kdf"] == {"algorithm": "argon2id", "time_cost": 3, "memory_kib": 65536, "lanes": 4}
    assert second["user"] and second["host"] and second["created"]
    text = initialised("key", "list").text
    assert f"* {str(first['id'])[:8]}" in text and f"  {str(second['id'])[:8]}" in text
    assert "argon2id t=3 m=64 MiB p=4" in text

    admin = with_password(initialised, "second admin")
    assert [k["current"] for k in listed(admin)] == [False, True]

    refused = initialised("key", "remove", str(first["id"])[:8])
    assert refused.code == 2 and "opened this session" in refused.err and "--force" in refused.err
    assert initialised("key", "remove", str(second["id"])[:8]).code == 0
    assert admin("snapshots").code == 12
    last = initialised("key", "remove", "--force", str(first["id"])[:8])
    assert last.code == 2 and "is the last one" in last.err, last.err

    done = initialised("key", "passwd", "--new-password-command", "echo changed at 3 a.m.")
    assert done.code == 0, done.err
    assert f"removed key file {str(first['id'])[:8]}" in done.text
    assert initialised("snapshots").code == 12  # the old password
    changed = with_password(initialised, "changed at 3 a.m.")
    assert changed("snapshots").code == 0
    assert [k["current"] for k in listed(changed)] == [True]


def test_paper_key_restores_a_clone_without_keys(initialised: Cli, tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "blob.bin").write_bytes(os.urandom(300_000))
    (source / "notes.txt").write_text("written before the fire\n")
    assert initialised("snapshot", "files", str(source)).code == 0
    exported = initialised("key", "export", "--paper")
    assert exported.code == 0, exported.err
    paper = exported.text
    assert len(paper.splitlines()) == 9 and "keep it as safe as the password" in exported.err

    clone = tmp_path / "clone"
    shutil.copytree(initialised.repo, clone)
    shutil.rmtree(clone / "keys")
    rescued = with_password(initialised, "after the fire", repo=clone)
    assert rescued("snapshots").code == 12

    lines = paper.splitlines()
    body = lines[3]
    lines[3] = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]  # one typo on line 3
    typo = rescued("key", "import", "--paper", input="\n".join(lines).encode())
    assert typo.code == 2, typo.err
    assert typo.err == "snapstore: error: paper key line 3 does not match its check characters: a typo in this line\n"
    assert not (clone / "keys").exists()

    done = rescued("key", "import", "--paper", input=paper.encode())
    assert done.code == 0, done.err
    target = tmp_path / "target"
    restored = rescued("restore", "latest", "--target", str(target))
    assert restored.code == 0, restored.err
    back = target / str(source).lstrip("/")
    assert (back / "sub" / "blob.bin").read_bytes() == (source / "sub" / "blob.bin").read_bytes()
    assert (back / "notes.txt").read_bytes() == (source / "notes.txt").read_bytes()
    assert rescued("check", "--read-data").code == 0


def test_export_and_import_say_paper(initialised: Cli) -> None:
    assert initialised("key", "export").code == 2
    assert initialised("key", "import").code == 2


def test_key_add_asks_twice_on_a_terminal(initialised: Cli) -> None:
    pexpect = pytest.importorskip("pexpect")
    from tests.support.cli import snapstore_command

    command = snapstore_command()
    child = pexpect.spawn(command[0], [*command[1:], "key", "add"], env=initialised.env, timeout=60)
    child.expect("new password: ")
    child.sendline("typed twice")
    child.expect("repeat password: ")
    child.sendline("typed twice")
    child.expect("added key file")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert with_password(initialised, "typed twice")("snapshots").code == 0
    assert initialised.env["SNAPSTORE_PASSWORD"] == PASSWORD
