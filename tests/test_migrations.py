"""Alembic migrations: a fresh database at head matching the tables the code queries, a database from before
Alembic kept with its rows, servers opening one together, migrations inside the Store's write transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, func, insert, inspect, select

from core.accounts.audit import EventType, record_event
from core.platform.store import (
    Store, alembic_config, events, feedback, head_revision, metadata, migrate, predictions,
    users, utc_now,
)
from tests.conftest import ANALYST, race_in_processes
from tests.test_store import _open_in_a_process

APP_TABLES = set(metadata.tables)


def _differences(store: Store) -> list:
    """What autogenerate would put in a new revision: nothing, when the revisions build ``metadata``."""
    with store.reading() as connection:
        return compare_metadata(MigrationContext.configure(connection), metadata)


def _table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _version_rows(store: Store) -> int:
    with store.reading() as connection:
        return connection.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar_one()


def test_a_fresh_database_is_at_head_and_matches_the_tables_the_code_queries(store):
    assert store.schema_version() == head_revision() and _version_rows(store) == 1
    assert _differences(store) == []
    assert _table_names(store.url) == APP_TABLES | {"alembic_version"}  # no schema_info on a new database


def test_reopening_a_database_at_head_changes_nothing(store):
    record_event(store, EventType.SIGN_IN, ANALYST, "s1")
    again = Store(store.url)
    assert again.schema_version() == head_revision() and _version_rows(again) == 1 and again.count(events) == 1
    again.dispose()


def test_the_migrations_are_found_from_any_working_folder(database_url, tmp_path, monkeypatch):
    """The app runs from the repository, not an installed package: the scripts are found next to core/platform/store.py."""
    monkeypatch.chdir(tmp_path)
    opened = Store(database_url)
    assert opened.schema_version() == head_revision()
    opened.dispose()


def test_the_revisions_go_down_to_nothing_and_back_up(store):
    with store.writing() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert _table_names(store.url) == {"alembic_version"}
    with store.writing() as connection:
        migrate(connection)
    assert store.schema_version() == head_revision() and _differences(store) == []


def test_a_migration_commits_with_the_callers_transaction_not_before(database_url, monkeypatch):
    """Alembic sees the write transaction already begun and leaves it alone: rolled back, nothing was made.
    (Had it committed on its own, a second server could migrate between its steps, outside the write lock.)"""
    monkeypatch.setattr(Store, "_migrate", lambda self: None)
    unmigrated = Store(database_url)
    with pytest.raises(RuntimeError, match="stop here"):
        with unmigrated.writing() as connection:
            migrate(connection)
            assert set(inspect(connection).get_table_names()) >= APP_TABLES
            raise RuntimeError("stop here")
    assert _table_names(database_url) == set()
    unmigrated.dispose()


# A database made by the code before Alembic: metadata.create_all, a schema_info table at version 1, rows.

OLD_SCHEMA_INFO = Table(
    "schema_info", MetaData(),
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)
WHEN = utc_now().replace(microsecond=0) - timedelta(days=3)
OLD_ROWS = {
    users: [dict(username="root", name="Root Admin", email="root@example.com", role="admin",
                 password_hash="$2b$12$hash", disabled=False, failed_sign_ins=2, locked_until=None,
                 created_at=WHEN, created_by=None),
            dict(username="uma", name="Uma", email="", role="user", password_hash="$2b$12$other", disabled=True,
                 failed_sign_ins=0, locked_until=WHEN + timedelta(hours=1), created_at=WHEN, created_by="root")],
    events: [dict(time=WHEN, username="root", role="admin", session_id="s1", event_type="sign_in",
                  details={"note": "it's \"quoted\""}),
             dict(time=WHEN, username="uma", role="user", session_id="s2", event_type="classified_text",
                  details={})],
    predictions: [dict(time=WHEN, username="uma", session_id="s2", run_id="run-1", label="billing", score=0.75,
                       needs_review=True, status="ok", source="single", text=None)],
    feedback: [dict(time=WHEN, username="uma", session_id="s2", run_id="run-1", text="charged twice",
                    predicted="billing", score=0.75, is_correct=False, correct_label="refund", status="pending",
                    reviewed_by=None, reviewed_at=None)],
}


def _database_from_before_alembic(url: str) -> None:
    """Build it as the old Store did (today's metadata is revision 0001's tables; once a revision changes
    them, build this from revision 0001 instead)."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            metadata.create_all(connection)
            OLD_SCHEMA_INFO.create(connection)
            connection.execute(insert(OLD_SCHEMA_INFO).values(id=1, version=1))
            for table, rows in OLD_ROWS.items():
                connection.execute(insert(table), rows)
    finally:
        engine.dispose()
    assert _table_names(url) == APP_TABLES | {"schema_info"}


def _rows_as_written(store: Store, table: Table) -> list[dict]:
    """The table's rows without the ids the database gave them, in insertion order."""
    order = table.c.id if "id" in table.c else table.c.username
    return [{k: v for k, v in row.items() if k != "id"} for row in store.rows(select(table).order_by(order))]


def test_a_database_from_before_alembic_opens_with_every_row_and_without_schema_info(database_url):
    _database_from_before_alembic(database_url)
    opened = Store(database_url)
    for table, rows in OLD_ROWS.items():
        assert _rows_as_written(opened, table) == rows, table.name
    assert opened.schema_version() == head_revision() and _version_rows(opened) == 1
    assert _table_names(database_url) == APP_TABLES | {"alembic_version"}
    assert _differences(opened) == []
    record_event(opened, EventType.SIGN_IN, ANALYST, "s3")  # new ids follow the old rows (PostgreSQL sequences)
    again = Store(database_url)
    assert again.count(events) == 3 and again.schema_version() == head_revision()
    opened.dispose()
    again.dispose()


def test_a_database_from_an_older_build_gets_the_tables_it_lacks(database_url):
    """A build before the sessions, API-token and review-queue tables made only the first four: opened now, it
    keeps their rows and gains the rest."""
    _database_from_before_alembic(database_url)
    engine = create_engine(database_url)
    with engine.begin() as connection:
        for name in ("review_queue", "api_tokens", "sessions"):
            connection.exec_driver_sql(f"DROP TABLE {name}")
    engine.dispose()
    opened = Store(database_url)
    assert _table_names(database_url) == APP_TABLES | {"alembic_version"} and _differences(opened) == []
    for table, rows in OLD_ROWS.items():
        assert _rows_as_written(opened, table) == rows, table.name
    opened.dispose()


def test_a_database_with_only_other_programs_tables_gets_ours_created(database_url):
    """The run queue (Huey) may share the database and make its tables first: that is no database of ours."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE kv (queue TEXT, key TEXT, value BYTEA)")
    engine.dispose()
    opened = Store(database_url)
    assert opened.schema_version() == head_revision()
    assert _table_names(database_url) == APP_TABLES | {"alembic_version", "kv"}
    record_event(opened, EventType.SIGN_IN, ANALYST, "s1")
    opened.dispose()


@pytest.mark.slow
def test_servers_starting_together_on_a_database_from_before_alembic_migrate_it_once(database_url):
    """One upgrades under the write lock; the others find it at head: no 'table exists', no second
    alembic_version row, no row lost."""
    _database_from_before_alembic(database_url)
    outcomes = race_in_processes(_open_in_a_process, [(database_url,)] * 4, timeout=60)
    assert outcomes == ["opened"] * 4
    opened = Store(database_url)
    assert opened.count(events) == len(OLD_ROWS[events]) + 4 and _version_rows(opened) == 1
    assert opened.schema_version() == head_revision() and "schema_info" not in _table_names(database_url)
    with opened.reading() as connection:
        assert connection.execute(select(func.count()).select_from(users)).scalar_one() == 2
    opened.dispose()
