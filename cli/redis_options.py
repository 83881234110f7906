"""The Redis server `snapshot redis` takes a fresh RDB from, and the prefix redis-cli runs
through there and in `snapshot mastodon` and `restore mastodon`: one spelling for all of them.

    --redis-host H --redis-port P --redis-command-prefix CMD

    [redis]                         # the config file's keys for the same
    host = "127.0.0.1"
    port = 6379
    command_prefix = ["docker", "exec", "-i", "mastodon-redis-1"]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def redis_server_options(func: F) -> F:
    """--redis-host and --redis-port, passed as `redis_host` and `redis_port`."""
    func = click.option("--redis-port", type=int, default=6379, show_default=True,
                        help="Redis port.")(func)  # fmt: skip
    return click.option("--redis-host", default="127.0.0.1", show_default=True,
                        help="Redis host.")(func)  # fmt: skip


def redis_command_prefix_option(func: F) -> F:
    """--redis-command-prefix CMD, passed as `redis_command_prefix`."""
    return click.option("--redis-command-prefix", metavar="CMD",
                        help="Run redis-cli through this, e.g. 'docker exec -i mastodon-redis-1'.")(func)  # fmt: skip
