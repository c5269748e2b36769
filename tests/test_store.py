"""The database: schema, WAL, concurrent writers, audit queries, system log."""

from __future__ import annotations

import logging
import threading

import pytest
from datetime import timedelta

from sqlalchemy import text

from core.accounts.audit import EventType, query_events, record_event, session_timeline
from core.serving.monitoring import record_predictions
from core.platform.logs import LOG_FILE, configure_logging
from core.models.predict import Prediction
from core.platform.store import Store, events, head_revision, predictions, utc_now
from tests.conftest import ANALYST, USER, race_in_processes, workspace_store


def test_schema_is_created_in_wal_mode_and_reopened_without_change(isolated_workspace):
    store = workspace_store(isolated_workspace)
    assert store.schema_version() == head_revision()
    with store.reading() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    record_event(store, EventType.SIGN_IN, ANALYST, "s1")
    again = Store(store.url)
    assert again.schema_version() == head_revision() and again.count(events) == 1


def test_the_schema_opens_alike_on_each_database_and_reopens_without_change(store):
    assert store.schema_version() == head_revision()
    record_event(store, EventType.SIGN_IN, ANALYST, "s1")
    again = Store(store.url)
    assert again.schema_version() == head_revision() and again.count(events) == 1
    again.dispose()


def _open_in_a_process(start, results, url: str) -> None:
    start.wait()
    try:
        opened = Store(url)
        record_event(opened, EventType.SIGN_IN, ANALYST, "s1")
        results.put("opened")
    except Exception as error:  # noqa: BLE001  (a crash is a failure the test reports)
        results.put(f"crashed: {type(error).__name__}: {error}")


def test_servers_starting_together_on_an_empty_database_each_open_it(database_url):
    """Each creates the schema under the write lock: no 'table exists' or duplicate type between them."""
    outcomes = race_in_processes(_open_in_a_process, [(database_url,)] * 4, timeout=60)
    assert outcomes == ["opened"] * 4
    assert Store(database_url).count(events) == 4


def test_many_threads_write_events_and_predictions_at_once_without_losing_rows(store):
    """Sessions and the training thread share one store; SQLite must not say 'database is locked', and
    PostgreSQL writers queue on the write lock without deadlocking."""
    other_process_view = Store(store.url)  # a second engine, as a second server process would have
    errors: list[str] = []
    threads_n, each = 8, 40

    def work(i: int) -> None:
        target = store if i % 2 else other_process_view
        try:
            for j in range(each):
                record_event(target, EventType.CLASSIFIED_TEXT, USER, f"s{i}", n=j, note="it's \"quoted\"; DROP TABLE events")
                record_predictions(target, USER, f"s{i}", "run-x", [("t", Prediction("ok", "a", 0.9))], "single", False)
        except Exception as exc:  # noqa: BLE001  (collected and asserted)
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count(events) == threads_n * each and store.count(predictions) == threads_n * each


def test_events_are_filtered_by_user_type_time_and_text(store):
    record_event(store, EventType.SIGN_IN, ANALYST, "s1")
    record_event(store, EventType.DATASET_SAVED, ANALYST, "s1", dataset="demo/v1")
    record_event(store, EventType.SIGN_IN_FAILED, username="mallory", session_id="s2")
    record_event(store, EventType.CLASSIFIED_TEXT, USER, "s3", label="billing")
    assert query_events(store, username="ana")["event_type"].tolist() == ["dataset_saved", "sign_in"]
    assert query_events(store, event_types=["sign_in_failed"])["username"].tolist() == ["mallory"]
    assert query_events(store, contains="DEMO/v1")["event_type"].tolist() == ["dataset_saved"]
    assert len(query_events(store, since=utc_now() + timedelta(minutes=1))) == 0
    assert len(query_events(store, until=utc_now())) == 4
    assert session_timeline(store, "s1")["event_type"].tolist() == ["sign_in", "dataset_saved"]


def test_the_log_search_takes_percent_and_underscore_literally(store):
    """'%' and '_' were LIKE wildcards: '100%' matched '1000' and '_' matched every event."""
    record_event(store, EventType.DATASET_SAVED, ANALYST, "s1", dataset="sale_100%")
    record_event(store, EventType.DATASET_SAVED, ANALYST, "s1", dataset="sale-1000")
    record_event(store, EventType.SIGN_IN, USER, "s2")
    assert query_events(store, contains="100%")["details"].tolist() == ['{"dataset": "sale_100%"}']
    assert len(query_events(store, contains="e_1")) == 1
    assert len(query_events(store, contains="sale_")) == 1
    assert len(query_events(store, contains="%")) == 1


def test_system_log_goes_to_a_rotating_file_in_the_workspace(isolated_workspace):
    path = configure_logging(isolated_workspace)
    configure_logging(isolated_workspace)  # idempotent: one handler per file
    logging.getLogger("core.test").warning("disk is %s", "fine")
    for handler in logging.getLogger("core").handlers:
        handler.flush()
    assert path == (isolated_workspace.logs / LOG_FILE).resolve()
    lines = path.read_text().splitlines()
    assert sum("disk is fine" in line for line in lines) == 1


def test_the_text_filter_searches_before_the_row_limit(store):
    record_event(store, EventType.DATASET_SAVED, ANALYST, "s1", dataset="needle/v1")
    for i in range(5):
        record_event(store, EventType.SIGN_IN, ANALYST, f"s{i}")
    found = query_events(store, contains="needle", limit=2)
    assert found["event_type"].tolist() == ["dataset_saved"]


def test_the_database_is_readable_by_its_owner_only(tmp_path):
    """studio.db (password hashes, feedback texts) was created 0644, readable by every account on the server."""
    import os
    import stat

    from core.platform.store import Store, default_database_url

    old_umask = os.umask(0o022)
    try:
        store = Store(default_database_url(tmp_path))
        record_event(store, EventType.SIGN_IN, ANALYST, "s1")  # a write: WAL and shared-memory files appear
        files = [p for p in tmp_path.iterdir() if p.name.startswith("studio.db")]
        assert {p.name for p in files} >= {"studio.db", "studio.db-wal"}
        assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
        (tmp_path / "studio.db").chmod(0o644)  # a database from before: tightened at start
        Store(default_database_url(tmp_path))
        assert stat.S_IMODE((tmp_path / "studio.db").stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)


def test_ending_an_accounts_sessions_holds_on_each_database(store):
    """Sign-out and resets end sessions in the database, so a copied cookie stops on every server."""
    from core.accounts.sessions import Sessions

    sessions = Sessions(store)
    later = utc_now() + timedelta(hours=1)
    sessions.start("a", "uma", later)
    sessions.start("a", "uma", later)  # a rerun of the same sign-in
    sessions.start("b", "uma", later)
    assert sessions.refusal("a", "uma") is None and sessions.refusal("a", "eve") == "Please sign in again."
    assert sessions.end_all("uma", "password reset") == 2
    assert sessions.refusal("b", "uma") == "This session was ended (password reset); please sign in again."


@pytest.mark.slow  # a PostgreSQL server
def test_on_postgresql_logging_does_not_wait_behind_a_check_then_write(postgres_admin_url):
    """Every server's events and served predictions queued on the one write lock that guards check-then-write
    changes (the first admin, a taken name); a plain insert needs no lock."""
    from bench.postgres_server import fresh_database

    store = Store(fresh_database(postgres_admin_url))
    holding, release = threading.Event(), threading.Event()

    def long_check_then_write() -> None:
        with store.writing():
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=long_check_then_write)
    holder.start()
    assert holding.wait(10)
    logged = threading.Thread(target=lambda: record_event(store, EventType.SIGN_IN, ANALYST, "s1"))
    logged.start()
    logged.join(10)
    try:
        assert not logged.is_alive() and store.count(events) == 1  # written while the lock is held
    finally:
        release.set()
        holder.join()
        logged.join()
        store.dispose()
