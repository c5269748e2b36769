"""Installing a Debian package the tests need (Chromium, PostgreSQL) when it is missing, one process at a time.

Test processes run side by side (pytest-xdist); two ``apt-get`` runs at once fail on dpkg's lock, so every
install here waits for a file lock and looks again once it holds it (the other process may have installed it).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

LOCK = Path(tempfile.gettempdir()) / "feedback-studio-apt.lock"


def may_install() -> list[str] | None:
    """The command prefix that runs apt-get as root here (empty as root, sudo -n with passwordless sudo), or None
    when packages cannot be installed."""
    if not shutil.which("apt-get"):
        return None
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


def install_with_apt(package: str, present: Callable[[], bool]) -> bool:
    """Install ``package`` unless ``present()``; the package lists are refreshed once if the first try fails.
    Whether it is present afterwards."""
    if present():
        return True
    prefix = may_install()
    if prefix is None:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        for step in (["install", "-y", package], ["update"], ["install", "-y", package]):
            if present():
                break
            subprocess.run([*prefix, "apt-get", *step], check=False, env=env, capture_output=True, timeout=900)
    return present()
