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

from snapstore.cli.remote_options import Setting

F = TypeVar("F", bound=Callable[..., Any])

REDIS = "Redis server options"
REDIS_SETTINGS = (
    Setting("redis_host", "HOST", "Redis host [default: 127.0.0.1]", section="redis",
            key_name="host", env_name=""),
    Setting("redis_port", "PORT", "Redis port [default: 6379]", type=int, toml_types=(int,),
            section="redis", key_name="port", env_name=""),
    Setting("redis_command_prefix", "CMD", "Run redis-cli through this, e.g. 'docker exec -i "
            "mastodon-redis-1'", toml_types=(list, str), section="redis",
            key_name="command_prefix", env_name=""),
)  # fmt: skip
"""One row each: flag, config key ([redis]); no variable (REDISCLI_AUTH is redis-cli's)."""


def redis_options(*names: str) -> Callable[[F], F]:
    """The options named (all of them when none is), passed by their names (redis_host, ...)."""
    rows = [s for s in REDIS_SETTINGS if not names or s.param in names]

    def decorate(func: F) -> F:
        for setting in reversed(rows):
            func = setting.decorator(REDIS)(func)
        return func

    return decorate
