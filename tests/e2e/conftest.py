"""Browser tests: the real app served by ``streamlit run``, driven by Debian's Chromium through Playwright.

The server runs on a free local port against a temporary workspace and stops at
the end whatever happens. Chromium is installed with apt when it is missing and
the tests run as root (CI); otherwise the tests say how to install it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = PROJECT_ROOT / "tests" / "output" / "screenshots"
START_TIMEOUT = 90


def ensure_chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    # As root, or through sudo when it needs no password (a CI runner's usual set-up).
    as_root = [] if os.geteuid() == 0 else ["sudo", "-n"]
    may_install = shutil.which("apt-get") and (
        not as_root or (shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0))
    if may_install:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        apt = [*as_root, "apt-get"]
        subprocess.run([*apt, "install", "-y", "chromium"], check=False, env=env, capture_output=True, timeout=900)
        if not Path(CHROMIUM).exists():
            subprocess.run([*apt, "update"], check=False, env=env, capture_output=True, timeout=900)
            subprocess.run([*apt, "install", "-y", "chromium"], check=True, env=env, capture_output=True,
                           timeout=900)
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is needed for the browser tests: run `sudo apt-get install -y chromium`")
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def e2e_config(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """Settings for the served app: a tiny transformer so the journey's fine-tuning takes seconds."""
    path = tmp_path_factory.mktemp("e2e") / "settings.toml"
    path.write_text(f'''
[model]
name = "{tiny_bert}"
max_length = 64

[training.quick]
epochs = 2.0
batch_size = 16
learning_rate = 1e-3

[training.thorough]
epochs = 200.0
batch_size = 8
early_stopping_patience = 200

[auth]
max_failed_sign_ins = 3
''', encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, e2e_config: Path):
    """``streamlit run Home.py`` on a free port with its own workspace; yields the base URL."""
    workspace = tmp_path_factory.mktemp("e2e-workspace")
    port = free_port()
    log_path = workspace.parent / "server.log"
    env = {**os.environ, "FEEDBACK_STUDIO_WORKSPACE": str(workspace), "FEEDBACK_STUDIO_CONFIG": str(e2e_config)}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port),
             "--server.headless", "true", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start; its log:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"url": url, "workspace": workspace, "log": log_path}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """A fresh folder of screenshots for this session (pictures of an older run would mislead)."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the test item (the failure screenshot fixture reads it)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
