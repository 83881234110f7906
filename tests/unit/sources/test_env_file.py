"""The .env.production parser and what Mastodon's settings make of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapstore.errors import SourceError
from snapstore.sources.env_file import is_true, parse_env, read_env_file
from snapstore.sources.mastodon_settings import load_settings, settings_from_values

ENV = Path("/home/mastodon/live/.env.production")


def test_plain_assignments_comments_and_blank_lines() -> None:
    text = """
# Federation
LOCAL_DOMAIN=example.social
  SINGLE_USER_MODE = false
export DB_HOST=/var/run/postgresql
DB_PASS=
SECRET_KEY_BASE=abc#def
SMTP_LOGIN=user # the login
"""
    assert parse_env(text) == {
        "LOCAL_DOMAIN": "example.social",
        "SINGLE_USER_MODE": "false",
        "DB_HOST": "/var/run/postgresql",
        "DB_PASS": "",
        "SECRET_KEY_BASE": "abc#def",
        "SMTP_LOGIN": "user",
    }


def test_quotes_escapes_and_multiline_values() -> None:
    text = (
        "A='single # not a comment $HOME'\n"
        'B="double \\"quoted\\" \\n newline" # comment\n'
        'C="first\nsecond"\n'
        'E=""\n'
    )
    values = parse_env(text)
    assert values["A"] == "single # not a comment $HOME"
    assert values["B"] == 'double "quoted" \n newline'
    assert values["C"] == "first\nsecond"
    assert values["E"] == ""


def test_later_assignment_wins() -> None:
    assert parse_env("A=1\nA=2\n") == {"A": "2"}


@pytest.mark.parametrize(
    ("text", "line"),
    [("GOOD=1\nthis is not an assignment\n", 2), ('A="open\nB=2\n', 1), ("A='x' y\n", 1)],
)
def test_malformed_lines_name_the_line_not_the_value(text: str, line: int) -> None:
    with pytest.raises(SourceError, match=f"line {line}") as caught:
        parse_env(text, "x.env")
    assert "open" not in str(caught.value).replace("unterminated", "")


def test_unreadable_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        read_env_file(tmp_path / "missing")


def test_s3_enabled_only_when_exactly_true() -> None:
    assert is_true("true")
    assert not is_true("True") and not is_true("yes") and not is_true(None)


def test_mastodon_defaults() -> None:
    settings = settings_from_values({}, ENV)
    db = settings.database
    assert (db.name, db.host, db.port, db.user, db.password) == (
        "mastodon_production", "localhost", 5432, "mastodon", None,
    )  # fmt: skip
    assert settings.redis is not None
    assert (settings.redis.host, settings.redis.port, settings.redis.password) == (
        "localhost", 6379, None,
    )  # fmt: skip
    assert settings.live_dir == ENV.parent
    assert settings.media_root == ENV.parent / "public" / "system"
    assert not settings.s3_enabled


def test_empty_database_settings_mean_libpq_defaults() -> None:
    db = settings_from_values({"DB_HOST": "", "DB_USER": "", "DB_PORT": ""}, ENV).database
    assert (db.host, db.user, db.port) == (None, None, None)


def test_database_url_wins() -> None:
    values = {"DB_HOST": "ignored", "DB_NAME": "ignored",
              "DATABASE_URL": "postgresql://masto:p%40ss@db.internal:6432/prod"}  # fmt: skip
    db = settings_from_values(values, ENV).database
    assert (db.host, db.port, db.user, db.password, db.name) == (
        "db.internal", 6432, "masto", "p@ss", "prod",
    )  # fmt: skip


def test_redis_url_and_unsupported_schemes() -> None:
    settings = settings_from_values({"REDIS_URL": "redis://:s3cret@cache:6380/1"}, ENV)
    assert settings.redis is not None
    assert (settings.redis.host, settings.redis.port, settings.redis.password) == (
        "cache", 6380, "s3cret",
    )  # fmt: skip
    assert settings.redis.username is None
    socket = settings_from_values({"REDIS_URL": "unix:///run/redis.sock"}, ENV)
    assert socket.redis is None and "unix" in (socket.redis_problem or "")


def test_paperclip_root_path_and_s3() -> None:
    values = {"PAPERCLIP_ROOT_PATH": ":rails_root/media", "S3_ENABLED": "true"}
    settings = settings_from_values(values, ENV)
    assert settings.media_root == ENV.parent / "media"
    assert settings.s3_enabled
    absolute = settings_from_values({"PAPERCLIP_ROOT_PATH": "/srv/media"}, ENV)
    assert absolute.media_root == Path("/srv/media")


def test_bad_port_is_reported(tmp_path: Path) -> None:
    env = tmp_path / ".env.production"
    env.write_text("DB_PORT=fivefourthreetwo\n")
    with pytest.raises(SourceError, match="DB_PORT"):
        load_settings(env)
