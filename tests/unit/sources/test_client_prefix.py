"""What goes before psql/pg_dump/redis-cli: container runtimes get the password variable by
name, a run-as user gets runuser (as root) or sudo."""

from __future__ import annotations

import os
import pwd

import pytest

from snapstore.sources.command import client_prefix
from snapstore.sources.pg_client import PgConnection


def test_docker_exec_gets_the_password_variable_by_name() -> None:
    prefix = ["docker", "exec", "-i", "mastodon-db-1"]
    assert client_prefix(prefix, None, ["PGPASSWORD"]) == [
        "docker", "exec", "-e", "PGPASSWORD", "-i", "mastodon-db-1"
    ]  # fmt: skip
    assert client_prefix(prefix, None, []) == prefix  # no password, nothing to pass


@pytest.mark.parametrize("given", [["-e", "PGPASSWORD"], ["--env", "PGPASSWORD"],
                                   ["-ePGPASSWORD"], ["--env=PGPASSWORD"],
                                   ["-e", "PGPASSWORD=x"]])  # fmt: skip
def test_a_prefix_that_passes_it_already_is_left_alone(given: list[str]) -> None:
    prefix = ["/usr/bin/podman", "exec", *given, "-i", "db"]
    assert client_prefix(prefix, None, ["PGPASSWORD"]) == prefix


def test_other_prefixes_are_not_touched() -> None:
    prefix = ["ssh", "db.example", "exec"]
    assert client_prefix(prefix, None, ["PGPASSWORD"]) == prefix
    assert client_prefix(["kubectl", "exec", "-i", "db", "--"], None, ["X"])[:2] == [
        "kubectl", "exec"
    ]  # fmt: skip


def test_run_as_uses_runuser_as_root_and_sudo_otherwise() -> None:
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert client_prefix([], me, ["PGPASSWORD"]) == []  # already that user
    other = "nobody" if me != "nobody" else "root"
    prefix = client_prefix(["docker", "exec", "db"], other, ["PGPASSWORD"])
    if os.geteuid() == 0:
        assert prefix[:4] == ["runuser", "-u", other, "--"]
    else:
        assert prefix[:4] == ["sudo", "-n", "-u", other]
        assert any(word.startswith("--preserve-env=") and "PGPASSWORD" in word for word in prefix)
    assert prefix[-5:] == ["docker", "exec", "-e", "PGPASSWORD", "db"]


def test_connections_pass_their_password_only_by_name() -> None:
    connection = PgConnection("db", 5432, "mastodon", "secret",
                              command_prefix=["docker", "exec", "-i", "db"])  # fmt: skip
    argv = connection.command("psql", "-c", "SELECT 1")
    assert "secret" not in " ".join(argv)
    assert argv[:5] == ["docker", "exec", "-e", "PGPASSWORD", "-i"]
    env = connection.environment()
    assert env is not None and env["PGPASSWORD"] == "secret"


def test_redis_cli_in_a_container_gets_the_password_by_name() -> None:
    from snapstore.sources.redis import RedisOptions, RedisSource

    options = RedisOptions("redis", 6379, password="pw",
                           command_prefix=["docker", "exec", "-i", "mastodon-redis-1"])  # fmt: skip
    argv = RedisSource._cli_args(options, "PING")
    assert argv[:6] == ["docker", "exec", "-e", "REDISCLI_AUTH", "-i", "mastodon-redis-1"]
    assert "pw" not in argv
