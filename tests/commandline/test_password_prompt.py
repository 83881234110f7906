"""The password prompt on a terminal, driven through a real pseudo-terminal."""

from __future__ import annotations

import pytest

from tests.support.cli import Cli, snapstore_command

pexpect = pytest.importorskip("pexpect")


def _spawn(cli: Cli, *args: str) -> pexpect.spawn:
    env = {k: v for k, v in cli.env.items() if k != "SNAPSTORE_PASSWORD"}
    command = snapstore_command()
    return pexpect.spawn(command[0], list(command[1:]) + list(args), env=env, timeout=60)


def test_init_asks_twice_and_then_opens_with_the_prompted_password(cli: Cli) -> None:
    child = _spawn(cli, "init")
    child.expect("repository password: ")
    child.sendline("typed at 3 a.m.")
    child.expect("repeat password: ")
    child.sendline("typed at 3 a.m.")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    child = _spawn(cli, "snapshots")
    child.expect("repository password: ")
    child.sendline("typed at 3 a.m.")
    child.expect("0 snapshots")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_mismatched_repeat_is_refused(cli: Cli) -> None:
    child = _spawn(cli, "init")
    child.expect("repository password: ")
    child.sendline("one")
    child.expect("repeat password: ")
    child.sendline("two")
    child.expect("do not match")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert not cli.repo.exists() or not any(cli.repo.iterdir())
