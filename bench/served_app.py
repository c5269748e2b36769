"""The real app behind ``streamlit run`` on a free local port, and Debian's Chromium to drive it.

Shared by the browser tests (``tests/e2e``) and the browser benchmark
(``bench.classify_load``): one way to start and always stop the server.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

from bench.apt import install_with_apt
from core.platform.config import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
START_TIMEOUT = 90


class ChromiumMissing(RuntimeError):
    """Chromium is not installed and cannot be installed from here."""


def ensure_chromium() -> str:
    """The Chromium executable, installed with apt (as root, or through passwordless sudo) when missing."""
    if not install_with_apt("chromium", Path(CHROMIUM).exists):
        raise ChromiumMissing("Chromium is needed here: run `sudo apt-get install -y chromium`")
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, as ``make run``'s Ctrl-C; killed if it has not stopped 20 s later."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


#: Numbers the worker logs of this process (apps started one after another on one workspace get their own).
_WORKER_NUMBERS = itertools.count(1)


@contextlib.contextmanager
def worker_processes(workspace: Path, env: dict[str, str], count: int) -> Iterator[list[subprocess.Popen]]:
    """``count`` training workers (``python -m core worker``) on the app's workspace and settings."""
    processes = []
    try:
        for _ in range(count):
            log = open(workspace.parent / f"{workspace.name}-worker-{next(_WORKER_NUMBERS)}.log", "ab")
            processes.append(subprocess.Popen([sys.executable, "-m", "core", "worker"], cwd=PROJECT_ROOT, env=env,
                                              stdout=log, stderr=subprocess.STDOUT))
        yield processes
    finally:
        for process in processes:
            _stop(process)


def _wait_until_up(url: str, process: subprocess.Popen, log_path: Path) -> None:
    """Poll ``url`` until it answers (any HTTP status); fail with the log's tail if the process ends or is slow."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered, with a refusal
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up; its log:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.5)


@contextlib.contextmanager
def served_app(workspace: Path, config_file: Path | None = None, workers: int = 1) -> Iterator[dict]:
    """``streamlit run Home.py`` on a free port with its own workspace, and ``workers`` training workers beside
    it as ``make run`` starts them; yields url, workspace, log path, the environment the processes share and
    the worker processes."""
    port = free_port()
    log_path = workspace.parent / f"{workspace.name}-server-{port}.log"
    env = {**os.environ, "FEEDBACK_STUDIO_WORKSPACE": str(workspace)}
    if config_file is not None:
        env["FEEDBACK_STUDIO_CONFIG"] = str(config_file)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port),
             "--server.headless", "true", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with worker_processes(workspace, env, workers) as started:
            _wait_until_up(f"{url}/_stcore/health", process, log_path)
            yield {"url": url, "workspace": workspace, "log": log_path, "env": env, "workers": started}
    finally:
        _stop(process)


@contextlib.contextmanager
def served_api(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """``python -m core api`` on a free port with the app's environment (its workspace and settings), as a
    system classifying over HTTP would reach it; yields its base URL."""
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "core", "api", "--port", str(port)], cwd=PROJECT_ROOT,
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{url}/docs", process, log_path)
        yield url
    finally:
        _stop(process)
