"""Where `snapstore schedule` keeps its units, and systemctl for that scope: the system's
(/etc/systemd/system, or under --root as `systemctl --root`) or a user's (--user:
$XDG_CONFIG_HOME/systemd/user, else ~/.config/systemd/user).

Enabling, disabling and `is-enabled` work on the unit files even where systemd is not running
(a container, a chroot, an image being built); starting, reloading and the timers' next and
last runs need a running manager, which `running` asks for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_UP = frozenset({"running", "degraded", "starting", "initializing", "maintenance", "stopping"})


@dataclass(frozen=True)
class Scope:
    user: bool = False
    root: str | None = None

    @property
    def unit_dir(self) -> Path:
        if self.user:
            config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
            return Path(config) / "systemd" / "user"
        return Path(self.root or "/") / "etc" / "systemd" / "system"

    @property
    def flags(self) -> list[str]:
        return [*(["--user"] if self.user else []), *([f"--root={self.root}"] if self.root else [])]

    @property
    def available(self) -> bool:
        return shutil.which("systemctl") is not None

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """systemctl with this scope's flags; its output captured, never raising."""
        try:
            return subprocess.run(["systemctl", *self.flags, *args], capture_output=True,
                                  text=True, timeout=60)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            return subprocess.CompletedProcess(["systemctl", *args], 1, "", str(exc))

    def running(self) -> bool:
        """Whether a systemd manager for this scope runs (never under --root)."""
        if self.root or not self.available:
            return False
        return self.run("is-system-running").stdout.strip() in _UP

    def manager(self) -> str:
        return "your user's systemd" if self.user else "systemd"

    def command(self, *args: str) -> str:
        """The systemctl command line to tell the user."""
        return " ".join(["systemctl", *self.flags, *args])
