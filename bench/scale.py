"""Two app servers, two training workers and PostgreSQL under concurrent browser sessions, a worker killed mid-run.

    python -m bench.scale [--sessions 20] [--actions 3] [--runs 3] [--train-examples 200] [--idle-actions 20]

Starts a throwaway PostgreSQL and points a settings file and a workspace at it (every process uses them),
saves the demo dataset, trains and publishes TF-IDF + logistic regression (fast to classify with), and
makes one account per session. Baseline: one idle server (no worker, nothing queued) and one browser session
that classifies ``--idle-actions`` texts on the Classify page. Load: two servers on the same database and
workspace, one worker beside each; ``--runs`` fine-tuned transformer runs (Quick preset) are queued, then
``--sessions`` browser sessions (alternating between the servers, each its own user) each classify
``--actions`` demo texts and send feedback on every prediction. Once a run has trained a few steps, the worker
training it is killed with SIGKILL and a replacement worker is started; the run is interrupted when its lease
runs out and retried by a worker. After the sessions, it waits until every run has ended.

Printed: the CPU it ran on; rows the sessions wrote against rows found in the database (predictions and
feedback); runs finished, interrupted, retried, failed, cancelled and lost; the Classify latency (click to
prediction shown) p50/p95 under load against the idle server; then a ``key: value`` summary and the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import TimeoutError as PlaywrightTimeout, async_playwright

from bench.common import check_targets, demo_texts, summary
from bench.postgres_server import fresh_database, postgres_server
from bench.served_app import CHROMIUM_FLAGS, ensure_chromium, served_app, worker_processes
from core.accounts.auth import Accounts, Role, command_line_actor
from core.data.cleaning import CleaningOptions
from core.platform.config import CONFIG_ENV_VAR, WORKSPACE_ENV_VAR, AppConfig, load_config
from core.data.dataset_versions import DatasetVersion
from core.platform.hardware import cpu_features, cpu_kind
from core.data.ingest import DEMO_DATASET, read_feedback_file
from core.training.jobs import RunQueue
from core.data.preparation import prepare, save_preparation
from core.serving.publishing import publish
from core.training.runs import RunHandle, RunRecord, RunRequest, RunState, create_run, list_runs
from core.data.split import SplitPlan
from core.platform.store import Store, feedback, predictions
from core.training.execution import execute_run, plan_for_version
from core.platform.workspace import Workspace

PASSWORD = "bench pass phrase 1"
WAIT_MS = 300_000  # one browser step on a loaded 2-core machine may take long; a frozen one fails
SIGN_IN_WAIT_MS, SIGN_IN_CLICKS = 60_000, 5
PREDICTION_SHOWN = "Was this right?"  # the feedback form under a shown prediction (pages/views/classify.py)
FEEDBACK_STORED = "Thank you — stored"
#: Rows must all arrive, no queued run may be lost, and classifying under load may be slower than on an idle
#: server — on 2 cores shared by two servers, two workers fine-tuning a transformer, PostgreSQL and Chromium
#: with every session in it, about 10 times slower at p95 — but not frozen.
TARGETS = {"rows_missing": ("<=", 0.0), "rows_extra": ("<=", 0.0), "runs_lost": ("<=", 0.0),
           "interrupted_not_retried": ("<=", 0.0), "sessions_failed": ("<=", 0.0),
           "latency_p95_ratio": ("<=", 10.0)}


@dataclass
class Tally:
    """What one browser session did: rows it caused to be written, its Classify latencies, how it ended."""

    user: str
    server: str
    predictions: int = 0
    feedback: int = 0
    latencies: list[float] = field(default_factory=list)
    sign_in_clicks: int = 0
    error: str | None = None


@dataclass
class Kill:
    """The worker killed mid-run, and when."""

    run_id: str = ""
    pid: int = 0
    step: int = 0
    during_sessions: bool = False
    replacement_pid: int = 0


# -- setting up --------------------------------------------------------------------------------------------------

def write_settings(folder: Path, database_url: str) -> Path:
    """Short heartbeat and lease so a killed worker's run is found within seconds, not minutes."""
    path = folder / "settings.toml"
    path.write_text(f'[storage]\ndatabase_url = "{database_url}"\n\n'
                    "[worker]\nheartbeat_s = 2.0\nlease_s = 20.0\npoll_s = 0.5\nretries = 1\n", encoding="utf-8")
    return path


def save_demo(workspace: Workspace, config: AppConfig) -> DatasetVersion:
    """The demo dataset as a version, as the Data page saves it."""
    prepared = prepare(read_feedback_file(DEMO_DATASET, 10_000_000), "text", "label", CleaningOptions(), config)
    return save_preparation(workspace, "demo", prepared, SplitPlan.from_config(config.split), command_line_actor())


def publish_baseline(workspace: Workspace, config: AppConfig, version: DatasetVersion) -> str:
    """TF-IDF + logistic regression, trained here and published: classifying costs little, so latency shows
    the servers' load, not the model."""
    record = create_run(workspace, RunRequest(version.ref, "tfidf_logreg", "quick",
                                              config.training.hyperparameters("quick")), config, command_line_actor())
    final = execute_run(workspace, RunHandle(workspace, record), config, threading.Event())
    if final.state is not RunState.SUCCEEDED:
        raise SystemExit(f"training the published model failed: {final.error}")
    publish(workspace, final.run_id, command_line_actor())
    return final.run_id


def make_accounts(store: Store, config: AppConfig, count: int) -> list[str]:
    """The first admin and one user per session (one more for the idle baseline), in the shared database."""
    accounts = Accounts(store, config.auth)
    admin = accounts.create_first_admin("bench-admin", "Bench Admin", "", PASSWORD)
    names = [f"user{number:02d}" for number in range(count + 1)]
    for name in names:
        accounts.create(admin.actor, name, name.title(), "", PASSWORD, Role.USER)
    return names


def queue_runs(workspace: Workspace, config: AppConfig, store: Store, version: DatasetVersion, count: int,
               examples: int) -> list[str]:
    """Transformer runs put on the queue by the same call the Train page makes."""
    recipe = plan_for_version(version, "quick", config, examples)
    queue = RunQueue(workspace, config, store)
    try:
        return [queue.submit(RunRequest(version.ref, "transformer", "quick", recipe.hyperparameters,
                                        max_train_examples=examples, recipe=recipe), command_line_actor()).run_id
                for _ in range(count)]
    finally:
        queue.close()


# -- one person at a browser ------------------------------------------------------------------------------------

async def settle(page) -> None:
    """Wait until Streamlit has finished its current script run, so a click is not lost in a rerun."""
    await page.wait_for_timeout(200)
    await page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=WAIT_MS)


async def sign_in(page, url: str, username: str) -> int:
    """Sign in on Home; how many clicks on Sign in it took (under load a click can go unanswered for a minute
    or for good: a person would click again, and so does this, up to SIGN_IN_CLICKS times)."""
    await page.goto(url, wait_until="networkidle")
    for label, value in (("Username", username), ("Password", PASSWORD)):
        box = page.get_by_role("textbox", name=label, exact=True)
        await box.fill(value)
        await box.press("Tab")
    await settle(page)
    nav = page.locator('[data-testid="stSidebarNav"]')
    button = page.get_by_role("button", name="Sign in", exact=True)
    for clicks in range(1, SIGN_IN_CLICKS + 1):
        await nav.or_(button).first.wait_for(state="visible")
        if await nav.is_visible():  # the click before was answered after all, only late
            return clicks - 1
        await button.click()
        try:
            await nav.wait_for(state="visible", timeout=SIGN_IN_WAIT_MS)
            return clicks
        except PlaywrightTimeout:
            if await page.get_by_text("Wrong username or password", exact=False).count():
                raise
    raise PlaywrightTimeout(f"not signed in after {SIGN_IN_CLICKS} clicks on Sign in")


async def open_classify(page, url: str, tally: Tally) -> None:
    """Sign in and open Classify from the menu (no page reload: the session stays on its server)."""
    tally.sign_in_clicks = await sign_in(page, url, tally.user)
    await page.locator('[data-testid="stSidebarNav"]').get_by_text("Classify", exact=True).click()
    await page.get_by_role("textbox", name="Customer feedback", exact=True).wait_for(state="visible")
    await settle(page)


def one_text(page):
    """The "One text" tab: the History tab, hidden beside it, holds a second feedback form."""
    return page.locator('[data-testid="stTabPanel"]').first


async def classify_once(page, text: str) -> float:
    """Seconds from clicking Classify until the prediction (with its feedback form) is shown."""
    tab = one_text(page)
    box = tab.get_by_role("textbox", name="Customer feedback", exact=True)
    await box.fill(text)
    await box.press("Tab")
    await settle(page)
    shown = tab.get_by_text(PREDICTION_SHOWN, exact=True)
    started = time.perf_counter()
    await tab.get_by_role("button", name="Classify", exact=True).click()
    await shown.wait_for(state="visible")
    return time.perf_counter() - started


async def confirm(page) -> None:
    """'Yes, it is correct' and Send feedback; done when the page says it was stored."""
    tab = one_text(page)
    await tab.get_by_text("Yes, it is correct", exact=True).click()
    await tab.get_by_role("button", name="Send feedback", exact=True).click()
    await tab.get_by_text(FEEDBACK_STORED, exact=False).wait_for(state="visible")
    await tab.get_by_text(PREDICTION_SHOWN, exact=True).wait_for(state="hidden")


async def page_text(page) -> str:
    """What the page showed when a session failed (why it failed is often written there)."""
    try:
        text = await page.locator("body").inner_text(timeout=10_000)
    except Exception as why:
        return f"(unreadable: {type(why).__name__})"
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())[:400]


async def session(browser, url: str, tally: Tally, texts: list[str]) -> Tally:
    """One person: sign in, classify each text and confirm it; a failure is recorded, not raised."""
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        await open_classify(page, url, tally)
        for text in texts:
            tally.latencies.append(await classify_once(page, text))
            tally.predictions += 1
            await confirm(page)
            tally.feedback += 1
    except Exception as why:  # a timeout or a closed page: count what was done, say what went wrong
        tally.error = (f"{type(why).__name__}: {' / '.join(str(why).splitlines()[:3])[:300]}; "
                       f"the page said: {await page_text(page)}")
    finally:
        await context.close()
    return tally


async def browse(plan: list[tuple[str, Tally, list[str]]], done: asyncio.Event | None = None) -> list[Tally]:
    """All sessions at once in one Chromium (one context each); ``done`` is set when the last one ends."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=ensure_chromium(), args=CHROMIUM_FLAGS)
        try:
            return await asyncio.gather(*(session(browser, url, tally, texts) for url, tally, texts in plan))
        finally:
            if done is not None:
                done.set()
            await browser.close()


# -- the worker killed mid-run ----------------------------------------------------------------------------------

async def kill_mid_run(workspace: Workspace, workers: list[subprocess.Popen], start_replacement, kill: Kill,
                       queued: set[str], min_step: int, sessions_done: asyncio.Event, timeout_s: float) -> None:
    """SIGKILL the worker training a queued run once it has fine-tuned ``min_step`` steps (earlier phases count
    their own steps), then start another."""
    by_pid = {process.pid: process for process in workers}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for record in await asyncio.to_thread(list_runs, workspace):
            pid = int(record.owner.split(":")[1]) if record.owner.count(":") >= 2 else 0
            if (record.run_id in queued and record.state is RunState.RUNNING and record.message == "training"
                    and record.step >= min_step and pid in by_pid):  # fine-tuning, not reading the data
                os.kill(pid, signal.SIGKILL)
                by_pid[pid].wait()
                kill.run_id, kill.pid, kill.step = record.run_id, pid, record.step
                kill.during_sessions = not sessions_done.is_set()
                kill.replacement_pid = start_replacement()
                print(f"killed worker {pid} (SIGKILL) at step {record.step}/{record.total_steps} of "
                      f"{record.run_id}; replacement worker {kill.replacement_pid} started", flush=True)
                return
        await asyncio.sleep(1.0)
    print(f"no queued run reached step {min_step} within {timeout_s:.0f} s: no worker was killed", flush=True)


async def load_phase(plan: list[tuple[str, Tally, list[str]]], workspace: Workspace,
                     workers: list[subprocess.Popen], start_replacement, kill: Kill, queued: set[str],
                     min_step: int, kill_timeout_s: float) -> list[Tally]:
    """The sessions, and beside them the kill (which may come after the last session if training is slow)."""
    done = asyncio.Event()
    tallies, _ = await asyncio.gather(browse(plan, done), kill_mid_run(
        workspace, workers, start_replacement, kill, queued, min_step, done, kill_timeout_s))
    return tallies


# -- judging ----------------------------------------------------------------------------------------------------

def unsettled(records: list[RunRecord], retries: int) -> list[RunRecord]:
    """Runs still to end: queued, training, or interrupted and due a retry no worker has queued yet."""
    return [r for r in records if r.state in (RunState.QUEUED, RunState.RUNNING)
            or (r.state is RunState.INTERRUPTED and r.retryable and not r.retried_as and r.retries_used < retries)]


def wait_for_runs(workspace: Workspace, retries: int, timeout_s: float) -> list[RunRecord]:
    """Every run once none is left to end (or at the timeout), printing progress now and then."""
    deadline, last_said = time.monotonic() + timeout_s, 0.0
    while True:
        records = list_runs(workspace)
        left = unsettled(records, retries)
        if not left or time.monotonic() > deadline:
            return records
        if time.monotonic() - last_said > 30:
            last_said = time.monotonic()
            print("waiting for runs: " + ", ".join(f"{r.run_id} {r.state.value} {r.step}/{r.total_steps}"
                                                   for r in left), flush=True)
        time.sleep(2.0)


def run_figures(records: list[RunRecord], queued: list[str]) -> dict[str, float]:
    """How the queued runs and their retries ended; a run is lost unless it or its retry line succeeded."""
    by_id = {r.run_id: r for r in records}
    ours = [r for r in records if r.run_id in queued or r.retry_of]
    lost = 0
    for run_id in queued:
        record = by_id.get(run_id)
        while record is not None and record.retried_as:
            record = by_id.get(record.retried_as)
        lost += record is None or record.state is not RunState.SUCCEEDED
    count = lambda state: float(sum(r.state is state for r in ours))  # noqa: E731
    retries = [r for r in ours if r.retry_of]
    return {
        "runs_queued": float(len(queued)), "runs_finished": count(RunState.SUCCEEDED),
        "runs_interrupted": count(RunState.INTERRUPTED), "runs_retried": float(len(retries)),
        "runs_failed": count(RunState.FAILED), "runs_cancelled": count(RunState.CANCELLED),
        "runs_unfinished": float(sum(not r.state.finished for r in ours)),
        "interrupted_not_retried": float(sum(r.state is RunState.INTERRUPTED and not r.retried_as for r in ours)),
        "retries_not_succeeded": float(sum(r.state is not RunState.SUCCEEDED for r in retries)),
        "runs_lost": float(lost),
    }


def p95(values: list[float]) -> float:
    """The 95th percentile (inclusive, so a short list gives a value between its largest ones)."""
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def latency_figures(idle: list[float], loaded: list[float]) -> dict[str, float]:
    """p50/p95 of the Classify latency, idle and loaded, and how much slower the load made p95."""
    if not idle or not loaded:
        return {}
    return {"latency_idle_p50_s": statistics.median(idle), "latency_idle_p95_s": p95(idle),
            "latency_loaded_p50_s": statistics.median(loaded), "latency_loaded_p95_s": p95(loaded),
            "latency_p95_ratio": p95(loaded) / p95(idle)}


def describe_cpu() -> str:
    """The CPU the figures came from (they mean little without it)."""
    flags = [name for name, present in cpu_features().items() if present]
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, kind {cpu_kind()}, "
            f"flags: {', '.join(flags) or 'none of ' + ', '.join(cpu_features())}")


# -- the benchmark ----------------------------------------------------------------------------------------------

def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20, help="browser sessions at once (default 20)")
    parser.add_argument("--actions", type=int, default=3, help="classifications (each with feedback) per session")
    parser.add_argument("--idle-actions", type=int, default=20, help="classifications on the idle server")
    parser.add_argument("--runs", type=int, default=3, help="transformer runs queued (default 3)")
    parser.add_argument("--train-examples", type=int, default=200,
                        help="training examples per run (default 200: about a minute each on 2 idle cores)")
    parser.add_argument("--kill-at-step", type=int, default=3, help="kill a worker once its run reached this step")
    parser.add_argument("--wait-minutes", type=float, default=20.0, help="how long to wait for the runs to end")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    texts = demo_texts()
    print(f"CPU: {describe_cpu()}", flush=True)
    with postgres_server() as admin_url, tempfile.TemporaryDirectory(prefix="fs-bench-scale-") as folder:
        root = Path(folder)
        settings = write_settings(root, fresh_database(admin_url, "bench_scale"))
        os.environ[CONFIG_ENV_VAR], os.environ[WORKSPACE_ENV_VAR] = str(settings), str(root / "workspace")
        config = load_config()
        workspace = config.workspace()
        store = Store(config.storage.database_url)
        try:
            print("saving the demo data, training and publishing TF-IDF + logistic regression…", flush=True)
            version = save_demo(workspace, config)
            publish_baseline(workspace, config, version)
            users = make_accounts(store, config, args.sessions)
            figures = measure(args, texts, workspace, config, store, version, users)
        finally:
            store.dispose()
    summary(figures)
    check_targets(figures, TARGETS)


def measure(args: argparse.Namespace, texts: list[str], workspace: Workspace, config: AppConfig, store: Store,
            version: DatasetVersion, users: list[str]) -> dict[str, float | str]:
    """The idle baseline, then the load with the kill, then the counts; figures for the summary."""
    idle_user, users = users[0], users[1:]
    print(f"baseline: one idle server, one session, {args.idle_actions} classifications…", flush=True)
    with served_app(workspace.root, Path(os.environ[CONFIG_ENV_VAR]), workers=0) as idle_app:
        idle_texts = texts[-args.idle_actions:]
        (idle,) = asyncio.run(browse([(idle_app["url"], Tally(idle_user, "idle"), idle_texts)]))
    if idle.error:
        raise SystemExit(f"the idle session failed: {idle.error}")

    kill = Kill()
    with contextlib.ExitStack() as stack:
        settings = Path(os.environ[CONFIG_ENV_VAR])
        apps = [stack.enter_context(served_app(workspace.root, settings, workers=1)) for _ in range(2)]
        workers = [process for app in apps for process in app["workers"]]
        queued = queue_runs(workspace, config, store, version, args.runs, args.train_examples)
        print(f"2 servers ({', '.join(app['url'] for app in apps)}), workers {[w.pid for w in workers]}; "
              f"queued {len(queued)} transformer runs; {args.sessions} sessions × {args.actions} actions…",
              flush=True)

        def start_replacement() -> int:
            (process,) = stack.enter_context(worker_processes(workspace.root, dict(os.environ), 1))
            return process.pid

        plan = []
        for number, user in enumerate(users):
            app = apps[number % 2]
            start = number * args.actions
            plan.append((app["url"], Tally(user, "AB"[number % 2]), texts[start:start + args.actions]))
        started = time.monotonic()
        tallies = asyncio.run(load_phase(plan, workspace, workers, start_replacement, kill, set(queued),
                                         args.kill_at_step, args.wait_minutes * 60))
        sessions_s = time.monotonic() - started
        print(f"sessions done in {sessions_s:.0f} s; waiting for the runs to end…", flush=True)
        records = wait_for_runs(workspace, config.worker.retries, args.wait_minutes * 60)
    return report(args, idle, tallies, records, queued, kill, store, sessions_s)


def report(args: argparse.Namespace, idle: Tally, tallies: list[Tally], records: list[RunRecord],
           queued: list[str], kill: Kill, store: Store, sessions_s: float) -> dict[str, float | str]:
    """Print what happened in words and return the figures."""
    written_predictions = idle.predictions + sum(t.predictions for t in tallies)
    written_feedback = idle.feedback + sum(t.feedback for t in tallies)
    found_predictions, found_feedback = store.count(predictions), store.count(feedback)
    written, found = written_predictions + written_feedback, found_predictions + found_feedback
    loaded = [seconds for t in tallies for seconds in t.latencies]
    failed = [t for t in tallies if t.error]
    runs = run_figures(records, queued)
    latency = latency_figures(idle.latencies, loaded)
    killed = next((r for r in records if r.run_id == kill.run_id), None)

    print(f"\nCPU: {describe_cpu()} (shared with whatever else runs on this machine)")
    print(f"{args.sessions} sessions × {args.actions} classifications with feedback on 2 servers "
          f"({sessions_s:.0f} s); {len(failed)} session(s) failed")
    for tally in failed:
        print(f"  {tally.user} on server {tally.server}: {tally.error}")
    extra_clicks = sum(max(t.sign_in_clicks - 1, 0) for t in [idle, *tallies])
    print(f"sign-ins that took more than one click on Sign in (none answered within "
          f"{SIGN_IN_WAIT_MS / 1000:.0f} s of the click before): {sum(t.sign_in_clicks > 1 for t in [idle, *tallies])}, "
          f"{extra_clicks} extra click(s) in all")
    print(f"rows written: {written_predictions} predictions + {written_feedback} feedback = {written}; "
          f"rows found: {found_predictions} + {found_feedback} = {found}")
    print(f"runs: {len(queued)} queued; {runs['runs_finished']:.0f} finished, {runs['runs_interrupted']:.0f} "
          f"interrupted, {runs['runs_retried']:.0f} retried, {runs['runs_failed']:.0f} failed, "
          f"{runs['runs_cancelled']:.0f} cancelled, {runs['runs_unfinished']:.0f} unfinished; "
          f"{runs['runs_lost']:.0f} lost")
    for record in sorted((r for r in records if r.run_id in queued or r.retry_of), key=lambda r: r.created_at):
        print(f"  {record.run_id}: {record.state.value}, step {record.step}/{record.total_steps}, "
              f"worker {record.owner or '-'}" + (f", retry of {record.retry_of}" if record.retry_of else "")
              + (f", retried as {record.retried_as}" if record.retried_as else "")
              + (f" ({record.message})" if record.state is RunState.INTERRUPTED else ""))
    if kill.run_id:
        print(f"killed worker {kill.pid} at step {kill.step} of {kill.run_id} "
              f"({'while' if kill.during_sessions else 'after'} the sessions ran); that run ended "
              f"{killed.state.value if killed else 'missing'}")
    if latency:
        print(f"Classify latency (click to prediction): idle server p50 {latency['latency_idle_p50_s']:.2f} s, "
              f"p95 {latency['latency_idle_p95_s']:.2f} s over {len(idle.latencies)}; under load p50 "
              f"{latency['latency_loaded_p50_s']:.2f} s, p95 {latency['latency_loaded_p95_s']:.2f} s over "
              f"{len(loaded)}")
    return {
        "cpu": describe_cpu(), "sessions": args.sessions, "actions": args.actions,
        "sessions_failed": float(len(failed)), "sessions_seconds": sessions_s,
        "sign_in_extra_clicks": float(extra_clicks),
        "rows_written": float(written), "rows_found": float(found),
        "rows_missing": float(max(written - found, 0)), "rows_extra": float(max(found - written, 0)),
        "predictions_written": float(written_predictions), "predictions_found": float(found_predictions),
        "feedback_written": float(written_feedback), "feedback_found": float(found_feedback),
        **runs, "worker_killed": float(bool(kill.run_id)), "killed_during_sessions": float(kill.during_sessions),
        **latency,
    }


if __name__ == "__main__":
    main()
