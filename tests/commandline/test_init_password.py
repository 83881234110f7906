"""`snapstore init` refuses an empty password, as restic does (issue 10, item 9): a usage
error (exit 2, as for an empty password typed at the prompt), and nothing is created."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import Cli

REFUSAL = "snapstore: error: an empty password is not allowed\n"


def test_init_refuses_an_empty_password_from_anywhere(cli: Cli, tmp_path: Path) -> None:
    empty_file = tmp_path / "empty-password"
    empty_file.write_bytes(b"\n")
    for how in (
        {"SNAPSTORE_PASSWORD": ""},
        {"SNAPSTORE_PASSWORD_FILE": str(empty_file)},
        {"SNAPSTORE_PASSWORD_COMMAND": "true"},
    ):
        done = cli("init", env=how)
        assert (done.code, done.err) == (2, REFUSAL), how
        assert not cli.repo.exists(), how
    assert cli("init").code == 0
