"""Browser tests: the real app served by ``streamlit run``, driven by Debian's Chromium through Playwright.

The server runs on a free local port against a temporary workspace and stops at
the end whatever happens. Chromium is installed with apt when it is missing and
the tests run as root (CI); otherwise the tests say how to install it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.served_app import CHROMIUM_FLAGS, ChromiumMissing, ensure_chromium, served_app
from tests.conftest import PROJECT_ROOT

SCREENSHOTS = PROJECT_ROOT / "tests" / "output" / "screenshots"


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
    with served_app(tmp_path_factory.mktemp("e2e-workspace"), e2e_config) as app:
        yield app


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    try:
        executable = ensure_chromium()
    except ChromiumMissing as missing:
        pytest.fail(str(missing))
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


def pytest_configure(config: pytest.Config) -> None:
    """A fresh folder of screenshots for this test session (pictures of an older run would mislead), emptied once
    by the process that starts the test processes, before any of them takes a picture."""
    if not hasattr(config, "workerinput") and config.getoption("markexpr", "") != "not e2e":
        shutil.rmtree(SCREENSHOTS, ignore_errors=True)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the test item (the failure screenshot fixture reads it)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
