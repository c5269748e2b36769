"""Shared fixtures: every test gets its own workspace, never the repository's."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

import pytest

# Two test workers share the two cores (pytest -n auto): one thread each for torch, BLAS and numba, or each
# worker's threads wait on the other's (a tiny BERT's training step took 0.6 s instead of 0.02 s while the other
# core was busy). Set before anything imports them; runs that ask for threads (training) still set their own.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

from core.accounts.auth import Actor, Role  # noqa: E402
from core.platform.config import CONFIG_ENV_VAR, WORKSPACE_ENV_VAR, AppConfig, load_config
from core.platform.workspace import Workspace

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The acting users of tests that are not about roles.
ANALYST = Actor("ana", Role.ANALYST)
ADMIN = Actor("root", Role.ADMIN)
USER = Actor("uma", Role.USER)


#: What every test's configuration changes from the defaults: bcrypt's lowest work factor, as the suite hashes
#: hundreds of passwords (a quarter second each at the default 12). The browser tests keep the default.
TEST_SETTINGS = "[auth]\npassword_hash_rounds = 4\n"


@pytest.fixture(autouse=True)
def isolated_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """Point the app at a temporary workspace (and the test settings) for the duration of each test."""
    root = tmp_path / "workspace"
    monkeypatch.setenv(WORKSPACE_ENV_VAR, str(root))
    settings = tmp_path / "test-settings.toml"
    settings.write_text(TEST_SETTINGS, encoding="utf-8")
    monkeypatch.setenv(CONFIG_ENV_VAR, str(settings))
    return Workspace(root).ensure()


@pytest.fixture
def config(isolated_workspace: Workspace) -> AppConfig:
    return load_config()


@pytest.fixture
def write_file(tmp_path: Path):
    """Write bytes or text to a file under the test's temporary folder."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    return write


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT with the real MiniLM tokenizer, saved as a local model folder (seconds)."""
    import torch
    from transformers import BertConfig, BertModel

    from core.models.pretrained import load_tokenizer, packaged_model_path

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = load_tokenizer(str(packaged_model_path()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=256)
    torch.manual_seed(0)  # the same tiny model in every session
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a TOML settings file (with the test settings unless it has an [auth] section of its own), point
    FEEDBACK_STUDIO_CONFIG at it, return the loaded config."""

    def write(content: str) -> AppConfig:
        path = tmp_path / "settings.toml"
        path.write_text(content if "[auth]" in content else TEST_SETTINGS + content, encoding="utf-8")
        monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
        return load_config()

    return write


def save_demo_version(workspace: Workspace, config: AppConfig, name: str = "demo", max_rows: int | None = None):
    """Save the shipped demo dataset (optionally its first rows) as a dataset version."""
    from core.data.cleaning import CleaningOptions
    from core.data.ingest import DEMO_DATASET, read_feedback_file, records_from_list
    from core.data.preparation import prepare, save_preparation
    from core.data.split import SplitPlan

    table = read_feedback_file(DEMO_DATASET, 10_000_000)
    if max_rows:
        table = records_from_list(table.records[:max_rows], source=table.source)
    prepared = prepare(table, "text", "label", CleaningOptions(), config)
    return save_preparation(workspace, name, prepared, SplitPlan.from_config(config.split), ANALYST)


class QueueWithWorker:
    """The app's run queue with a real worker taking runs off it in this process (threads), as ``make run`` has
    one beside the app; ``close`` stops the worker (a run in progress is interrupted and queued again)."""

    def __init__(self, workspace: Workspace, config: AppConfig, store=None) -> None:
        from core.services.runs import worker
        from core.training.jobs import RunQueue

        self.queue = RunQueue(workspace, config, store)
        self.worker = worker(config, workspace, store).start()  # as the app's: file jobs logged and queued
        _STARTED_WORKERS.append(self)

    def __getattr__(self, name: str):
        return getattr(self.queue, name)

    def close(self) -> None:
        self.worker.stop()
        self.queue.close()


_STARTED_WORKERS: list[QueueWithWorker] = []


@pytest.fixture(autouse=True)
def _stop_workers_after_each_test() -> Iterator[None]:
    """A worker a test started never outlives it (its threads would poll a deleted workspace)."""
    import tests.conftest as imported  # pytest loads this file as ``conftest``; tests import ``tests.conftest``

    yield
    while imported._STARTED_WORKERS:
        imported._STARTED_WORKERS.pop().close()


def train_runs(workspace: Workspace, config: AppConfig, version, kinds=("tfidf_logreg", "tfidf_nb"),
               preset: str = "quick"):
    """Train ``kinds`` on ``version`` through the real queue and a worker; return their finished records."""
    from core.training.runs import RunRequest

    runner = QueueWithWorker(workspace, config)
    try:
        ids = [runner.submit(RunRequest(version.ref, kind, preset, config.training.hyperparameters(preset)),
                             ANALYST).run_id for kind in kinds]
        return [runner.wait(run_id, timeout=300) for run_id in ids]
    finally:
        runner.close()


PASSWORD = "correct horse battery"


def workspace_store(workspace: Workspace):
    """The app's database in a test workspace (the same URL the app derives)."""
    from core.platform.store import Store, default_database_url

    return Store(default_database_url(workspace.root))


#: The databases the store's tests run on: the embedded default and the scale-out server (a PostgreSQL server
#: takes seconds to start: its cases belong to the full run, not the fast set).
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """One throwaway PostgreSQL server for the test session (installed with apt when missing)."""
    from bench.postgres_server import PostgresMissing, postgres_server

    try:
        with postgres_server() as url:
            yield url
    except PostgresMissing as missing:
        pytest.fail(str(missing))


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, isolated_workspace: Workspace) -> str:
    """The workspace's SQLite file, or a fresh database of its own on the test PostgreSQL server."""
    from bench.postgres_server import fresh_database
    from core.platform.store import default_database_url

    if request.param == "sqlite":
        return default_database_url(isolated_workspace.root)
    return fresh_database(request.getfixturevalue("postgres_admin_url"))


@pytest.fixture
def store(database_url: str):
    """The app's database on each kind of server the product supports."""
    from core.platform.store import Store

    store = Store(database_url)
    yield store
    store.dispose()


def make_account(workspace: Workspace, username: str, role: str, password: str = PASSWORD):
    """Create an account as the app would (the first one becomes the first admin)."""
    from core.accounts.auth import Accounts, Role

    accounts = Accounts(workspace_store(workspace), AppConfig().auth)
    if not accounts.any_accounts():
        first = accounts.create_first_admin("root", "Root Admin", "", password)
        if username == "root":
            return first
    return accounts.create(ADMIN, username, username.title(), "", password, Role(role))


def race_in_processes(target, argument_lists: list[tuple], timeout: float = 120) -> list:
    """One forked process per argument list, released together by a barrier; what each put on the queue,
    sorted. ``target(barrier, results, *arguments)`` waits on the barrier, then races the others."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(len(argument_lists)), context.Queue()
    workers = [context.Process(target=target, args=(barrier, results, *arguments)) for arguments in argument_lists]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout)
    return sorted(results.get(timeout=10) for _ in workers)


def wait_until(condition, timeout: float = 120.0, interval: float = 0.02) -> bool:
    """Whether ``condition()`` came true before the deadline (every poll in the tests has one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def wait_with_worker(queue, run_id: str, config: AppConfig, workspace: Workspace, timeout: float = 300):
    """Start a worker under ``config`` for a run already on ``queue``; its finished record (worker and queue
    closed whatever happens)."""
    from core.training.worker import Worker

    worker = Worker(config, workspace).start()
    try:
        return queue.wait(run_id, timeout=timeout)
    finally:
        worker.stop()
        queue.close()
