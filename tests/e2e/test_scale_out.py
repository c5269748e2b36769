"""Two app servers and two training workers on one PostgreSQL database and one shared workspace folder: a run
started on server A is followed and cancelled on server B, and exactly one worker trained it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.postgres_server import fresh_database
from bench.served_app import served_app
from core.accounts.audit import EventType
from core.platform.config import CONFIG_ENV_VAR, WORKSPACE_ENV_VAR, load_config
from core.training.runs import RunState, list_runs
from core.platform.store import Store, events
from core.platform.workspace import Workspace
from tests.conftest import PROJECT_ROOT, save_demo_version
from tests.e2e.test_journey import WAIT, WORKER_WAIT, Studio

pytestmark = pytest.mark.e2e

PASSWORD = "analyst pass phrase"
BASELINES = ("TF-IDF + logistic regression", "TF-IDF + naive Bayes", "Sentence embeddings + logistic regression")


def add_accounts(env: dict[str, str]) -> None:
    """The first admin and the analyst, made on the command line against the shared database (passwords on
    stdin)."""
    for username, role in (("root", "admin"), ("ana", "analyst")):
        subprocess.run([sys.executable, "-m", "core", "users", "add", "--username", username, "--role", role],
                       input=f"{PASSWORD}\n", text=True, env=env, cwd=PROJECT_ROOT, check=True,
                       capture_output=True, timeout=120)


@pytest.fixture
def shared(tmp_path: Path, tiny_bert: Path, postgres_admin_url: str, monkeypatch: pytest.MonkeyPatch):
    """Settings on a fresh PostgreSQL database and a workspace holding the demo dataset and an analyst."""
    settings = tmp_path / "settings.toml"
    settings.write_text(f'''
[model]
name = "{tiny_bert}"
max_length = 64
[training.thorough]
epochs = 200.0
batch_size = 8
early_stopping_patience = 200
[storage]
database_url = "{fresh_database(postgres_admin_url)}"
[worker]
heartbeat_s = 1.0
lease_s = 30.0
poll_s = 0.5
''', encoding="utf-8")
    workspace = tmp_path / "shared-workspace"
    monkeypatch.setenv(CONFIG_ENV_VAR, str(settings))
    monkeypatch.setenv(WORKSPACE_ENV_VAR, str(workspace))
    config = load_config()
    save_demo_version(config.workspace(), config)
    add_accounts(dict(os.environ))
    return settings, workspace, config


def signed_in(browser, url: str, shots: Path) -> Studio:
    """A browser of its own (no cookie shared with the other server's tab), signed in as the analyst."""
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    page.set_default_timeout(WAIT)
    person = Studio(page, url, shots)
    person.sign_in_anew("ana", PASSWORD, "How it works")
    return person


@pytest.mark.timeout(900)
def test_a_run_started_on_one_server_is_followed_and_cancelled_on_another(browser, shared, screenshots):
    settings, workspace, config = shared
    with served_app(workspace, settings, workers=1) as app_a, served_app(workspace, settings, workers=1) as app_b:
        workers = {process.pid for process in app_a["workers"] + app_b["workers"]}
        a = signed_in(browser, app_a["url"], screenshots)
        a.nav("Train")
        a.tick("Fine-tuned transformer")
        for kind in BASELINES:
            a.tick(kind)  # the transformer alone
        a.tick("Thorough")
        a.see("will take", timeout=WORKER_WAIT)
        a.click("Start training")
        a.see("Started 1 run(s)")

        b = signed_in(browser, app_b["url"], screenshots)
        b.nav("Train")
        b.see(re.compile(r"training · step \d+/\d+"))  # the progress the worker writes, on the other server
        first = int(re.search(r"step (\d+)/", b.main_text()).group(1))
        b.page.wait_for_function(  # the bar moves on B while A's worker trains
            f"() => {{ const m = document.body.innerText.match(/step (\\d+)\\//); return m && +m[1] > {first}; }}",
            timeout=WAIT)
        b.shot("scale-out-progress-on-b")
        b.page.get_by_role("button", name="Cancel").first.click()
        b.see("1 cancelled", timeout=WORKER_WAIT)
        b.shot("scale-out-cancelled-on-b")

    (run,) = list_runs(Workspace(workspace))
    assert run.state is RunState.CANCELLED and run.cancelled_by == "ana" and run.step < run.total_steps
    owner_pid = int(run.owner.split(":")[1])
    assert owner_pid in workers and not run.retried_as  # one of the two workers took it, and only once
    store = Store(config.storage.database_url)
    outcomes = [e for e in store.rows(events.select()) if e["event_type"].startswith("training_")]
    assert [(e["event_type"], e["details"]["run"]) for e in outcomes] == [
        (EventType.TRAINING_STARTED.value, run.run_id), (EventType.TRAINING_CANCELLED.value, run.run_id)]
    store.dispose()
