"""The app's database: accounts, audit events, prediction records, feedback.

SQLAlchemy Core over SQLite in WAL mode by default (one file in the
workspace); a PostgreSQL URL in the configuration replaces it for a
multi-server deployment. Every statement is parameterised: no user text is
ever concatenated into SQL. The schema is Alembic's: the revisions in
core/migrations create it and bring it forward when a Store opens the
database, under the write lock (servers starting together take turns). A
database made before Alembic (its tables and a ``schema_info`` row, no
``alembic_version``) keeps its tables and rows: the first revision creates
only the tables it lacks, the second drops ``schema_info``.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON, Boolean, Column, DateTime, Float, Integer, MetaData, String, Table, Text, create_engine, event, func,
    select,
)
from sqlalchemy.engine import Connection, Engine

from core.platform.workspace import file_mode

DATABASE_FILE = "studio.db"
#: Alembic's scripts, found next to this file (the app runs from the repository, not an installed package).
MIGRATIONS_FOLDER = Path(__file__).resolve().parent / "migrations"

#: The tables as the code queries them; a change here needs a new revision in core/platform/migrations/versions
#: (tests/test_migrations.py checks that the migrated schema matches this).
metadata = MetaData()

users = Table(
    "users", metadata,
    Column("username", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(200), nullable=False, default=""),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_sign_ins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(64), nullable=True),
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", DateTime(timezone=True), nullable=False, index=True),
    Column("username", String(64), nullable=True, index=True),
    Column("role", String(16), nullable=True),
    Column("session_id", String(64), nullable=True, index=True),
    Column("event_type", String(48), nullable=False, index=True),
    Column("details", JSON, nullable=False, default=dict),
)

predictions = Table(
    "predictions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", DateTime(timezone=True), nullable=False, index=True),
    Column("username", String(64), nullable=True, index=True),
    Column("session_id", String(64), nullable=True),
    Column("run_id", String(120), nullable=False, index=True),
    Column("label", String(200), nullable=True),
    Column("score", Float, nullable=True),
    Column("needs_review", Boolean, nullable=False, default=False),
    Column("status", String(16), nullable=False, default="ok"),
    Column("source", String(16), nullable=False, default="single"),  # single | batch
    Column("text", Text, nullable=True),  # kept only when the configuration says so
)

feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", DateTime(timezone=True), nullable=False, index=True),
    Column("username", String(64), nullable=False, index=True),
    Column("session_id", String(64), nullable=True),
    Column("run_id", String(120), nullable=False, index=True),
    Column("text", Text, nullable=False),
    Column("predicted", String(200), nullable=False),
    Column("score", Float, nullable=True),
    Column("is_correct", Boolean, nullable=False),
    Column("correct_label", String(200), nullable=False),
    Column("status", String(16), nullable=False, default="pending", index=True),  # pending | accepted | rejected
    Column("reviewed_by", String(64), nullable=True),
    Column("reviewed_at", DateTime(timezone=True), nullable=True),
)

#: Signed-in browser sessions: the sign-in cookie names one (core.accounts.auth.sign_in_id); ending the row ends the
#: session wherever the cookie is, and its expiry counts from the sign-in.
sessions = Table(
    "sessions", metadata,
    Column("id", String(64), primary_key=True),
    Column("username", String(64), nullable=False, index=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("ended_why", String(64), nullable=True),
)

#: Personal API tokens: the secret is shown once and stored only as its SHA-256 (it is 256 random bits, so a
#: fast hash is enough); a token acts as its account, with at most the role it was created with.
api_tokens = Table(
    "api_tokens", metadata,
    Column("id", String(16), primary_key=True),
    Column("username", String(64), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_by", String(64), nullable=True),
)

#: Predictions queued for a person to label (below the review threshold, or a sample of confident ones).
#: Their text is kept only here, and only for ``review.keep_text_days``.
review_queue = Table(
    "review_queue", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", DateTime(timezone=True), nullable=False, index=True),
    Column("run_id", String(120), nullable=False, index=True),
    Column("username", String(64), nullable=True),
    Column("text", Text, nullable=True),
    Column("predicted", String(200), nullable=False),
    Column("score", Float, nullable=False),
    Column("margin", Float, nullable=False),
    Column("reason", String(16), nullable=False),  # below_threshold | confident_sample
    Column("status", String(16), nullable=False, default="open", index=True),  # open | labelled | expired
    Column("label", String(200), nullable=True),
    Column("labelled_by", String(64), nullable=True),
    Column("labelled_at", DateTime(timezone=True), nullable=True),
    Column("feedback_id", Integer, nullable=True),
)

def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time in the store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def default_database_url(workspace_root: Path) -> str:
    return f"sqlite:///{(workspace_root / DATABASE_FILE).resolve()}"


#: How long a connection waits for another process's lock (also while switching a new file to WAL).
BUSY_TIMEOUT_S = 30.0


def _switch_to_wal(cursor: Any) -> None:
    """Switching the journal to WAL needs the file to itself and does not wait on the busy timeout: when
    several processes open a new database at once, the others retry until it is done."""
    import sqlite3

    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and one writer work at once; busy_timeout makes writers wait instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _private_file(path: Path) -> None:
    """Create the SQLite file (password hashes, feedback texts) with the workspace's file mode — owner-only
    by default; SQLite gives its -wal and -shm files the same mode — and tighten an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, file_mode()))
    os.chmod(path, file_mode())


def _driver_leaves_transactions_to_us(dbapi_connection: Any, _record: Any) -> None:
    """pysqlite would begin transactions itself (deferred, at the first write): let the begin event do it."""
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
    """Take SQLite's write lock when the transaction begins, so a check and the write after it are atomic
    across processes (a deferred transaction only locks at its first write: two could pass the same check)."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


#: The PostgreSQL advisory lock every write transaction holds (any constant: it names the lock).
WRITE_LOCK_KEY = 0x5354_5544  # "STUD"


def _take_write_lock(connection: Connection) -> None:
    """PostgreSQL's counterpart of BEGIN IMMEDIATE: a transaction-scoped advisory lock taken first, so a
    check and the write after it are atomic across servers; it is released at commit or rollback.
    (Row locks cannot guard an insert whose check found no row, as the first admin's does.)"""
    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's settings built in code (no alembic.ini to ship): its scripts run on ``connection``, inside
    the transaction the caller holds, which Alembic then leaves to the caller to commit."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_FOLDER).replace("%", "%%"))  # ini-style value
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision a fully migrated database is at: what ``Store.schema_version()`` says once it opened."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def migrate(connection: Connection) -> None:
    """Bring the database to the newest revision on ``connection`` (a database from before Alembic starts
    from none: the first revision only adds the tables it lacks, so its rows stay)."""
    command.upgrade(alembic_config(connection), "head")


class Store:
    """One database; safe to share between sessions and the training thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        is_sqlite = url.startswith("sqlite")
        if is_sqlite and url.startswith("sqlite:///"):
            _private_file(Path(url.removeprefix("sqlite:///")))
        self.engine: Engine = create_engine(
            url, future=True, pool_pre_ping=not is_sqlite,
            connect_args={"timeout": 30, "check_same_thread": False} if is_sqlite else {},
        )
        # Writes that check then change (the first admin, the last admin, a taken name) must hold the write
        # lock from their first read: a separate engine whose transactions begin IMMEDIATE on SQLite, and
        # take an advisory lock first on PostgreSQL.
        self._write_engine = self.engine
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        if is_sqlite and url.startswith("sqlite:///") and ":memory:" not in url:  # a file both engines share
            self._write_engine = create_engine(url, future=True,
                                               connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(self._write_engine, "connect", _sqlite_pragmas)
            event.listen(self._write_engine, "connect", _driver_leaves_transactions_to_us)
            event.listen(self._write_engine, "begin", _begin_immediate)
        if url.startswith("postgresql"):
            self._write_engine = create_engine(url, future=True, pool_pre_ping=True)
            event.listen(self._write_engine, "begin", _take_write_lock)
        self._write_lock = threading.Lock() if is_sqlite else None
        self._migrate()

    def _migrate(self) -> None:
        """Create or bring forward the schema under the write lock (servers starting together take turns)."""
        with self.writing() as connection:
            migrate(connection)

    def schema_version(self) -> str | None:
        """The Alembic revision the database is at (None before any), for checks and support."""
        with self.reading() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A transaction for writes (committed on success, rolled back on error) that holds the database's
        write lock from its first statement, so what it reads stays true until it commits.

        SQLite allows one writer at a time; serialising this process's writers
        avoids busy-waiting between our own threads (other processes wait on
        the busy timeout). PostgreSQL writers queue on one advisory lock.
        """
        with self._write_lock or nullcontext(), self._write_engine.begin() as connection:
            yield connection

    @contextmanager
    def appending(self) -> Iterator[Connection]:
        """A transaction for inserts that check nothing first (events, served predictions, feedback): on
        PostgreSQL it does not queue behind the write lock, so every server's logging does not wait in one
        line; on SQLite it is :meth:`writing` (one writer at a time is SQLite's own rule)."""
        if self._write_lock is not None or self._write_engine is self.engine:
            with self.writing() as connection:
                yield connection
            return
        with self.engine.begin() as connection:
            yield connection

    def reading(self):
        return self.engine.connect()

    def count(self, table: Table) -> int:
        with self.reading() as connection:
            return int(connection.execute(select(func.count()).select_from(table)).scalar_one())

    def rows(self, statement) -> list[dict[str, Any]]:
        """Run a SELECT and return plain dicts (datetimes in UTC)."""
        with self.reading() as connection:
            result = connection.execute(statement).mappings().all()
        return [{k: as_utc(v) if isinstance(v, datetime) else v for k, v in row.items()} for row in result]

    def dispose(self) -> None:
        self.engine.dispose()
        self._write_engine.dispose()

